/**
 * The pieces for multi-host jobs, each its own process as on separate machines:
 * `ringtrain keygen`, `ringtrain coordinator TASK -n 2 --bind … --secret-file` and two
 * `ringtrain worker --coordinator … --secret-file`, and the rules about keys and binds.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'

/** A port that was free a moment ago (the coordinator binds it by number, as users do). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** `ringtrain keygen --out DIR/job.key`, as a user does once per job. */
async function keygen(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-key-test-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'job.key')
  const run = await runCli(['keygen', '--out', path])
  expect(run.code, run.output).toBe(0)
  return path
}

/**
 * A job of `workerArgs.length` workers. `keyArgs` go to the coordinator and every worker;
 * by default a key made with keygen. With `coordinatorKey`, the coordinator gets no key
 * flag and makes its own, and the workers take the path it prints.
 */
async function job(workerArgs: string[][], options: { keyArgs?: string[]; coordinatorKey?: boolean } = {}) {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-pieces-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  const endpoint = `tcp://127.0.0.1:${await freePort()}`
  let keyArgs = options.coordinatorKey ? [] : (options.keyArgs ?? ['--secret-file', await keygen()])
  const coordinator = startCli(['coordinator', 'examples/linear-regression', '-n', String(workerArgs.length), '--bind', endpoint, '--job-id', 'pieces', '--epochs', '2', '--out', out, ...keyArgs])
  if (options.coordinatorKey) {
    const printed = /made a job key for this run at (\S+) /.exec(await waitForOutput(coordinator, /made a job key for this run at \S+ /))![1]!
    expect(statSync(printed).mode & 0o777).toBe(0o600)
    keyArgs = ['--secret-file', printed]
  }
  const workers = workerArgs.map((args) => startCli(['worker', '--coordinator', endpoint, '--job-id', 'pieces', ...keyArgs, ...args]))
  const [coordinatorExit, ...workerExits] = await Promise.all([waitForExit(coordinator), ...workers.map((w) => waitForExit(w))])
  return { out, coordinator, coordinatorExit: coordinatorExit!, workerExits, workers }
}

test('a coordinator and two workers started separately train the job to the end', async () => {
  const { out, coordinator, coordinatorExit, workerExits, workers } = await job([[], []])
  expect(coordinatorExit.code, coordinator.output()).toBe(0)
  expect(workerExits.map((e) => e.code)).toEqual([0, 0])
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
  expect(summary).toMatchObject({ workers: 2, epochs: 2, steps: 32, replicasIdentical: true })
  // Progress on both sides: the coordinator's plain lines (no terminal), each worker's every tenth of the job.
  expect(coordinator.output()).toMatch(/epoch 2\/2 32\/32 steps .* samples\/s loss \d+\.\d{4}/)
  for (const worker of workers) {
    expect(worker.output()).toMatch(/step 4\/32 \(epoch 1\/2\), loss \d+\.\d{4}, \d+ samples\/s on this rank\./)
    expect(worker.output()).toMatch(/step 32\/32 \(epoch 2\/2\)/)
  }
}, cliTestTimeout())

/** examples/linear-regression copied to a private folder (another host's checkout), with `edit` applied to its source. */
function taskCopy(edit: (source: string) => string = (source) => source): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-task-copy-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'task.mts')
  writeFileSync(path, edit(readFileSync('examples/linear-regression/index.ts', 'utf8')))
  return path
}

test('a worker may load the task from its own path (--task): the job trains when its copy is the same', async () => {
  const copy = taskCopy()
  const { coordinator, coordinatorExit, workers } = await job([[], ['--task', copy]])
  expect(coordinatorExit.code, coordinator.output() + workers.map((w) => w.output()).join('')).toBe(0)
  expect(workers[1]!.output()).toContain(`loads the task from its own path ${copy} (the coordinator's: `)
}, cliTestTimeout())

