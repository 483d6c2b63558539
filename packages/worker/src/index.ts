// Curated public API of @ringtrain/worker. Anything not listed here is internal.

/** The tfjs instance workers compute with: import it from here to be sure a task shares the worker's engine. */
export * as tf from '@tensorflow/tfjs'

// The plug-in API a task module uses.
export { defineTask, isTask } from './task/define-task.js'
export type { Task } from './task/define-task.js'
export type { TaskSpec, CustomModel, LossName, LossFunction, OptimizerName, OptimizerSpec, LearningRateSchedule, MetricSpec } from './task/task-spec.js'
export { lossNames, optimizerNames } from './task/task-spec.js'
export { loadTask } from './task/load-task.js'

// Data.
export type { Dataset, Batch } from './data/dataset.js'
export { arrayDataset } from './data/array-dataset.js'
export type { ArrayDatasetOptions, SampleValues } from './data/array-dataset.js'
export { csvDataset } from './data/csv-dataset.js'
export type { CsvDatasetOptions, CsvColumn } from './data/csv-dataset.js'
export { jsonLinesDataset } from './data/json-lines-dataset.js'
export type { JsonLinesDatasetOptions } from './data/json-lines-dataset.js'
export { idxDataset } from './data/idx-dataset.js'
export type { IdxDatasetOptions } from './data/idx-dataset.js'
export { mnistDataset, MNIST_TRAIN_LENGTH, MNIST_TEST_LENGTH } from './data/mnist-dataset.js'
export type { MnistDatasetOptions } from './data/mnist-dataset.js'
export type { OneHotClasses } from './data/cells.js'

// Training a replica.
export { Replica } from './train/replica.js'
export type { ReplicaOptions } from './train/replica.js'
export type { OptimizerState } from './train/optimizer-state.js'
export { learningRateAt } from './train/learning-rate-at.js'
export { saveModel } from './checkpoint/save-model.js'
export type { SavedModelSource } from './checkpoint/save-model.js'

// Compute backends.
export { selectBackend, cudaVisibleDevicesFor, wasmBinariesDirectory } from './backends/select-backend.js'
export type { SelectedBackend, SelectBackendOptions } from './backends/select-backend.js'
export { registerTrainingKernels } from './backends/register-pack.js'
export type { TrainingKernelPack } from './backends/register-pack.js'
export { selfTest, selfTestChecks, SELF_TEST_TOLERANCE } from './backends/self-test.js'
export { measureStepMs, buildBenchModel } from './backends/measure-step.js'
export type { BenchModelName, MeasureStepOptions, StepTiming } from './backends/measure-step.js'

// Control plane and the worker process.
export { CoordinatorClient } from './control/coordinator-client.js'
export type { JoinFields, JoinOptions, StepReport, DoneReport } from './control/coordinator-client.js'
export { runWorker } from './run/run-worker.js'
export type { WorkerOptions } from './run/run-worker.js'
