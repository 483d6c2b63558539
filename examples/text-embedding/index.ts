/**
 * An embedding layer trained data-parallel: classify token sequences by whether the
 * "positive" tokens outnumber the "negative" ones. Embedding → conv1d → global max pool →
 * dense. On wasm its gradients need the kernel pack (UnsortedSegmentSum for the embedding,
 * Conv2DBackpropFilter for conv1d).
 * Run: pnpm ringtrain launch -n 2 examples/text-embedding
 */
import { arrayDataset, defineTask, tf } from '@ringtrain/worker'

const vocabulary = 50
const sequenceLength = 12
const positive = new Set([1, 2, 3, 4, 5])
const negative = new Set([6, 7, 8, 9, 10])

/** Token sequences from a seeded generator; label 1 when positive tokens outnumber negative ones. */
function sequences(length: number, seed: number) {
  let state = seed >>> 0
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 4294967296
  }
  const inputs = new Float32Array(length * sequenceLength)
  const targets = new Float32Array(length)
  for (let i = 0; i < length; i++) {
    let score = 0
    for (let t = 0; t < sequenceLength; t++) {
      const token = Math.floor(next() * vocabulary)
      inputs[i * sequenceLength + t] = token
      score += positive.has(token) ? 1 : negative.has(token) ? -1 : 0
    }
    targets[i] = score > 0 ? 1 : 0
  }
  return arrayDataset({ inputs, inputShape: [sequenceLength], targets, targetShape: [1] })
}

export default defineTask({
  name: 'text-embedding',
  model: () =>
    tf.sequential({
      layers: [
        tf.layers.embedding({ inputDim: vocabulary, outputDim: 16, inputLength: sequenceLength }),
        tf.layers.conv1d({ filters: 16, kernelSize: 3, activation: 'relu' }),
        tf.layers.globalMaxPooling1d(),
        tf.layers.dense({ units: 1, activation: 'sigmoid' }),
      ],
    }),
  loss: 'binaryCrossentropy',
  optimizer: 'adam',
  learningRate: 0.01,
  batchSize: 32,
  epochs: 8,
  metrics: ['accuracy'],
  data: { train: () => sequences(4096, 1), eval: () => sequences(1024, 2) },
})
