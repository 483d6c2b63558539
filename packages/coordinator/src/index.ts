// Curated public API of @ringtrain/coordinator. Anything not listed here is internal.
export { startCoordinator } from './server.js'
export type { Coordinator, CoordinatorOptions, CoordinatorResult } from './server.js'
export type {
  CoordinatorEvent, Failure, JobSummary, MetricsLine, Participant, Phase, ProgressSample, RankPosition, StallReport, WaitingWorker,
} from './rendezvous/types.js'
export type { DataSource, DataDescription } from './data-server.js'
