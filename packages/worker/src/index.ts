// Curated public API of @ringtrain/worker. Anything not listed here is internal.

/** The tfjs instance workers compute with: import it from here to be sure a task shares the worker's engine. */
export * as tf from '@tensorflow/tfjs'

// The plug-in API a task module uses.
export { defineTask } from './task/define-task.js'
export type { Task } from './task/define-task.js'
export type { TaskSpec, CustomModel, LossName, LossFunction, OptimizerName, OptimizerSpec, LearningRateSchedule, MetricSpec, ResizeChange, ResizeAnswer } from './task/task-spec.js'
export { lossNames, optimizerNames } from './task/task-spec.js'

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
export { loadDataSource } from './data/data-source.js'
export type { TaskDataSource } from './data/data-source.js'

// Compute backends.
export { selectBackend, cudaVisibleDevicesFor } from './backends/select-backend.js'
export type { SelectedBackend, SelectBackendOptions } from './backends/select-backend.js'
export { measureStepMs, buildBenchModel } from './backends/measure-step.js'
export type { BenchModelName, MeasureStepOptions, StepTiming } from './backends/measure-step.js'

// The worker process.
export { fileHandler, loadModel } from './checkpoint/load-model.js'
export { runWorker } from './run/run-worker.js'
export type { WorkerOptions } from './run/run-worker.js'
