/** Skipped steps (`--on-nonfinite skip`) reach the metrics lines and the job summary. */
import { decide, initialState, type RendezvousAction, type RendezvousEvent, type RendezvousState } from '@ringtrain/coordinator/unstable-internals-do-not-import'
import { MessageType, controlMessage, resolveJobConfig, type StepMetrics } from '@ringtrain/core'
import { expect, test } from 'vitest'

const config = resolveJobConfig({ jobId: 'job-1', worldSize: 2, task: 'task.ts', outDir: 'out', epochs: 1 })

function run(state: RendezvousState, events: RendezvousEvent[]): { state: RendezvousState; actions: RendezvousAction[] } {
  const actions: RendezvousAction[] = []
  for (const event of events) {
    const decision = decide(state, event, 1_000_000)
    state = decision.state
    actions.push(...decision.actions)
  }
  return { state, actions }
}

const join = (from: string): RendezvousEvent => ({
  kind: 'join', from, message: controlMessage(MessageType.JoinRequest, 'job-1', { host: 'host-a', pid: Number.parseInt(from, 16), dataEndpoints: [`tcp://127.0.0.1:${from}`], backend: 'cpu' }),
})
const metrics = (from: string, rank: number, step: number, fields: Partial<StepMetrics> = {}): RendezvousEvent => ({
  kind: 'metrics', from, message: controlMessage(MessageType.StepMetrics, 'job-1', { rank, round: 0, step, epoch: 0, loss: 1, learningRate: 0.01, samples: 8, computeMs: 5, allReduceMs: 1, bytesSent: 10, ...fields }),
})
const done = (from: string, rank: number, skippedSteps?: number): RendezvousEvent => ({
  kind: 'done', from, message: controlMessage(MessageType.WorkerDone, 'job-1', { rank, steps: 2, parameterHash: 'h', finalLoss: 1, eval: {}, backend: 'cpu', ...(skippedSteps === undefined ? {} : { skippedSteps }) }),
})
const lines = (actions: RendezvousAction[]) => actions.flatMap((a) => (a.kind === 'writeMetricsLine' ? [a.line] : []))
const summaryOf = (actions: RendezvousAction[]) => actions.flatMap((a) => (a.kind === 'finish' ? [a.summary] : []))[0]

test('metrics lines carry the skipped-step count when workers report it, and the summary counts them', () => {
  const started = run(initialState(config), [join('a1'), join('b2')]).state
  const { actions } = run(started, [
    metrics('a1', 0, 0, { skippedSteps: 0 }), metrics('b2', 1, 0, { skippedSteps: 0 }),
    metrics('a1', 0, 1, { skippedSteps: 1, loss: Number.NaN }), metrics('b2', 1, 1, { skippedSteps: 1 }),
    done('a1', 0, 1), done('b2', 1, 1),
  ])
  expect(lines(actions).map((l) => l.skippedSteps)).toEqual([0, 1])
  expect(summaryOf(actions)).toMatchObject({ skippedSteps: 1, replicasIdentical: true })
})

test('workers that say nothing of skipped steps leave it out of the lines, and the summary says 0', () => {
  const started = run(initialState(config), [join('a1'), join('b2')]).state
  const { actions } = run(started, [metrics('a1', 0, 0), metrics('b2', 1, 0), done('a1', 0), done('b2', 1)])
  expect(lines(actions)[0]).not.toHaveProperty('skippedSteps')
  expect(summaryOf(actions)).toMatchObject({ skippedSteps: 0 })
})
