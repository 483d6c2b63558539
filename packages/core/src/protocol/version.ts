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
 */
export const PROTOCOL_VERSION = 4
