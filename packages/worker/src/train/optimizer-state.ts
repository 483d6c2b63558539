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

/** Reads `optimizer`'s iteration count and slots in tfjs's `getWeights()` order. */
export async function readOptimizerState(optimizer: tf.Optimizer): Promise<OptimizerState> {
  const weights = await optimizer.getWeights()
  const layout = createLayout(weights.map((w, i) => ({ name: i === 0 ? 'iter' : `slot/${i - 1}`, shape: w.tensor.shape })))
  const values = new Float32Array(layout.length)
  writeTensorsInto(
    weights.map((w) => w.tensor),
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
  await optimizer.setWeights(tensors.map((tensor, i) => ({ name: state.layout.entries[i]!.name, tensor })))
  // setWeights made new variables from the tensors: release ours and the old slots.
  for (const tensor of tensors) tensor.dispose()
  for (const { tensor } of previous) tensor.dispose()
}
