// The worker's client of the coordinator (control plane).
export { CoordinatorClient } from './coordinator-client.js'
export type { JoinFields, JoinOptions, StepReport, DoneReport } from './coordinator-client.js'
