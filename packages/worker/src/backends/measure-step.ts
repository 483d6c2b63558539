/**
 * Times training steps of the compute benchmark's two models on the active backend: the
 * work one worker does per step before the all-reduce (forward, backward, Adam update).
 * Used by `ringtrain bench compute`, which runs each backend in a fresh process because
 * kernel registrations are global.
 */
import * as tf from '@tensorflow/tfjs'
import { useFusedAdam } from './fused-adam.js'

export type BenchModelName = 'mlp' | 'cnn'

export interface MeasureStepOptions {
  model: BenchModelName
  batchSize?: number
  /** Steps run and discarded first (kernel set-up, heap growth). Default 3. */
  warmupSteps?: number
  /** Timed steps. Default 10. */
  timedSteps?: number
  /**
   * Stops timing once this much time has been spent (at least one timed step), and skips
   * further warm-up once a step exceeds it / 10: stock cpu takes ≈ 26 s per CNN step.
   */
  budgetMs?: number
}

export interface StepTiming {
  /** Median over the timed steps, in ms. */
  msPerStep: number
  stepsMs: number[]
}

/** The benchmark's models: MLP 784-512-256-10; CNN conv 32 3×3 → maxpool → conv 64 3×3 → maxpool → dense 128 → dense 10. */
export function buildBenchModel(name: BenchModelName): tf.Sequential {
  const model = tf.sequential()
  if (name === 'mlp') {
    model.add(tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu' }))
    model.add(tf.layers.dense({ units: 256, activation: 'relu' }))
  } else {
    model.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu' }))
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }))
    model.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }))
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }))
    model.add(tf.layers.flatten())
    model.add(tf.layers.dense({ units: 128, activation: 'relu' }))
  }
  model.add(tf.layers.dense({ units: 10 }))
  return model
}

/** Runs training steps of `options.model` (batch 64, Adam 1e-3, softmax cross-entropy) and returns their median time. */
export async function measureStepMs(options: MeasureStepOptions): Promise<StepTiming> {
  const batchSize = options.batchSize ?? 64
  const budgetMs = options.budgetMs ?? 30_000
  const model = buildBenchModel(options.model)
  const optimizer = tf.train.adam(1e-3)
  const removeFusedAdam = useFusedAdam(optimizer) // as a worker's Replica does
  const inputShape = options.model === 'mlp' ? [batchSize, 784] : [batchSize, 28, 28, 1]
  const xs = tf.randomUniform(inputShape)
  const labels = tf.oneHot(tf.randomUniform([batchSize], 0, 10, 'int32') as tf.Tensor1D, 10)
  const step = (): number => {
    const start = performance.now()
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.apply(xs) as tf.Tensor) as tf.Scalar)
      optimizer.applyGradients(grads as never) // a NamedTensorMap, which Adam accepts at run time
      value.dataSync() // wasm and cpu are synchronous; this also keeps the step from being lazy elsewhere
    })
    return performance.now() - start
  }
  try {
    for (let i = 0; i < (options.warmupSteps ?? 3); i++) if (step() > budgetMs / 10) break
    const stepsMs: number[] = []
    const started = performance.now()
    while (stepsMs.length < (options.timedSteps ?? 10) && (stepsMs.length === 0 || performance.now() - started < budgetMs)) stepsMs.push(step())
    const sorted = [...stepsMs].sort((a, b) => a - b)
    const middle = sorted.length >> 1
    const msPerStep = sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
    return { msPerStep, stepsMs }
  } finally {
    tf.dispose([xs, labels])
    removeFusedAdam()
    optimizer.dispose()
    model.dispose()
  }
}
