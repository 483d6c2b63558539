import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCoordinator, type Coordinator } from '@ringtrain/coordinator'
import { DistError, resolveJobConfig, type JobConfig } from '@ringtrain/core'
import { afterEach, describe, expect, test } from 'vitest'
// Relative import: @ringtrain/worker's index.ts (another helper's file) will export the client.
import { CoordinatorClient } from '../../packages/worker/src/control/index.js'

const quiet = { log: () => {} }
const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

async function coordinatorFor(worldSize: number, overrides: Partial<JobConfig> = {}): Promise<{ config: JobConfig; coordinator: Coordinator }> {
  const outDir = await mkdtemp(join(tmpdir(), 'ringtrain-client-'))
  const config = resolveJobConfig({ jobId: 'client-test', worldSize, task: 'none', outDir, heartbeatIntervalMs: 100, ...overrides })
  const coordinator = await startCoordinator(config, quiet)
  cleanup.push(() => rm(outDir, { recursive: true, force: true }), () => coordinator.stop('the test ended'))
  return { config, coordinator }
}

function joinAs(endpoint: string, pid: number, jobId = 'client-test', timeoutMs = 10_000) {
  return CoordinatorClient.join(endpoint, { jobId, host: 'test-host', pid, dataEndpoints: [`tcp://127.0.0.1:${6000 + pid}`], backend: 'cpu' }, { timeoutMs, ...quiet }).then((client) => {
    cleanup.push(() => client.close({ lingerMs: 0 }))
    return client
  })
}

describe('CoordinatorClient', () => {
  test('joins, passes a barrier, reports metrics and done, and hears Shutdown', async () => {
    const { config, coordinator } = await coordinatorFor(2)
    const [a, b] = await Promise.all([joinAs(coordinator.endpoint, 1), joinAs(coordinator.endpoint, 2)])
    expect([a.rank, b.rank]).toEqual([0, 1])
    expect(a.assignment).toMatchObject({ worldSize: 2, round: 0, peers: [['tcp://127.0.0.1:6001'], ['tcp://127.0.0.1:6002']], config })
    a.startHeartbeats(() => 0)
    b.startHeartbeats(() => 0)
    await Promise.all([a.barrier('start', 5_000), b.barrier('start', 5_000)])
    const shutdown = new Promise((resolve) => a.onShutdown(resolve))
    for (const client of [a, b]) {
      await client.sendMetrics({ step: 0, epoch: 0, loss: 1, samples: 8, computeMs: 1, allReduceMs: 1, bytesSent: 8 })
      await client.done({ steps: 1, parameterHash: 'h', finalLoss: 1, eval: {}, backend: 'cpu' })
    }
    expect(await shutdown).toMatch(/finished/)
    expect((await coordinator.done).summary).toMatchObject({ workers: 2, replicasIdentical: true })
  })

  test('rejects the join of a worker of another job with E_JOB_MISMATCH', async () => {
    const { coordinator } = await coordinatorFor(1)
    await expect(joinAs(coordinator.endpoint, 1, 'other-job')).rejects.toMatchObject({ name: 'FrameError', code: 'E_JOB_MISMATCH' })
  })

  test('rejects a join when the job already runs with a ConfigError', async () => {
    const { coordinator } = await coordinatorFor(1)
    await joinAs(coordinator.endpoint, 1)
    await expect(joinAs(coordinator.endpoint, 2)).rejects.toMatchObject({ name: 'ConfigError', code: 'E_CONFIG' })
  })

  test('times out a join nobody answers with E_TIMEOUT, naming the endpoint', async () => {
    const { coordinator } = await coordinatorFor(2)
    const error = await joinAs(coordinator.endpoint, 1, 'client-test', 300).catch((e: DistError) => e)
    expect(error).toMatchObject({ code: 'E_TIMEOUT' })
    expect((error as Error).message).toContain(`waited 300 ms for the coordinator at ${coordinator.endpoint}`)
  })

  test('fails a pending barrier with the root cause when another rank reports a failure', async () => {
    const { coordinator } = await coordinatorFor(2)
    const [a, b] = await Promise.all([joinAs(coordinator.endpoint, 1), joinAs(coordinator.endpoint, 2)])
    a.startHeartbeats(() => 0)
    const aborted = new Promise<string>((resolve) => a.onAbort((reason) => resolve(reason)))
    const waiting = a.barrier('never', 5_000)
    await b.failed(new DistError('E_LAYOUT_MISMATCH', 'rank 1 has another layout'))
    await expect(waiting).rejects.toMatchObject({ code: 'E_LAYOUT_MISMATCH', message: 'rank 1 has another layout' })
    expect(await aborted).toMatch(/^rank 1 \(pid 2 on test-host\) failed: DistError \[E_LAYOUT_MISMATCH\]: rank 1 has another layout$/)
    expect((await coordinator.done).exitCode).toBe(1)
  })
})
