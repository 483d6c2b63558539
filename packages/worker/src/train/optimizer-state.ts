/**
 * An optimizer's state (iteration count and slots: momentum accumulators, Adam's moments)
 * as one flat buffer, so that a worker that joins a running job can take rank 0's state
 * along with its weights. Without it, a newcomer's fresh Adam moments would make its
 * replica drift from the others at the first step.
 */
import type * as tf from '@tensorflow/tfjs'
import { createLayout, type GradientLayout } from '@ringtrain/core'
import { tensorsFromFlat, writeTensorsInto } from '../tfjs-adapter.js'

/**
 * `layout` names entries by position (`iter`, `slot/0`, `slot/1`, …), never by the
 * process-specific names tfjs gives variables, so two ranks' layouts compare equal.
 * `iter` is stored as float32: exact up to 2^24 steps.
 */
export interface OptimizerState {
  layout: GradientLayout
  values: Float32Array
}

/*
 * Note [Optimizer scalars]
 * Adam (and Adamax) keep beta1^t and beta2^t as running products in variables `accBeta1` and
 * `accBeta2`, updated by multiplication every step. tfjs's getWeights() leaves them out and
 * setWeights() recomputes them as pow(beta, iterations + 1), which differs from the running
 * product in the last bits: a resumed Adam would drift from an uninterrupted one. So they
 * travel too, as `scalar/<name>` after the slots, and are assigned after setWeights.
 */
const SCALAR_NAMES = ['accBeta1', 'accBeta2'] as const

function scalarsOf(optimizer: tf.Optimizer): { name: string; variable: tf.Variable }[] {
  const record = optimizer as unknown as Record<string, unknown>
  return SCALAR_NAMES.filter((name) => isVariable(record[name])).map((name) => ({ name, variable: record[name] as tf.Variable }))
}

function isVariable(value: unknown): value is tf.Variable {
  return typeof value === 'object' && value !== null && typeof (value as tf.Variable).assign === 'function' && Array.isArray((value as tf.Variable).shape)
}

/** Reads `optimizer`'s iteration count and slots in tfjs's `getWeights()` order, then its running scalars (Note [Optimizer scalars]). */
export async function readOptimizerState(optimizer: tf.Optimizer): Promise<OptimizerState> {
  const weights = await optimizer.getWeights()
  const scalars = scalarsOf(optimizer)
  const layout = createLayout([
    ...weights.map((w, i) => ({ name: i === 0 ? 'iter' : `slot/${i - 1}`, shape: w.tensor.shape })),
    ...scalars.map((s) => ({ name: `scalar/${s.name}`, shape: s.variable.shape })),
  ])
  const values = new Float32Array(layout.length)
  writeTensorsInto(
    [...weights.map((w) => w.tensor), ...scalars.map((s) => s.variable)],
    layout,
    values,
  )
  weights[0]?.tensor.dispose() // the `iter` scalar is made for us; slots are the optimizer's own variables
  return { layout, values }
}

/** Replaces `optimizer`'s state with `state` (from `readOptimizerState` of the same optimizer type). */
export async function writeOptimizerState(optimizer: tf.Optimizer, state: OptimizerState): Promise<void> {
  const previous = await optimizer.getWeights()
  const tensors = tensorsFromFlat(state.layout, state.values)
  const named = tensors.map((tensor, i) => ({ name: state.layout.entries[i]!.name, tensor }))
  await optimizer.setWeights(named.filter((w) => !w.name.startsWith('scalar/')))
  const scalars = new Map(scalarsOf(optimizer).map((s) => [`scalar/${s.name}`, s.variable]))
  for (const { name, tensor } of named) if (name.startsWith('scalar/')) scalars.get(name)?.assign(tensor)
  // setWeights made new variables from the tensors: release ours and the old slots.
  for (const tensor of tensors) tensor.dispose()
  for (const { tensor } of previous) tensor.dispose()
}
