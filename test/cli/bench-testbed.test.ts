/**
 * `bench allreduce --testbed-hosts`: ranks on emulated hosts of scripts/testbed.sh (network
 * namespaces, shaped links; CI runs as root, which it needs). Asserts the JSON fields, the
 * bound's formula and that the bench takes its bed down, at the end and on Ctrl-C. Never the
 * speed: the figures are in docs/benchmarks.md.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { expect, test } from 'vitest'
import { cliTestTimeout, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'

const jsonLines = (output: string) => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
const bedName = (output: string) => /\[bench\] test bed ([a-z0-9]+):/.exec(output)?.[1]

/** Every trace of bed `name`: its hosts' namespaces, its bridge, its state folder. */
function traces(name: string): string[] {
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((ns) => new RegExp(`^${name}h\\d+$`).test(ns))
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`${name}br`) || new RegExp(`\\b${name}v\\d+@`).test(l))
  return [...namespaces, ...links, ...(existsSync(`/run/ringtrain-testbed/${name}`) ? [`/run/ringtrain-testbed/${name}`] : [])]
}

test('bench allreduce --testbed-hosts 2 --link-mbit: one rank per host, encrypted tcp, boundMs = 2(N−1)/N × bytes at the link rate; the bed is gone after', async () => {
  const run = await runCli(['bench', 'allreduce', '--testbed-hosts', '2', '--workers', '2', '--link-mbit', '10000', '--sizes', '1MiB', '--iterations', '10', '--json'])
  expect(run.code, run.output).toBe(0)
  const lines = jsonLines(run.output)
  const cases = lines.filter((l) => l.op === 'allreduce')
  expect(cases.map((l) => [l.workers, l.bytes, l.linkMbit, l.testbedHosts, l.security, l.link])).toEqual([[2, 1048576, 10000, 2, 'encrypted', 'tcp']])
  const figure = cases[0]
  // 2(N−1)/N × 1 MiB at 10 000 Mbit/s: 1 × 8 388 608 bits / 1e10 bit/s = 0.839 ms.
  expect(figure.boundMs).toBeCloseTo(((2 * (2 - 1)) / 2) * 1048576 * 8 / (10000 * 1e6) * 1000, 3)
  expect(figure.medianMs).toBeGreaterThan(0)
  expect(figure.boundRatio).toBeCloseTo(figure.medianMs / figure.boundMs, 2)
  expect(figure.busGBps).toBeCloseTo(1048576 / (figure.medianMs / 1000) / 1e9, 2)
  expect(figure.p90Ms).toBeGreaterThanOrEqual(figure.medianMs)
  // The raw TCP check: one link, then the ring of 2 hosts.
  const tcp = lines.filter((l) => l.op === 'tcp')
  expect(tcp.map((l) => [l.pattern, l.workers, l.linkMbit])).toEqual([['one link', 2, 10000], ['ring', 2, 10000]])
  for (const line of tcp) {
    expect(line.mbit).toBeGreaterThan(0)
    expect(line.linkFraction).toBeCloseTo(line.mbit / 10000, 2)
  }
  const name = bedName(run.output)
  expect(name, run.output).toMatch(/^b[a-z0-9]{1,5}$/)
  expect(traces(name!)).toEqual([])
}, cliTestTimeout())

test('a bench interrupted with Ctrl-C (SIGINT) while its ranks run still takes its bed down', async () => {
  // 64 MiB at 100 Mbit/s takes seconds per iteration: the signal comes mid-run.
  const bench = startCli(['bench', 'allreduce', '--testbed-hosts', '2', '--workers', '2', '--link-mbit', '100', '--sizes', '64MiB', '--iterations', '10', '--json'])
  await waitForOutput(bench, /"pattern":"ring"/)
  const name = bedName(bench.output())
  expect(name, bench.output()).toBeDefined()
  expect(traces(name!).length).toBeGreaterThan(0)
  bench.child.kill('SIGINT')
  const exit = await waitForExit(bench)
  expect(exit.code, bench.output()).toBe(130)
  expect(traces(name!)).toEqual([])
  expect(bench.output()).not.toMatch(/"op":"allreduce"/)
}, cliTestTimeout())

test('--link-mbit without --testbed-hosts, and more workers than hosts, are refused naming the flags', async () => {
  const lone = await runCli(['bench', 'allreduce', '--link-mbit', '1000', '--sizes', '1MiB'])
  expect(lone.code).toBe(2)
  expect(lone.output).toMatch(/--link-mbit shapes the links of the test bed: give --testbed-hosts N too/)
  const crowded = await runCli(['bench', 'allreduce', '--testbed-hosts', '2', '--link-mbit', '1000', '--workers', '2,4', '--sizes', '1MiB'])
  expect(crowded.code).toBe(2)
  expect(crowded.output).toMatch(/--workers 4 needs as many test-bed hosts \(one rank per host\); --testbed-hosts is 2/)
  expect(crowded.output).not.toMatch(/\[bench\] test bed/)
}, cliTestTimeout())
