// Curated public API of @ringtrain/core. Anything not listed here is internal.
export {
  DistError,
  CollectiveAbortedError,
  CollectiveTimeoutError,
  PeerLostError,
  FrameError,
  StaleRoundError,
  RingAllReduceError,
  LayoutMismatchError,
  ConfigError,
  InternalError,
  OutputWriteError,
  outputWriteError,
  NonFiniteGradientError,
  ReplicaMismatchError,
  invariant,
  errorFromWire,
} from './errors.js'
export type { ErrorCode, ErrorContext, WireError } from './errors.js'
export type { Transport, Tag } from './transport/transport.js'
export { InProcessHub, InProcessTransport } from './transport/in-process.js'
export { PROTOCOL_VERSION } from './protocol/version.js'
export { encode, decode } from './protocol/codec.js'
export { createZmqTransport } from './transport/create-transport.js'
export type { BoundZmqTransport, ZmqEndpoints, ZmqTransportOptions } from './transport/zeromq-options.js'
export { endpointsToWire, endpointsFromWire } from './transport/zeromq-options.js'
export { distributedSampler } from './sharding/distributed-sampler.js'
export type { DistributedSamplerOptions } from './sharding/distributed-sampler.js'
export { stepsPerEpoch, batchIndices } from './sharding/batches.js'
export { evalShard } from './sharding/eval-shard.js'
export { mulberry32, seededPermutation } from './sharding/mulberry32.js'
// Control plane: messages between coordinator and workers, their validation, the job config.
export { MessageType, messageTypeName, controlMessage, OUTPUT_PART_BYTES, DATA_CHUNK_BYTES } from './protocol/messages.js'
export type {
  ControlMessage, MessageFields, JoinRequest, JoinResponse, Assignment, Reject, Heartbeat, Alive, BarrierRequest,
  BarrierRelease, StepMetrics, MetricSum, WorkerDone, WorkerFailed, Abort, Shutdown, OutputPart, OutputCommit, OutputAck, OutputRequest, OutputTarget,
  DataRequest, DataChunk, DataSplit, WireFieldLayout,
} from './protocol/messages.js'
export { MAX_CONTROL_MESSAGE_BYTES } from './protocol/validate.js'
export { resolveJobConfig, JOB_CONFIG_DEFAULTS, BACKEND_NAMES, ON_NONFINITE_MODES } from './protocol/job-config.js'
export type { JobConfig, JobConfigInput, BackendName, OnNonFinite } from './protocol/job-config.js'
export { openControlServer, connectControlClient } from './transport/control-socket.js'
// Job security: keys, and how sockets use them (Note [Job security]).
export { formatJobKey, generateJobKey, parseJobKey, readJobKeyFile, writeJobKeyFile, writePrivateKeyFile } from './security/job-key.js'
export type { JobKey } from './security/job-key.js'
export { INSECURE } from './security/socket-security.js'
export type { JobSecurity } from './security/socket-security.js'
export { RateLimitedLog } from './logging/rate-limited-log.js'
export type { ControlServer, ControlClient, ControlReceipt, ControlSocketOptions } from './transport/control-socket.js'
export { ringAllReduce } from './collectives/ring-all-reduce.js'
export type { RingAllReduceOptions } from './collectives/ring-all-reduce.js'
export { broadcast, broadcastBytes } from './collectives/broadcast.js'
export type { BroadcastOptions } from './collectives/broadcast.js'
export { allGather } from './collectives/all-gather.js'
export { barrier } from './collectives/barrier.js'
export type { CollectiveOptions } from './collectives/collective-call.js'
export { ProcessGroup } from './collectives/process-group.js'
export type { ProcessGroupOptions, CallAt, CollectivePosition } from './collectives/process-group.js'
export { createLayout, hashLayout, formatShape } from './gradients/layout.js'
export type { GradientLayout, GradientLayoutEntry, GradientLayoutInput } from './gradients/layout.js'
export { compareLayouts } from './gradients/compare-layouts.js'
export { clipByGlobalNorm } from './gradients/clip-by-global-norm.js'
export { allFinite, firstNonFinite } from './gradients/non-finite.js'
export { hashBytes } from './gradients/hash.js'
// WebAssembly assembly helpers, shared with the worker's kernels (wasm/encode.ts).
export { WebAssemblyApi, WASM_HEADER, WASM_PAGE_BYTES, uleb, sleb, wasmSection, wasmVector, wasmName } from './wasm/encode.js'
export type { WasmMemory } from './wasm/encode.js'
export {
  CHECKPOINTS_DIR, CHECKPOINT_FORMAT, MANIFEST_FILE, OUT_TOKEN_FILE, checkpointDirName, consumedSamples, listCheckpoints, newestCheckpoint, parseManifest, pruneCheckpoints, readManifest,
} from './checkpoint/manifest.js'
export type { CheckpointFile, CheckpointManifest, DataPosition, FoundCheckpoint } from './checkpoint/manifest.js'
export { commitCheckpointDir, swapDirectory, syncDirectory, temporaryCheckpointDir, temporarySibling, writeFileSynced } from './checkpoint/commit.js'
