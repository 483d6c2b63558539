// Internals exposed for tests only. Not part of the public API: may change without notice.
// This module loads tfjs. The coordinator tests' fake worker processes need only the control
// client and start 2 s faster without tfjs, so the client alone is also the subpath
// `@ringtrain/worker/unstable-control-client-do-not-import` (see package.json).
export { isTask } from './task/define-task.js'
export { loadTask } from './task/load-task.js'
export { Replica } from './train/replica.js'
export type { ReplicaOptions } from './train/replica.js'
export type { OptimizerState } from './train/optimizer-state.js'
export { learningRateAt, baseLearningRate, withBaseLearningRate } from './train/learning-rate-at.js'
export { saveModel } from './checkpoint/save-model.js'
export type { SavedModelSource } from './checkpoint/save-model.js'
export { registerTrainingKernels } from './backends/register-pack.js'
export type { TrainingKernelPack } from './backends/register-pack.js'
export { selfTest, selfTestChecks, SELF_TEST_TOLERANCE } from './backends/self-test.js'
export { adamUpdateConfig, ADAM_UPDATE } from './backends/kernels/adam-update.js'
export { useFusedAdam } from './backends/fused-adam.js'
export { assignVariablesFromFlat, tensorsFromFlat, writeTensorsInto } from './tfjs-adapter.js'
export { swapOperands } from './backends/kernels/batch-mat-mul.js'
export { CoordinatorClient } from './control/coordinator-client.js'
export type { JoinFields, JoinOptions, StepReport, DoneReport } from './control/coordinator-client.js'
