/**
 * Typed errors. Every error a user can see carries a stable `code` and the context that
 * names who and where (rank, peer, round, step, op) and what was expected against got.
 *
 * Errors are grouped by what the caller does next (see docs/style.md, "Errors"):
 * - `CollectiveAbortedError` family (timeouts, lost peers, bad frames): restore the last
 *   committed state and re-rendezvous.
 * - `ConfigError`: stop and tell the user.
 * - `InternalError`: our bug (`invariant`).
 */
export type ErrorCode =
  | 'E_CONFIG'
  | 'E_TIMEOUT'
  | 'E_PEER_LOST'
  | 'E_CHUNK_SIZE'
  | 'E_LAYOUT_MISMATCH'
  | 'E_PROTOCOL_VERSION'
  | 'E_STALE_ROUND'
  | 'E_TAG_MISMATCH'
  | 'E_BAD_FRAME'
  | 'E_FRAME_TOO_LARGE'
  | 'E_CLOSED'
  | 'E_JOB_MISMATCH'
  | 'E_BACKEND'
  | 'E_DATA'
  | 'E_TASK'
  | 'E_OUTPUT'
  | 'E_NONFINITE'
  | 'E_REPLICA_MISMATCH'
  | 'E_INTERNAL'

export interface ErrorContext {
  rank?: number
  peer?: number
  round?: number
  step?: number
  op?: number
  phase?: string
  tensor?: string
  expected?: unknown
  got?: unknown
  [key: string]: unknown
}

export class DistError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly context: ErrorContext = {},
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = new.target.name
  }

  /** The shape an error takes on the wire (see `errorFromWire`). */
  toWire(): WireError {
    return { name: this.name, code: this.code, message: this.message, context: this.context }
  }
}

/** Membership or transport trouble inside a collective: restore and re-rendezvous. */
export class CollectiveAbortedError extends DistError {}
/** A blocking wait passed its deadline. */
export class CollectiveTimeoutError extends CollectiveAbortedError {}
/** A peer is gone (closed, disconnected, declared dead by the coordinator). */
export class PeerLostError extends CollectiveAbortedError {}
/** A frame that must not reach a result: wrong length, tag, version, or undecodable. */
export class FrameError extends CollectiveAbortedError {}
/** A message from an earlier membership round. */
export class StaleRoundError extends FrameError {}
/** The ring received a chunk of the wrong size. */
export class RingAllReduceError extends FrameError {}
/** Ranks disagree on the gradient layout or model. */
export class LayoutMismatchError extends DistError {}
/** Bad flags, options or task definitions: stop and tell the user. */
export class ConfigError extends DistError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_CONFIG', message, context, options)
  }
}
/**
 * A write to the job's output folder failed (ENOSPC, EROFS, EACCES, …): stop the job, keep
 * what was committed before. `context.path` names the file, `context.got` the errno code.
 */
export class OutputWriteError extends DistError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_OUTPUT', message, context, options)
  }
}

/**
 * A gradient held NaN or Inf at optimizer step `context.step` and the job runs with
 * `--on-nonfinite stop`. `context.ranks` lists the ranks whose local gradient (before the
 * all-reduce) was non-finite (empty when only the average overflowed); `context.tensor`
 * names the first such tensor on the rank that threw, when it had one.
 */
export class NonFiniteGradientError extends DistError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_NONFINITE', message, context, options)
  }
}

/**
 * The periodic replica check (`--check-replicas-every`) found parameters that differ from
 * rank 0's after optimizer step `context.step`. `context.ranks` lists the differing ranks,
 * `context.tensor` the first differing tensor (in weights order) on the lowest of them.
 */
export class ReplicaMismatchError extends DistError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_REPLICA_MISMATCH', message, context, options)
  }
}

/**
 * Wraps a failed filesystem call on `path` (`what` says what was being written) as an
 * `OutputWriteError` whose message names the path and the errno code; other errors pass through.
 */
export function outputWriteError(error: unknown, path: string, what: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  if (typeof code !== 'string' || error instanceof DistError) return error
  const hint = code === 'ENOSPC' ? ' (the disk is full)' : code === 'EROFS' ? ' (the file system is read-only)' : code === 'EACCES' || code === 'EPERM' ? ' (permission denied)' : ''
  return new OutputWriteError(`could not write ${what} to ${path}: ${code}${hint}. ${(error as Error).message}`, { path, expected: 'a successful write', got: code }, { cause: error })
}

/** Our bug. */
export class InternalError extends DistError {
  constructor(message: string, context: ErrorContext = {}) {
    super('E_INTERNAL', message, context)
  }
}

/** Fails with an `InternalError` (a bug of ours, never bad input) when `condition` is false. */
export function invariant(condition: unknown, message: string, context?: ErrorContext): asserts condition {
  if (!condition) throw new InternalError(`invariant failed: ${message}`, context)
}

export interface WireError {
  name: string
  code: ErrorCode
  message: string
  context: ErrorContext
}

const classesByName: Record<string, new (code: ErrorCode, message: string, context: ErrorContext) => DistError> = {
  DistError,
  CollectiveAbortedError,
  CollectiveTimeoutError,
  PeerLostError,
  FrameError,
  StaleRoundError,
  RingAllReduceError,
  LayoutMismatchError,
}
const withMessageOnly: Record<string, new (message: string, context: ErrorContext) => DistError> = {
  OutputWriteError,
  NonFiniteGradientError,
  ReplicaMismatchError,
}

/**
 * Rebuilds an error that crossed a process boundary. Matches by `name`, never `instanceof`
 * (tRPC does the same): the class is chosen by name, the `code` is kept as sent.
 */
export function errorFromWire(wire: WireError): DistError {
  if (wire.name === 'ConfigError') return new ConfigError(wire.message, wire.context)
  if (wire.name === 'InternalError') return new InternalError(wire.message, wire.context)
  const ByMessage = withMessageOnly[wire.name]
  if (ByMessage) return new ByMessage(wire.message, wire.context)
  const Class = classesByName[wire.name] ?? DistError
  const error = new Class(wire.code, wire.message, wire.context)
  if (!(wire.name in classesByName)) error.name = wire.name
  return error
}

/** Formats bytes for messages: `4096 bytes (1024 float32)`. */
export function describeBytes(byteLength: number): string {
  return byteLength % 4 === 0 ? `${byteLength} bytes (${byteLength / 4} float32)` : `${byteLength} bytes`
}
