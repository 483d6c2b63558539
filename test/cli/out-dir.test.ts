/**
 * The default output folder: without --out, each run gets a fresh runs/<UTC time>-<job id>
 * and runs/latest is repointed at it; with --out, the folder is used as given.
 */
import { execFileSync, spawn } from 'node:child_process'
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, rmdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, describe, expect, onTestFinished, test } from 'vitest'
import { createRunDir, jobConfigWithOutDir, runStamp, safeName, type JobArgs } from '@ringtrain/cli'
import { scaled } from '../helpers/slack.js'

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ringtrain-out-dir-'))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const now = new Date('2026-12-02T15:06:07.891Z')
const argv: JobArgs = {
  task: 'examples/linear-regression', workers: 1, seed: 42, backend: 'cpu', 'job-id': 'job-1',
  'heartbeat-interval-ms': 1000, 'heartbeat-max-missed': 10, 'step-timeout-ms': 60_000, 'join-timeout-ms': 300_000,
}

describe('createRunDir', () => {
  test('makes runs/<UTC time>-<job id> and runs/latest, a relative link to it', async () => {
    const runsDir = join(await scratch(), 'runs')
    const logs: string[] = []
    const made = await createRunDir('job-1', { runsDir, now, log: (line) => logs.push(line) })
    expect(made).toEqual({ runDir: join(runsDir, '20261202T150607Z-job-1'), latest: join(runsDir, 'latest') })
    expect(await readlink(join(runsDir, 'latest'))).toBe('20261202T150607Z-job-1')
    expect((await lstat(made.runDir)).isDirectory()).toBe(true)
    expect(logs).toEqual([])
    expect((await readdir(runsDir)).sort()).toEqual(['20261202T150607Z-job-1', 'latest'])
  })

  test('a second run gets a folder of its own, even in the same second, and runs/latest moves to it; the first run\'s files stay', async () => {
    const runsDir = join(await scratch(), 'runs')
    const first = await createRunDir('job-1', { runsDir, now, log: () => {} })
    await writeFile(join(first.runDir, 'summary.json'), '{"jobId":"job-1"}\n')
    const second = await createRunDir('job-1', { runsDir, now, log: () => {} })
    expect(second.runDir).toBe(join(runsDir, '20261202T150607Z-job-1-2'))
    expect(await readlink(join(runsDir, 'latest'))).toBe('20261202T150607Z-job-1-2')
    expect(await readFile(join(first.runDir, 'summary.json'), 'utf8')).toBe('{"jobId":"job-1"}\n')
    expect((await readdir(runsDir)).sort(), 'no temporary link is left').toEqual(['20261202T150607Z-job-1', '20261202T150607Z-job-1-2', 'latest'])
  })

  test('a runs/latest that is a real folder (from an older ringtrain) is left alone, and the log says so', async () => {
    const runsDir = join(await scratch(), 'runs')
    await mkdir(join(runsDir, 'latest'), { recursive: true })
    await writeFile(join(runsDir, 'latest', 'summary.json'), '{"old":true}\n')
    const logs: string[] = []
    const made = await createRunDir('job-1', { runsDir, now, log: (line) => logs.push(line) })
    expect(made).toEqual({ runDir: join(runsDir, '20261202T150607Z-job-1') })
    expect(logs).toEqual([`${join(runsDir, 'latest')} is a real folder (not a link to a run folder, as an older ringtrain made it); left it alone. This run's outputs go to ${made.runDir}.`])
    expect(await readFile(join(runsDir, 'latest', 'summary.json'), 'utf8')).toBe('{"old":true}\n')
    expect((await readdir(runsDir)).sort()).toEqual(['20261202T150607Z-job-1', 'latest'])
  })

  test('names are safe: UTC to the second, and a job id with separators or dots cannot leave the runs folder', () => {
    expect(runStamp(now)).toBe('20261202T150607Z')
    expect(safeName('../../etc/x y')).toBe('.._.._etc_x_y')
    expect(safeName('..')).toBe('job')
    expect(safeName('')).toBe('job')
  })

  test.skipIf(process.getuid?.() !== 0)('a read-only runs folder fails with an OutputWriteError naming the path and EROFS (needs root for mount)', async () => {
    const disk = await mkdtemp(join(tmpdir(), 'ringtrain-ro-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,ro', 'tmpfs', disk])
    cleanup.push(async () => {
      execFileSync('umount', [disk])
      await rmdir(disk)
    })
    const error = await createRunDir('job-1', { runsDir: disk, now, log: () => {} }).then(() => undefined, (e: unknown) => e)
    const runDir = join(disk, '20261202T150607Z-job-1')
    expect(error).toMatchObject({ name: 'OutputWriteError', code: 'E_OUTPUT', context: { path: runDir, got: 'EROFS' } })
    expect((error as Error).message).toMatch(new RegExp(`^could not write the run folder to ${runDir}: EROFS \\(the file system is read-only\\)\\.`))
  })
})