test('a worker whose copy of the task differs fails before step 0, naming the field, both ranks, hosts and paths', async () => {
  const copy = taskCopy((source) => source.replace('learningRate: 0.1,', 'learningRate: 0.05,'))
  const { coordinator, coordinatorExit, workers } = await job([['--local-rank', '0'], ['--local-rank', '1', '--task', copy]])
  expect(coordinatorExit.code).toBe(1)
  const all = coordinator.output() + workers.map((w) => w.output()).join('')
  expect(all).toMatch(new RegExp(`rank 1 \\(host \\S+, task ${copy.replace(/[.]/g, '\\.')}\\) has another task than rank 0 \\(host \\S+, task \\S+examples/linear-regression/index\\.ts\\): their 'learningRate' differs\\.`))
  expect(all).not.toMatch(/step 1\//)
}, cliTestTimeout())

test('a job refuses to mix backends across ranks, before step 0 (workers use the key the coordinator made)', async () => {
  const { coordinator, coordinatorExit, workers } = await job([['--backend', 'wasm', '--local-rank', '0'], ['--backend', 'cpu', '--local-rank', '1']], { coordinatorKey: true })
  expect(coordinatorExit.code).toBe(1)
  const all = coordinator.output() + workers.map((w) => w.output()).join('')
  expect(all).toMatch(/rank 1 computes on backend 'cpu' but rank 0 on 'wasm'; a job refuses to mix backends because their float results differ\./)
}, cliTestTimeout())

test('a local rank from the environment that is not a number is refused, naming the variable', async () => {
  const run = await runCli(['worker', '--coordinator', 'tcp://127.0.0.1:1', '--insecure'], { env: { LOCAL_RANK: 'abc' } })
  expect(run.code).toBe(2)
  expect(run.output).toContain("ConfigError [E_CONFIG]: LOCAL_RANK must be a non-negative integer (the local rank); got 'abc'.")
}, cliTestTimeout())

test('--insecure runs a job without a key, and both processes warn at start', async () => {
  const { out, coordinator, coordinatorExit, workerExits, workers } = await job([[], []], { keyArgs: ['--insecure'] })
  expect(coordinatorExit.code, coordinator.output()).toBe(0)
  expect(workerExits.map((e) => e.code)).toEqual([0, 0])
  expect(coordinator.output()).toContain('WARNING: --insecure: the coordinator runs without a job key')
  for (const worker of workers) expect(worker.output()).toContain('WARNING: --insecure: the worker runs without a job key')
  expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))).toMatchObject({ replicasIdentical: true })
}, cliTestTimeout())

test('listening beyond loopback without a key is refused with exit code 2 and says how to make one', async () => {
  const runs = await Promise.all([
    runCli(['coordinator', 'examples/linear-regression', '-n', '2', '--bind', 'tcp://0.0.0.0:0']),
    runCli(['worker', '--coordinator', 'tcp://127.0.0.1:1', '--host', '10.1.2.3']),
  ])
  for (const run of runs) {
    expect(run.code, run.output).toBe(2)
    expect(run.output).toContain('without a job key: anyone who reaches it could join the job')
    expect(run.output).toContain('ringtrain keygen --out job.key')
  }
  expect(runs[0]!.output).toContain('--bind tcp://0.0.0.0:0')
  expect(runs[1]!.output).toContain('--host 10.1.2.3')
}, cliTestTimeout())

test('a worker without a key, or with a key file others can read, is refused with exit code 2', async () => {
  const key = await keygen()
  const { chmodSync } = await import('node:fs')
  chmodSync(key, 0o644)
  const [noKey, readable] = await Promise.all([
    runCli(['worker', '--coordinator', 'tcp://127.0.0.1:1']),
    runCli(['worker', '--coordinator', 'tcp://127.0.0.1:1', '--secret-file', key]),
  ])
  expect(noKey.code).toBe(2)
  expect(noKey.output).toContain('A worker needs the job\'s key: pass --secret-file FILE')
  expect(readable.code).toBe(2)
  expect(readable.output).toContain(`the job key file ${key} can be read by other users (mode 0644)`)
  expect(readable.output).toContain(`chmod 600 ${key}`)
}, cliTestTimeout())

test('keygen never overwrites a key file', async () => {
  const key = await keygen()
  const before = readFileSync(key, 'utf8')
  const again = await runCli(['keygen', '--out', key])
  expect(again.code).toBe(2)
  expect(again.output).toContain(`${key} already exists`)
  expect(readFileSync(key, 'utf8')).toBe(before)
}, cliTestTimeout())

test('launch --encrypt-local trains with CURVE on the same-host ring too, to the same parameters', async () => {
  const runs = []
  for (const extra of [[], ['--encrypt-local']]) {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-encrypt-local-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const run = await runCli(['launch', '-n', '2', 'examples/linear-regression', '--epochs', '1', '--out', out, '--quiet', ...extra])
    expect(run.code, run.output).toBe(0)
    runs.push({ output: run.output, summary: JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { parameterHashes: string[] } })
  }
  expect(runs[1]!.output).toContain('with the job key (encrypted on this machine too)')
  expect(runs[0]!.output).not.toContain('encrypted on this machine too')
  expect(runs[1]!.summary.parameterHashes).toEqual(runs[0]!.summary.parameterHashes)
}, cliTestTimeout(undefined, 2))
