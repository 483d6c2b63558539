/**
 * A process that holds the job key but is not a participant (a leftover worker of another
 * run, a buggy tool): what it sends the coordinator of a running job is dropped and
 * counted, and the job ends exactly as an undisturbed run of the same seed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectControlClient, controlMessage, MessageType, readJobKeyFile, type ControlMessage, type ControlReceipt } from '@ringtrain/core'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'

const JOB = ['examples/linear-regression', '-n', '2', '--epochs', '30', '--seed', '7', '--job-id', 'insider']

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('a key holder that is not a participant cannot fail, report for or join a running job; its messages are counted in summary.json', async () => {
  const keyDir = tempDir('ringtrain-insider-key-')
  const key = join(keyDir, 'job.key')
  expect((await runCli(['keygen', '--out', key])).code).toBe(0)

  const undisturbedOut = tempDir('ringtrain-insider-a-')
  const undisturbed = await runCli(['launch', ...JOB, '--out', undisturbedOut, '--quiet'])
  expect(undisturbed.code, undisturbed.output).toBe(0)
  const expected = JSON.parse(readFileSync(join(undisturbedOut, 'summary.json'), 'utf8')) as { parameterHashes: string[]; eval: Record<string, number> }

  const out = tempDir('ringtrain-insider-b-')
  const coordinator = startCli(['coordinator', ...JOB, '--bind', 'tcp://127.0.0.1:0', '--out', out, '--secret-file', key])
  const endpoint = /waits for 2 worker\(s\) on (tcp:\/\/[\d.]+:\d+)/.exec(await waitForOutput(coordinator, /waits for 2 worker\(s\) on tcp:\/\/[\d.]+:\d+/))![1]!
  const workers = [0, 1].map(() => startCli(['worker', '--coordinator', endpoint, '--job-id', 'insider', '--secret-file', key]))
  await waitForOutput(coordinator, /Round 0 starts with 2 workers/)

  // The insider: a real DEALER with the job's key, from a connection that never joined.
  const answers: ControlReceipt[] = []
  const insider = await connectControlClient(endpoint, () => 'the insider', { security: { mode: 'key', key: readJobKeyFile(key) }, onReceive: (r) => answers.push(r), log: () => {} })
  const forged: ControlMessage[] = [
    controlMessage(MessageType.WorkerFailed, 'insider', { rank: 0, error: { name: 'DistError', code: 'E_PEER_LOST', message: 'forged failure', context: {} } }),
    controlMessage(MessageType.StepMetrics, 'insider', { rank: 1, round: 0, step: 0, epoch: 0, loss: 1e9, learningRate: 1, samples: 1, computeMs: 1, allReduceMs: 1, bytesSent: 0 }),
    controlMessage(MessageType.WorkerDone, 'insider', { rank: 1, steps: 1, parameterHash: 'forged', finalLoss: 0, eval: { loss: { sum: 0, count: 1 } }, evalExamples: 1, backend: 'wasm' }),
    controlMessage(MessageType.JoinRequest, 'insider', { host: 'insider-host', pid: 1, dataEndpoints: ['tcp://127.0.0.1:1'], backend: 'wasm' }),
  ]
  for (const message of forged) await insider.send(message)
  await insider.close()

  const [coordinatorExit, ...workerExits] = await Promise.all([waitForExit(coordinator), ...workers.map((w) => waitForExit(w))])
  expect(coordinatorExit.code, coordinator.output()).toBe(0)
  expect(workerExits.map((e) => e.code)).toEqual([0, 0])
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as typeof expected & { dropped: Record<string, number> }
  expect(summary.parameterHashes).toEqual(expected.parameterHashes)
  expect(summary.eval).toEqual(expected.eval)
  expect(summary.dropped).toMatchObject({ notParticipant: 3, lateJoin: 1 })
  // The late join heard why, and nothing about the job: no job id in the Reject.
  for (const answer of answers) {
    if (answer.kind !== 'message') continue
    expect(answer.message.type).toBe(MessageType.Reject)
    expect(answer.message.jobId).toBe('')
  }
}, cliTestTimeout(undefined, 2))
