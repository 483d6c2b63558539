/** The bench MLP (784-512-256-10, `bench compute`'s model) as a task, for the scripts that drive a Replica directly. */
import { buildBenchModel, defineTask, tf } from '@ringtrain/worker'

export const benchMlpTask = defineTask({
  name: 'bench-mlp',
  model: () => buildBenchModel('mlp'),
  loss: 'softmaxCrossEntropy',
  optimizer: 'adam',
  // The scripts make their own batches; a worker would read this dataset.
  data: { train: () => ({ length: 0, inputShape: [784], targetShape: [10], batch: () => ({ x: tf.zeros([1, 784]), y: tf.zeros([1, 10]) }) }) },
})