describe('jobConfigWithOutDir', () => {
  test('without --out: the job\'s outDir is a fresh run folder, and the log says where and that runs/latest links to it', async () => {
    const runsDir = join(await scratch(), 'runs')
    const logs: string[] = []
    const config = await jobConfigWithOutDir(argv, (line) => logs.push(line), runsDir)
    expect(config.outDir).toMatch(new RegExp(`^${runsDir}/\\d{8}T\\d{6}Z-job-1$`))
    expect(await readlink(join(runsDir, 'latest'))).toBe(config.outDir.slice(runsDir.length + 1))
    expect(logs).toEqual([`Outputs go to ${config.outDir}; ${join(runsDir, 'latest')} links to it.`])
  })

  test('with --out: that folder as given, and no runs folder is made', async () => {
    const dir = await scratch()
    const logs: string[] = []
    const config = await jobConfigWithOutDir({ ...argv, out: join(dir, 'mine') }, (line) => logs.push(line), join(dir, 'runs'))
    expect(config.outDir).toBe(join(dir, 'mine'))
    expect(logs).toEqual([`Outputs go to ${join(dir, 'mine')} (--out).`])
    expect(await readdir(dir)).toEqual([])
  })

  test('a run whose task does not load makes no run folder', async () => {
    const runsDir = join(await scratch(), 'runs')
    await expect(jobConfigWithOutDir({ ...argv, task: 'examples/nope' }, () => {}, runsDir)).rejects.toMatchObject({ code: 'E_CONFIG' })
    await expect(lstat(runsDir)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const tsx = pathToFileURL(join(repoRoot, 'node_modules/tsx/dist/loader.mjs')).href
const cliMain = join(repoRoot, 'packages/cli/src/main.ts')

/**
 * Runs `ringtrain coordinator` in `cwd` (where runs/ goes) until it waits for its worker, then
 * stops it with SIGTERM; resolves with its output and exit code.
 */
async function coordinatorIn(cwd: string, extra: string[] = []): Promise<{ output: string; code: number | null }> {
  const child = spawn(process.execPath, ['--import', tsx, cliMain, 'coordinator', join(repoRoot, 'examples/linear-regression'), '-n', '1', '--bind', 'tcp://127.0.0.1:0', '--job-id', 'cli-out', ...extra], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  onTestFinished(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  const waiting = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the coordinator did not wait for its worker within ${scaled(30_000)} ms:\n${output}`)), scaled(30_000))
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('waits for 1 worker(s)')) { clearTimeout(timer); resolve() }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', () => { clearTimeout(timer); reject(new Error(`the coordinator exited before it waited:\n${output}`)) })
  })
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  await waiting
  child.kill('SIGTERM')
  return { code: await closed, output }
}

describe('ringtrain coordinator without --out', () => {
  test('puts each run in a fresh runs/<UTC time>-<job id>, repoints runs/latest, and says where; the first run\'s folder stays', async () => {
    const cwd = await scratch()
    const first = await coordinatorIn(cwd)
    expect(first.code, first.output).toBe(143)
    const firstDir = /\[coordinator\] Outputs go to (\S+); \S+ links to it\./.exec(first.output)?.[1]
    expect(firstDir, first.output).toMatch(new RegExp(`^${join(cwd, 'runs')}/\\d{8}T\\d{6}Z-cli-out$`))
    expect(await readdir(firstDir!), 'the coordinator wrote its metrics there').toContain('metrics.jsonl')
    const second = await coordinatorIn(cwd)
    const secondDir = /\[coordinator\] Outputs go to (\S+); \S+ links to it\./.exec(second.output)?.[1]
    expect(secondDir).not.toBe(firstDir)
    expect(join(cwd, 'runs', await readlink(join(cwd, 'runs', 'latest')))).toBe(secondDir)
    expect(await readdir(firstDir!)).toContain('metrics.jsonl')
    expect((await readdir(join(cwd, 'runs'))).length).toBe(3)
  }, scaled(90_000))

  test('with --out uses that folder and makes no runs folder', async () => {
    const cwd = await scratch()
    const run = await coordinatorIn(cwd, ['--out', 'mine'])
    expect(run.output).toContain(`[coordinator] Outputs go to ${join(cwd, 'mine')} (--out).`)
    expect((await readdir(cwd)).sort()).toEqual(['mine'])
  }, scaled(60_000))
})
