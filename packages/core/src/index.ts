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
  invariant,
  errorFromWire,
  describeBytes,
} from './errors.js'
export type { ErrorCode, ErrorContext, WireError } from './errors.js'
export type { Transport, Tag } from './transport/transport.js'
export { tagsEqual, formatTag } from './transport/transport.js'
export { InProcessHub, InProcessTransport } from './transport/in-process.js'
export { PROTOCOL_VERSION } from './protocol/version.js'
export { encode, decode } from './protocol/codec.js'
export { createZmqTransport } from './transport/create-transport.js'
export type { BoundZmqTransport, ZmqEndpoints, ZmqTransportOptions } from './transport/zeromq-options.js'
export { distributedSampler, shardLength } from './sharding/distributed-sampler.js'
export type { DistributedSamplerOptions } from './sharding/distributed-sampler.js'
export { stepsPerEpoch, batchIndices, globalBatchOrder } from './sharding/batches.js'
export { evalShard } from './sharding/eval-shard.js'
export { mulberry32, seededPermutation } from './sharding/mulberry32.js'
