/**
 * Validation at the edge of the control plane: every control message a socket receives
 * passes through `decodeControlMessage` before anything acts on it. A bad one becomes a
 * typed `FrameError` (E_BAD_FRAME, E_FRAME_TOO_LARGE, E_PROTOCOL_VERSION, E_JOB_MISMATCH)
 * that says who got what from whom and what was expected; the receiver logs it and drops
 * the message, it never crashes the process.
 */
import { FrameError, type ErrorCode } from '../errors.js'
import { decode } from './codec.js'
import { describe, jobConfigProblem } from './job-config.js'
import { MessageType, messageTypeName, type ControlMessage } from './messages.js'
import { PROTOCOL_VERSION } from './version.js'

/** Largest control message accepted. An Assignment for 1000 workers is about 50 KiB. */
export const MAX_CONTROL_MESSAGE_BYTES = 1024 * 1024

export interface ValidateExpectation {
  /** Who validates, for messages: 'the coordinator', 'rank 2'. */
  receiver: string
  /** Who sent it, for messages: 'worker 3f2a…', 'the coordinator at tcp://…'. */
  sender: string
  /** The job this process belongs to; undefined accepts any job (a worker before it knows). */
  jobId?: string
}

type FieldKind = 'string' | 'int' | 'number' | 'strings' | 'endpointLists' | 'wireError' | 'metricSums' | 'jobConfig' | 'bytes' | 'outputTarget' | 'dataSplit' | 'fieldLayout'
/** A kind ending in '?' is optional. */
type Schema = Record<string, FieldKind | `${FieldKind}?`>

const SCHEMAS: Record<number, Schema> = {
  [MessageType.JoinRequest]: { host: 'string', pid: 'int', localRank: 'int?', rankHint: 'int?', worldSizeHint: 'int?', hintSource: 'string?', dataEndpoints: 'strings', backend: 'string?', livenessToken: 'string?' },
  [MessageType.Assignment]: { rank: 'int', worldSize: 'int', localRank: 'int', localWorldSize: 'int', round: 'int', peers: 'endpointLists', hosts: 'strings', config: 'jobConfig', stateFrom: 'int?' },
  [MessageType.Reject]: { error: 'wireError' },
  [MessageType.Heartbeat]: { rank: 'int', round: 'int', step: 'int' },
  [MessageType.BarrierRequest]: { rank: 'int', round: 'int', name: 'string' },
  [MessageType.BarrierRelease]: { round: 'int', name: 'string' },
  [MessageType.StepMetrics]: { rank: 'int', round: 'int', step: 'int', epoch: 'int', loss: 'number', learningRate: 'number', samples: 'int', computeMs: 'number', allReduceMs: 'number', bytesSent: 'int', totalSteps: 'int?', epochs: 'int?', skippedSteps: 'int?' },
  [MessageType.WorkerDone]: { rank: 'int', steps: 'int', epochs: 'int?', parameterHash: 'string', finalLoss: 'number', eval: 'metricSums', evalExamples: 'int?', backend: 'string', skippedSteps: 'int?', stopReason: 'string?', checkpointDir: 'string?', checkpointStep: 'int?', maxRssBytes: 'int?' },
  [MessageType.WorkerFailed]: { rank: 'int?', error: 'wireError' },
  [MessageType.Abort]: { reason: 'string', error: 'wireError?' },
  [MessageType.Shutdown]: { reason: 'string' },
  [MessageType.KeepAlive]: { intervalMs: 'int', maxMissed: 'int' },
  [MessageType.StopRequest]: { reason: 'string' },
  [MessageType.Regroup]: { round: 'int', reason: 'string', atStepBoundary: 'int' },
  [MessageType.OutputPart]: { rank: 'int', round: 'int', target: 'outputTarget', step: 'int', file: 'string', offset: 'int', data: 'bytes' },
  [MessageType.OutputCommit]: { rank: 'int', round: 'int', target: 'outputTarget', step: 'int', files: 'strings', sizes: 'strings', manifest: 'string?' },
  [MessageType.OutputAck]: { target: 'outputTarget', step: 'int', path: 'string?', error: 'wireError?' },
  [MessageType.OutputRequest]: { rank: 'int', round: 'int', path: 'string' },
  [MessageType.DataRequest]: { rank: 'int', round: 'int', split: 'dataSplit', requestId: 'int', indices: 'bytes?' },
  [MessageType.DataChunk]: { split: 'dataSplit', requestId: 'int', length: 'int?', inputLayout: 'fieldLayout?', targetLayout: 'fieldLayout?', inputs: 'bytes?', targets: 'bytes?', error: 'wireError?' },
  [MessageType.Alive]: { token: 'string', step: 'int', op: 'int?', collective: 'string?', phase: 'string?', waitingFor: 'int?', inPhaseMs: 'int?' },
}

/** Decodes and validates one control message; throws a `FrameError` saying what is wrong. */
export function decodeControlMessage(bytes: Uint8Array, expect: ValidateExpectation): ControlMessage {
  const { receiver, sender } = expect
  if (bytes.byteLength > MAX_CONTROL_MESSAGE_BYTES) {
    throw fail(expect, 'E_FRAME_TOO_LARGE', `${receiver} got a control message of ${bytes.byteLength} bytes from ${sender}; the limit is ${MAX_CONTROL_MESSAGE_BYTES} bytes. Dropped it.`, MAX_CONTROL_MESSAGE_BYTES, bytes.byteLength)
  }
  let value: unknown
  try {
    value = decode(bytes)
  } catch (cause) {
    throw fail(expect, 'E_BAD_FRAME', `${receiver} got ${bytes.byteLength} bytes from ${sender} that are not valid msgpack; expected a control message. Dropped them.`, 'msgpack', `${bytes.byteLength} bytes`, cause)
  }
  return validateControlMessage(value, expect)
}

