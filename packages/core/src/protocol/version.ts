/**
 * Version of everything ringtrain puts on the wire: data-plane frame headers and control
 * messages. Bump on any incompatible change; peers with another version are refused with
 * code E_PROTOCOL_VERSION.
 *
 * 1: first release. 2: KeepAlive (coordinator ⇄ workers) for liveness in both directions.
 * 3: frame headers name the collective of each op and the ring step; StepMetrics carry the
 *    learning rate the step used.
 * 4: WorkerDone carries evalExamples (the coordinator checks eval counts against shards);
 *    every socket authenticates with the job key (Note [Job security]).
 * 5: Alive (a worker's liveness thread → coordinator) and JoinRequest.livenessToken: liveness
 *    no longer depends on the compute thread.
 * 6: StopRequest (graceful stop), JobConfig's checkpoint, resume, non-finite and replica-check
 *    fields, WorkerDone's stopReason/checkpoint/skippedSteps, StepMetrics.skippedSteps.
 * 7: JoinRequest's rankHint, worldSizeHint and hintSource (ranks from schedulers);
 *    DataRequest and DataChunk (--serve-data), WorkerDone.maxRssBytes.
 */
export const PROTOCOL_VERSION = 7
