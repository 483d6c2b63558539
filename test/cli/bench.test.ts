/**
 * The benchmarks keep working and print the JSON lines the issues specify. These assert the
 * shape and sanity of the figures, never their speed (speed targets live in
 * docs/benchmarks.md, measured by these same commands).
 */
import { expect, test } from 'vitest'
import { cliTestTimeout, runCli } from '../helpers/run-cli.js'

const jsonLines = (output: string) => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))

test('bench allreduce --json prints one line per (workers, size) with the NCCL-tests bus bandwidth', async () => {
  const run = await runCli(['bench', 'allreduce', '--workers', '2,3', '--sizes', '64KiB', '--iterations', '10', '--json'])
  expect(run.code, run.output).toBe(0)
  const lines = jsonLines(run.output)
  expect(lines.map((l) => [l.op, l.workers, l.bytes])).toEqual([['allreduce', 2, 65536], ['allreduce', 3, 65536]])
  for (const line of lines) {
    expect(line.medianMs).toBeGreaterThan(0)
    // busGBps = 2(N−1)/N × bytes / median time
    const expected = ((2 * (line.workers - 1)) / line.workers) * line.bytes / (line.medianMs / 1000) / 1e9
    expect(line.busGBps).toBeCloseTo(expected, 2)
  }
}, cliTestTimeout())

test('bench scaling --json prints samples/s per worker count, with the per-step compute and all-reduce', async () => {
  const run = await runCli(['bench', 'scaling', 'examples/linear-regression', '--workers', '1,2', '--steps', '20', '--json'])
  expect(run.code, run.output).toBe(0)
  const lines = jsonLines(run.output)
  expect(lines.map((l) => l.workers)).toEqual([1, 2])
  for (const line of lines) {
    expect(line.samplesPerSecond).toBeGreaterThan(0)
    expect(line.computeMs).toBeGreaterThan(0)
  }
  expect(lines[1].allReduceMs).toBeGreaterThan(0)
}, cliTestTimeout())

test('bench flags are checked: a bad worker count names the flag', async () => {
  const run = await runCli(['bench', 'allreduce', '--workers', '2,x', '--sizes', '1MiB'])
  expect(run.code).toBe(2)
  expect(run.output).toMatch(/--workers/)
}, cliTestTimeout())
