/**
 * How much slower than an idle machine this test run may be: one factor, derived once per
 * test file, that every deadline depending on the OS scheduler is multiplied by (deadlines
 * of runs across processes, collective timeouts on a path that must succeed, keep-alive
 * rates, the bounds of timing assertions). Instead of magic numbers tuned on an idle
 * machine, a test states its idle-machine budget and writes `scaled(ms)`.
 *
 *   RINGTRAIN_TEST_SLACK=3 npx -y pnpm@10 test    # a factor of your choosing (≥ 1)
 *
 * Without the variable, the factor is the machine's load per core, at least 1 and at most
 * {@link MAX_DERIVED_SLACK}: the larger of the 1-minute load average and the tasks runnable
 * right now (/proc/loadavg, which sees CPU hogs started a moment ago, before the average
 * has caught up), each divided by the number of cores. The test run itself counts: vitest's
 * forks and the processes they start are load too.
 *
 * Most deadlines only bound how long a hang takes to be reported and never make a passing
 * run slower; a test that waits for a deadline to pass on purpose gets slower by the factor,
 * so keep those budgets small. A test that asserts a timing behaviour keeps its own
 * idle-machine bound and widens only the part load stretches (see the comment at each such
 * assertion).
 */
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'

/** The cap of the factor derived from load; RINGTRAIN_TEST_SLACK may set more. */
export const MAX_DERIVED_SLACK = 4

function deriveSlack(): number {
  const fromEnv = process.env.RINGTRAIN_TEST_SLACK
  if (fromEnv !== undefined && fromEnv !== '') {
    const value = Number(fromEnv)
    if (!Number.isFinite(value) || value < 1) throw new Error(`RINGTRAIN_TEST_SLACK must be a number ≥ 1; got '${fromEnv}'.`)
    return value
  }
  const cores = Math.max(1, cpus().length)
  let runnable = 0
  try {
    // "0.52 0.58 0.59 3/250 12345": the 4th field is runnable/total; minus this process.
    runnable = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[3]!.split('/')[0]) - 1
  } catch {
    // Not Linux: the load average alone.
  }
  const perCore = Math.max(loadavg()[0]!, Number.isFinite(runnable) ? runnable : 0) / cores
  return Math.min(MAX_DERIVED_SLACK, Math.max(1, perCore))
}

/** ≥ 1: how many times longer than on an idle machine a deadline in this file may be. */
export const slack: number = deriveSlack()

/** `ms`, an idle-machine budget, stretched by {@link slack} (whole milliseconds). */
export function scaled(ms: number): number {
  return Math.ceil(ms * slack)
}