/** Validates an already decoded value: type, version, job id, then every field of its type. */
export function validateControlMessage(value: unknown, expect: ValidateExpectation): ControlMessage {
  const { receiver, sender } = expect
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fail(expect, 'E_BAD_FRAME', `${receiver} got ${describe(value)} from ${sender}; expected a control message (a map with type, version and jobId). Dropped it.`, 'a map', describe(value))
  }
  const message = value as Record<string, unknown>
  const schema = typeof message.type === 'number' ? SCHEMAS[message.type] : undefined
  if (schema === undefined) {
    throw fail(expect, 'E_BAD_FRAME', `${receiver} got a control message of unknown type ${describe(message.type)} from ${sender}; expected one of ${Object.values(MessageType).join(', ')}. Dropped it.`, 'a known type', message.type)
  }
  const name = messageTypeName(message.type as number)
  // A Reject is read whatever its version and job, so a worker of another version or job learns why it was refused.
  if (message.version !== PROTOCOL_VERSION && message.type !== MessageType.Reject) {
    throw fail(expect, 'E_PROTOCOL_VERSION', `${receiver} got a ${name} of protocol version ${describe(message.version)} from ${sender}; expected version ${PROTOCOL_VERSION}. Run the same ringtrain version on the coordinator and every worker.`, PROTOCOL_VERSION, message.version)
  }
  if (typeof message.jobId !== 'string') {
    throw fail(expect, 'E_BAD_FRAME', `${receiver} got a ${name} without a job id from ${sender}; expected jobId to be a string, got ${describe(message.jobId)}. Dropped it.`, 'a string', describe(message.jobId))
  }
  if (expect.jobId !== undefined && message.jobId !== expect.jobId && message.type !== MessageType.Reject) {
    throw fail(expect, 'E_JOB_MISMATCH', `${receiver} got a ${name} for job ${JSON.stringify(message.jobId)} from ${sender}; this is job ${JSON.stringify(expect.jobId)}. Check the --coordinator address and the job id of that worker.`, expect.jobId, message.jobId)
  }
  for (const [field, kindSpec] of Object.entries(schema)) {
    const optional = kindSpec.endsWith('?')
    const kind = kindSpec.replace('?', '') as FieldKind
    const x = message[field]
    if (optional && x === undefined) continue
    const problem = fieldProblem(kind, x)
    if (problem !== undefined) {
      throw fail(expect, 'E_BAD_FRAME', `${receiver} got a ${name} from ${sender} whose ${field} is wrong: expected ${problem}, got ${describe(x)}. Dropped it.`, problem, describe(x))
    }
  }
  return message as unknown as ControlMessage
}

function fieldProblem(kind: FieldKind, x: unknown): string | undefined {
  switch (kind) {
    case 'string': return typeof x === 'string' ? undefined : 'a string'
    case 'int': return Number.isSafeInteger(x) && (x as number) >= 0 ? undefined : 'a non-negative integer'
    case 'number': return typeof x === 'number' ? undefined : 'a number'
    case 'strings': return isStrings(x) ? undefined : 'an array of strings'
    case 'endpointLists': return Array.isArray(x) && x.every(isStrings) ? undefined : 'an array of arrays of strings'
    case 'wireError': return isWireError(x) ? undefined : 'an error {name, code, message, context}'
    case 'metricSums': return isMetricSums(x) ? undefined : 'a map of {sum, count} numbers'
    case 'bytes': return x instanceof Uint8Array ? undefined : 'bytes'
    case 'outputTarget': return x === 'checkpoint' || x === 'model' ? undefined : "'checkpoint' or 'model'"
    case 'dataSplit': return x === 'train' || x === 'eval' ? undefined : "'train' or 'eval'"
    case 'fieldLayout': return isFieldLayout(x) ? undefined : 'a field layout {shape: integers, encoding: {type, values?, classes?}}'
    case 'jobConfig': {
      const problem = jobConfigProblem(x)
      return problem === undefined ? undefined : `a job configuration (${problem.replace(/\.$/, '')})`
    }
  }
}

function isFieldLayout(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return false
  const { shape, encoding } = x as { shape?: unknown; encoding?: { type?: unknown; values?: unknown; classes?: unknown } }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) return false
  if (typeof encoding !== 'object' || encoding === null || typeof encoding.type !== 'string') return false
  if (encoding.values !== undefined && !(Array.isArray(encoding.values) && encoding.values.length <= 256 && encoding.values.every((v) => typeof v === 'number'))) return false
  return encoding.classes === undefined || (Number.isSafeInteger(encoding.classes) && (encoding.classes as number) >= 1)
}

const isStrings = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string')

function isWireError(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return false
  const e = x as Record<string, unknown>
  return typeof e.name === 'string' && typeof e.code === 'string' && typeof e.message === 'string' && typeof e.context === 'object' && e.context !== null
}

function isMetricSums(x: unknown): boolean {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false
  return Object.values(x as Record<string, { sum?: unknown; count?: unknown } | null>).every((m) => typeof m === 'object' && m !== null && typeof m.sum === 'number' && typeof m.count === 'number')
}

function fail(expect: ValidateExpectation, code: ErrorCode, message: string, expected: unknown, got: unknown, cause?: unknown): FrameError {
  const context = { receiver: expect.receiver, sender: expect.sender, expected, got }
  return new FrameError(code, message, context, cause === undefined ? undefined : { cause })
}
