/**
 * Rank 0 on a machine that does not see the coordinator's --out: it streams checkpoints and
 * the trained model over its control connection, and they land in the coordinator's folder.
 * The worker runs in a mount namespace of its own with an empty tmpfs over that folder (CI
 * runs as root, which `unshare --mount` needs): to it, --out is another machine's.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { cliTestTimeout, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { testKeyFile } from '../helpers/test-key.js'
import { loadSavedLayersModel } from '../helpers/saved-weights.js'
import { parameterHashesIn, tempDir } from '../helpers/temp-dir.js'

const task = 'test/integration/fixtures/recovery-task.ts'
const job = ['--backend', 'cpu', '--seed', '7']

/** `ringtrain coordinator` and one worker that cannot see `out`; resolves with both runs' exits. */
async function remoteJob(out: string, extra: string[] = ['--epochs', '1']) {
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '1', '--bind', 'tcp://127.0.0.1:0', '--job-id', 'remote', '--secret-file', key, ...job, '--out', out, '--checkpoint-every', '7', ...extra])
  const endpoint = /waits for 1 worker\(s\) on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(await waitForOutput(coordinator, /waits for 1 worker\(s\) on tcp:\/\/127\.0\.0\.1:\d+/))![1]!
  const hideOut = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs "$0" && exec "$@"', out]
  const worker = startCli(['worker', '--coordinator', endpoint, '--job-id', 'remote', '--secret-file', key], { wrap: hideOut })
  const [coordinatorExit, workerExit] = await Promise.all([waitForExit(coordinator), waitForExit(worker)])
  return { coordinator, worker, coordinatorExit, workerExit }
}

test('a rank 0 that does not see --out streams its checkpoints and the model to the coordinator, which commits them there', async () => {
  const out = tempDir('ringtrain-stream-')
  const { coordinator, worker, coordinatorExit, workerExit } = await remoteJob(out)
  expect([coordinatorExit.code, workerExit.code], `${coordinator.output()}\n${worker.output()}`).toEqual([0, 0])
  expect(worker.output()).toContain(`does not see the coordinator's ${out} on this machine: streams checkpoints and the model to the coordinator.`)
  // 60 steps, a checkpoint every 7 and one at the end; --keep-checkpoints 3 (pruned by the coordinator).
  expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['step-0000049', 'step-0000056', 'step-0000060'])
  expect(coordinator.output()).toMatch(/committed \S+step-0000060, streamed from rank 0/)
  const manifest = JSON.parse(readFileSync(join(out, 'checkpoints', 'step-0000060', 'manifest.json'), 'utf8')) as { step: number; files: { name: string; bytes: number }[] }
  expect(manifest.step).toBe(60)
  for (const file of manifest.files) expect(readFileSync(join(out, 'checkpoints', 'step-0000060', file.name)).byteLength).toBe(file.bytes)
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { checkpoint: { step: number; dir: string }; parameterHashes: string[] }
  expect(summary.checkpoint).toEqual({ step: 60, dir: join(out, 'checkpoints', 'step-0000060') })
  // The model the coordinator wrote loads with tf.loadLayersModel.
  expect(existsSync(join(out, 'model', 'model.json'))).toBe(true)
  const model = await loadSavedLayersModel(join(out, 'model'))
  expect(model.layers.map((l) => l.name)).toEqual(['hidden', 'output'])
  model.dispose()

  // Resumed with a second epoch, the remote rank 0 fetches the checkpoint from the coordinator
  // and ends bitwise where an uninterrupted two-epoch run of one worker ends.
  const reference = tempDir('ringtrain-stream-ref-')
  const whole = await runCli(['launch', '-n', '1', task, '--backend', 'cpu', '--seed', '7', '--epochs', '2', '--quiet', '--out', reference])
  expect(whole.code, whole.output).toBe(0)
  const resumed = await remoteJob(out, ['--resume', out, '--epochs', '2'])
  expect([resumed.coordinatorExit.code, resumed.workerExit.code], `${resumed.coordinator.output()}\n${resumed.worker.output()}`).toEqual([0, 0])
  expect(resumed.worker.output()).toMatch(/does not see \S+step-0000060 on this machine \(\S+\): fetches it from the coordinator\./)
  const after = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { steps: number; parameterHashes: string[] }
  expect(after.steps).toBe(120)
  expect(after.parameterHashes).toEqual(parameterHashesIn(reference))
}, cliTestTimeout(undefined, 3))
