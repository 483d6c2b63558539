/**
 * Every optimizer name × every learning-rate schedule type trains across processes: two
 * ranks in their own OS processes average a known gradient over ZeroMQ and step with the
 * scheduled rate. The oracle re-computes tfjs 4.22's update rules in float64 with the rate
 * each step should have, independently of how the worker sets rates; an optimizer whose
 * rate never changes (the bug that broke Adam with any schedule) would not match it.
 */
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { optimizerNames, type OptimizerName } from '@ringtrain/worker'
import { learningRateAt } from '@ringtrain/worker/unstable-internals-do-not-import'
import { runInProcesses, runInProcessesTimeout } from '../helpers/process-world.js'
import { scaled } from '../helpers/slack.js'
import { scheduleCases, type ScheduleParams } from './fixtures/optimizer-schedules.scenario.js'

const scenario = fileURLToPath(new URL('./fixtures/optimizer-schedules.scenario.ts', import.meta.url))
// 40 replicas × 6 steps over a real ring: about 5 s on an idle 2-core machine.
const deadlineMs = scaled(60_000)
const steps = 6
const worldSize = 2
/** The averaged gradient: rank r contributes r + 1. */
const gradient = (worldSize + 1) / 2
/** tfjs's defaults (ringtrain's for momentum), and the float32 backends' epsilon. */
const epsilon = 1e-7

/** Weights after each step of `optimizer` from w = 0 under a constant gradient, rates `rates[t]`. */
function oracle(optimizer: OptimizerName, rates: number[]): number[] {
  const g = gradient
  let w = 0
  let a = 0 // momentum accumulator, Adam's m, Adamax's m, Adadelta's accumulated gradient, RMSProp's mean square
  let b = optimizer === 'adagrad' ? 0.1 : 0 // Adam's v, Adamax's u, Adagrad's accumulator, Adadelta's accumulated update
  const weights: number[] = []
  rates.forEach((lr, i) => {
    const t = i + 1
    switch (optimizer) {
      case 'sgd': w -= lr * g; break
      case 'momentum': a = 0.9 * a + g; w -= lr * a; break
      case 'nesterov': a = 0.9 * a + g; w -= lr * (g + 0.9 * a); break
      case 'adam': {
        a = 0.9 * a + 0.1 * g
        b = 0.999 * b + 0.001 * g * g
        w -= (lr * (a / (1 - 0.9 ** t))) / (Math.sqrt(b / (1 - 0.999 ** t)) + epsilon)
        break
      }
      case 'adamax': a = 0.9 * a + 0.1 * g; b = Math.max(0.999 * b, Math.abs(g)); w -= ((lr / (1 - 0.9 ** t)) * a) / (b + epsilon); break
      case 'adagrad': b += g * g; w -= (lr * g) / Math.sqrt(b + epsilon); break
      case 'adadelta': {
        // As tfjs 4.22 computes it: the update divides by the accumulated gradient before this step's.
        const update = (Math.sqrt(b + epsilon) / Math.sqrt(a + epsilon)) * g
        a = 0.95 * a + 0.05 * g * g
        b = 0.95 * b + 0.05 * update * update
        w -= lr * update
        break
      }
      case 'rmsprop': a = 0.9 * a + 0.1 * g * g; w -= (lr * g) / Math.sqrt(a + epsilon); break
    }
    weights.push(w)
  })
  return weights
}

describe.each(['cpu', 'wasm'] as const)('every optimizer × every schedule across 2 processes on %s', (backend) => {
  test('trains with the scheduled rate at every step, ranks bitwise identical', async () => {
    const [rank0, rank1] = await runInProcesses<ScheduleParams, Record<string, number[]>>({
      worldSize, scenario, exportName: 'trainEveryCombination', params: { backend, steps }, deadlineMs,
    })
    const names: string[] = []
    for (const optimizer of optimizerNames) {
      for (const [scheduleName, schedule] of Object.entries(scheduleCases)) {
        const name = `${optimizer} ${scheduleName}`
        names.push(name)
        const got = rank0![name]!
        expect(rank1![name], `${name}: rank 1 against rank 0`).toEqual(got) // same bytes after every step
        const expected = oracle(optimizer, Array.from({ length: steps }, (_, step) => learningRateAt(schedule, step)))
        got.forEach((w, i) => expect(Math.abs(w - expected[i]!), `${name}, step ${i}: got ${w}, expected ${expected[i]}`).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(expected[i]!)))
      }
    }
    expect(Object.keys(rank0!).sort()).toEqual(names.sort()) // 8 optimizers × 5 schedules, none skipped
  }, runInProcessesTimeout(deadlineMs))
})
