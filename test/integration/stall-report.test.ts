/**
 * The stall report (docs/design.md, "Stall reports"): a SIGSTOPped worker stalls the
 * collective the others wait in; before that collective times out, the coordinator logs one
 * report naming the stopped rank and, for every rank, its step and collective, and writes it
 * to stall-reports.json.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import type { StallReport } from '@ringtrain/coordinator'
import { cliTestTimeout, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { scaled } from '../helpers/slack.js'

// Collectives time out after 8 s on an idle machine; the report is due after half of that.
const stepTimeoutMs = scaled(8_000)
const heartbeatIntervalMs = 200
// Nobody is declared lost before the collectives time out: the stall itself must be reported.
const heartbeatMaxMissed = Math.ceil((3 * stepTimeoutMs) / heartbeatIntervalMs)

test('SIGSTOP of a worker: before the step timeout, one stall report names it and the step and collective of every rank', async () => {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-stall-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  const run = startCli(['launch', '-n', '3', 'examples/mnist-mlp', '--backend', 'cpu', '--out', out, '--quiet',
    '--step-timeout-ms', String(stepTimeoutMs), '--heartbeat-interval-ms', String(heartbeatIntervalMs), '--heartbeat-max-missed', String(heartbeatMaxMissed)])
  await waitForOutput(run, /\[worker 1\].*trains \d+ epoch/)
  const pids = [...run.output().matchAll(/started worker (\d) \(pid (\d+)\)/g)].map((m) => Number(m[2]))
  expect(pids, run.output()).toHaveLength(3)
  const stopped = pids[1]!
  process.kill(stopped, 'SIGSTOP')
  onTestFinished(() => {
    try {
      process.kill(stopped, 'SIGCONT')
      process.kill(stopped, 'SIGKILL')
    } catch { /* gone */ }
  })

  // Rank 1 is silent only once stopped: this is the report about the stop, not an earlier one.
  const reportLine = /\[coordinator\] Stall report \(([^\n]*)\): ranks that have not arrived at ([^\n]*?): \[([\d, ]*)\]; ranks waited for: \[([\d, ]*)\]; ranks not heard for over [\d.]+ s: \[1\]\.\n((?: {2}rank \d[^\n]*\n?){3})/
  const output = await waitForOutput(run, reportLine)
  const [whole, why, , notArrived, waitedOn, rows] = reportLine.exec(output)!
  const firstTimeout = output.search(/E_TIMEOUT/)
  expect(firstTimeout === -1 || firstTimeout > output.indexOf(whole!), `the report came after a collective timed out:\n${output}`).toBe(true)
  // A rank still running is the one that waited; the stopped one's position is only its last word.
  expect(why).toMatch(/^rank [02] \(pid \d+ on [^)]+\) has waited in \w+ op \d+ at step \d+ for [\d.]+ s; collectives time out after [\d.]+ s$/)
  // The stopped rank has not arrived, or (stopped inside the collective) is the one waited for.
  expect([...parse(notArrived!), ...parse(waitedOn!)], whole).toContain(1)
  const lines = rows!.trimEnd().split('\n')
  for (const [rank, line] of lines.entries()) {
    expect(line, whole).toMatch(new RegExp(`^ {2}rank ${rank} \\(pid ${pids[rank]} on [^)]+\\): step \\d+, (\\w+ op \\d+, |between collectives \\(next op \\d+\\) )`))
  }
  // The ranks still running wait in the same all-reduce.
  const waiting = [lines[0]!, lines[2]!].map((l) => /step (\d+), (\w+) op (\d+), .*waiting for rank \d/.exec(l)?.slice(1))
  expect(waiting[0], whole).toBeDefined()
  expect(waiting[1], whole).toEqual(waiting[0])
  expect(lines[1], whole).toMatch(/last heard [\d.]+ s ago$/)

  // The collectives then time out and fail the job; the stopped worker is let go.
  await waitForOutput(run, /\[coordinator\] rank [02] \(pid \d+ on [^)]+\) failed: CollectiveTimeoutError \[E_TIMEOUT\]/)
  process.kill(stopped, 'SIGCONT')
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(1)
  const reports = JSON.parse(readFileSync(join(out, 'stall-reports.json'), 'utf8')) as StallReport[]
  const report = reports.find((r) => r.trigger === 'stalled' && r.silent.includes(1))
  expect(report, JSON.stringify(reports, null, 2)).toBeDefined()
  expect(report!.ranks.map((r) => r.rank)).toEqual([0, 1, 2])
  for (const r of report!.ranks) expect(r.step, JSON.stringify(r)).toBeTypeOf('number')
  expect(report!.ranks.filter((r) => r.rank !== 1).map((r) => r.collective)).toEqual([waiting[0]![1], waiting[0]![1]])
  expect([...report!.notArrived, ...report!.waitedOn]).toContain(1)
}, cliTestTimeout())

function parse(list: string): number[] {
  return list.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number)
}
