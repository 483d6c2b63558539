import {
  FrameError, MessageType, PROTOCOL_VERSION, controlMessage, encode, resolveJobConfig, ConfigError, type ControlMessage,
} from '@ringtrain/core'
import { decodeControlMessage, validateControlMessage } from '@ringtrain/core/unstable-internals-do-not-import'
import { describe, expect, test } from 'vitest'

const expectation = { receiver: 'the coordinator', sender: 'worker 3f2a', jobId: 'job-0123456789ab' }
const config = resolveJobConfig({ jobId: 'job-0123456789ab', worldSize: 1000, task: 'examples/mnist-mlp/task.ts', outDir: 'runs/job-0123456789ab' })

function roundTrip(message: ControlMessage): ControlMessage {
  return decodeControlMessage(encode(message), expectation)
}

function rejection(bytes: Uint8Array, expectations = expectation): FrameError {
  try {
    decodeControlMessage(bytes, expectations)
  } catch (error) {
    expect(error).toBeInstanceOf(FrameError)
    return error as FrameError
  }
  throw new Error('expected the message to be rejected')
}


describe('control messages', () => {
  test('keep their wire type numbers (never renumber: they are the protocol)', () => {
    expect(MessageType).toEqual({
      JoinRequest: 1, Assignment: 2, Reject: 3, Heartbeat: 4, BarrierRequest: 5, BarrierRelease: 6,
      StepMetrics: 7, WorkerDone: 8, WorkerFailed: 9, Abort: 10, Shutdown: 11, KeepAlive: 12, Alive: 13, StopRequest: 14, Regroup: 15, OutputPart: 16, OutputCommit: 17, OutputAck: 18, OutputRequest: 19, DataRequest: 20, DataChunk: 21,
    })
  })

  test('round-trip through msgpack and validation unchanged', () => {
    const jobId = config.jobId
    const messages: ControlMessage[] = [
      controlMessage(MessageType.JoinRequest, jobId, { host: 'host-a', pid: 1234, localRank: 0, rankHint: 1, worldSizeHint: 2, hintSource: 'SLURM_PROCID/SLURM_NTASKS', dataEndpoints: ['tcp://127.0.0.1:5555'], backend: 'cpu', livenessToken: 'ff00' }),
      controlMessage(MessageType.Assignment, jobId, { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, round: 0, peers: [['tcp://127.0.0.1:5555']], hosts: ['host-a'], config: { ...config, worldSize: 1 } }),
      controlMessage(MessageType.Reject, jobId, { error: new ConfigError('full').toWire() }),
      controlMessage(MessageType.Heartbeat, jobId, { rank: 0, round: 0, step: 7 }),
      controlMessage(MessageType.BarrierRequest, jobId, { rank: 0, round: 0, name: 'layout' }),
      controlMessage(MessageType.BarrierRelease, jobId, { round: 0, name: 'layout' }),
      controlMessage(MessageType.StepMetrics, jobId, { rank: 0, round: 0, step: 7, epoch: 0, loss: 0.5, learningRate: 0.001, samples: 32, computeMs: 12.5, allReduceMs: 3.25, bytesSent: 4096 }),
      controlMessage(MessageType.WorkerDone, jobId, { rank: 0, steps: 100, parameterHash: 'abc', finalLoss: 0.1, eval: { accuracy: { sum: 90, count: 100 } }, evalExamples: 1000, backend: 'cpu' }),
      controlMessage(MessageType.WorkerDone, jobId, { rank: 0, steps: 100, parameterHash: 'abc', finalLoss: 0.1, eval: {}, backend: 'cpu' }),
      controlMessage(MessageType.WorkerFailed, jobId, { rank: 0, error: { name: 'Error', code: 'E_TASK', message: 'boom', context: {} } }),
      controlMessage(MessageType.Abort, jobId, { reason: 'rank 1 failed' }),
      controlMessage(MessageType.Shutdown, jobId, { reason: 'done' }),
      controlMessage(MessageType.KeepAlive, jobId, { intervalMs: 1000, maxMissed: 10 }),
      controlMessage(MessageType.Alive, jobId, { token: 'a1b2', step: 3 }),
      controlMessage(MessageType.StopRequest, jobId, { reason: 'the launcher got SIGINT' }),
      controlMessage(MessageType.Regroup, jobId, { round: 2, reason: 'rank 1 (pid 7 on a) was lost', atStepBoundary: 0 }),
      controlMessage(MessageType.OutputPart, jobId, { rank: 0, round: 1, target: 'checkpoint', step: 40, file: 'weights.bin', offset: 524288, data: new Uint8Array([1, 2, 3]) }),
      controlMessage(MessageType.OutputCommit, jobId, { rank: 0, round: 1, target: 'model', step: 40, files: ['model.json', 'weights.bin'], sizes: ['10', '5000000000'] }),
      controlMessage(MessageType.OutputAck, jobId, { target: 'checkpoint', step: 40, path: '/out/checkpoints/step-0000040' }),
      controlMessage(MessageType.OutputRequest, jobId, { rank: 0, round: 0, path: '/out/checkpoints/step-0000040' }),
      controlMessage(MessageType.WorkerDone, jobId, { rank: 0, steps: 40, parameterHash: 'abc', finalLoss: 0.1, eval: {}, backend: 'cpu', stopReason: 'SIGINT', checkpointDir: '/out/checkpoints/step-0000040', checkpointStep: 40, skippedSteps: 1 }),
      controlMessage(MessageType.DataRequest, jobId, { rank: 1, round: 0, split: 'train', requestId: 0 }),
      controlMessage(MessageType.DataRequest, jobId, { rank: 1, round: 0, split: 'eval', requestId: 3, indices: new Uint8Array(new Uint32Array([5, 0, 7]).buffer) }),
      controlMessage(MessageType.DataChunk, jobId, { split: 'train', requestId: 0, length: 8000, inputLayout: { shape: [28, 28, 1], encoding: { type: 'lookup', values: [0, 0.5, 1] } }, targetLayout: { shape: [10], encoding: { type: 'oneHot', classes: 10 } } }),
      controlMessage(MessageType.DataChunk, jobId, { split: 'eval', requestId: 3, inputs: new Uint8Array([1, 2, 3]), targets: new Uint8Array([4]) }),
      controlMessage(MessageType.DataChunk, jobId, { split: 'train', requestId: 4, error: { name: 'DistError', code: 'E_DATA', message: 'rank 1 asked for sample 9000', context: {} } }),
      controlMessage(MessageType.Alive, jobId, { token: 'a1b2', step: 3, op: 12, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 0', waitingFor: 0, inPhaseMs: 4200 }),
    ]
    for (const message of messages) {
      const back = roundTrip(message) as ControlMessage & { data?: Uint8Array }
      // msgpack gives bytes back as a Buffer (a Uint8Array): compare the bytes.
      if (back.data !== undefined) back.data = Uint8Array.from(back.data)
      const fields = back as unknown as Record<string, unknown>
      for (const field of ['indices', 'inputs', 'targets']) if (fields[field] instanceof Uint8Array) fields[field] = Uint8Array.from(fields[field])
      expect(back).toEqual(message)
    }
  })

  test('stay within their encoded byte budgets', () => {
    const heartbeat = encode(controlMessage(MessageType.Heartbeat, config.jobId, { rank: 999, round: 12, step: 1_000_000 }))
    const metrics = encode(controlMessage(MessageType.StepMetrics, config.jobId, {
      rank: 999, round: 12, step: 1_000_000, epoch: 99, loss: 0.123456789, learningRate: 0.000123456789, samples: 256, computeMs: 123.456789, allReduceMs: 45.678901, bytesSent: 123_456_789, totalSteps: 2_000_000,
    }))
    const peers = Array.from({ length: 1000 }, (_, r) => [`tcp://10.0.${r >> 8}.${r & 255}:${29500 + (r % 8)}`])
    const hosts = Array.from({ length: 1000 }, (_, r) => `node-${String(r >> 3).padStart(4, '0')}.cluster.local`)
    const assignment = encode(controlMessage(MessageType.Assignment, config.jobId, { rank: 999, worldSize: 1000, localRank: 7, localWorldSize: 8, round: 0, peers, hosts, config }))
    const keepAlive = encode(controlMessage(MessageType.KeepAlive, config.jobId, { intervalMs: 60_000, maxMissed: 1000 }))
    expect(heartbeat.byteLength).toBeLessThanOrEqual(96)
    // Sent to every worker every heartbeatIntervalMs: 1000 workers cost under 80 KB a tick.
    expect(keepAlive.byteLength).toBeLessThanOrEqual(80)
    expect(metrics.byteLength).toBeLessThanOrEqual(256)
    expect(assignment.byteLength).toBeLessThanOrEqual(64 * 1024)
  })
})

describe('validation at the edge', () => {
  test('refuses bytes that are not msgpack with E_BAD_FRAME, naming receiver and sender', () => {
    const error = rejection(new Uint8Array([0xc1, 0xc1, 0xc1]))
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toMatch(/^the coordinator got 3 bytes from worker 3f2a that are not valid msgpack/)
  })

  test('refuses a foreign protocol version with E_PROTOCOL_VERSION, with expected and got', () => {
    const message = { ...controlMessage(MessageType.Heartbeat, config.jobId, { rank: 0, round: 0, step: 0 }), version: PROTOCOL_VERSION + 1 }
    const error = rejection(encode(message))
    expect(error.code).toBe('E_PROTOCOL_VERSION')
    expect(error.context).toMatchObject({ expected: PROTOCOL_VERSION, got: PROTOCOL_VERSION + 1 })
    expect(error.message).toContain(`expected version ${PROTOCOL_VERSION}`)
  })

  test('refuses another job with E_JOB_MISMATCH, and accepts any job when none is expected', () => {
    const message = controlMessage(MessageType.Heartbeat, 'other-job', { rank: 0, round: 0, step: 0 })
    expect(rejection(encode(message)).code).toBe('E_JOB_MISMATCH')
    expect(validateControlMessage(message, { receiver: 'rank 0', sender: 'x' })).toEqual(message)
  })

  test('reads a Reject of any version, so a worker of another version learns why', () => {
    const reject = { ...controlMessage(MessageType.Reject, config.jobId, { error: new ConfigError('nope').toWire() }), version: 99 }
    expect(roundTrip(reject as ControlMessage).type).toBe(MessageType.Reject)
  })

  test('reads a Reject without a job id: the coordinator names no job to whoever it refuses', () => {
    const reject = controlMessage(MessageType.Reject, '', { error: new ConfigError('nope').toWire() })
    expect(roundTrip(reject)).toEqual(reject)
    expect(validateControlMessage(reject, { receiver: 'rank 0', sender: 'the coordinator', jobId: 'job-0123456789ab' })).toEqual(reject)
  })

  test.each([
    ['a negative count', -1],
    ['a fraction', 2.5],
    ['a string', '1000'],
  ])('refuses a WorkerDone whose evalExamples is %s with E_BAD_FRAME', (_name, evalExamples) => {
    const message = { ...controlMessage(MessageType.WorkerDone, config.jobId, { rank: 0, steps: 1, parameterHash: 'h', finalLoss: 0, eval: {}, backend: 'cpu' }), evalExamples }
    const error = rejection(encode(message))
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toMatch(/whose evalExamples is wrong: expected a non-negative integer/)
  })

  test.each([
    ['an unknown type', { type: 42 }, /unknown type 42/],
    ['a missing field', { rank: undefined }, /whose rank is wrong: expected a non-negative integer, got nothing/],
    ['a negative rank', { rank: -1 }, /whose rank is wrong/],
    ['a string step', { step: '7' }, /whose step is wrong: expected a non-negative integer, got "7"/],
    ['no job id', { jobId: 5 }, /without a job id/],
  ])('refuses a Heartbeat with %s with E_BAD_FRAME', (_name, patch, pattern) => {
    const message = { ...controlMessage(MessageType.Heartbeat, config.jobId, { rank: 0, round: 0, step: 7 }), ...patch }
    const error = rejection(encode(message))
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toMatch(pattern)
  })

  test('refuses a KeepAlive without its rate with E_BAD_FRAME, naming the field', () => {
    const message = { ...controlMessage(MessageType.KeepAlive, config.jobId, { intervalMs: 1000, maxMissed: 10 }), maxMissed: undefined }
    const error = rejection(encode(message))
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toBe('the coordinator got a KeepAlive from worker 3f2a whose maxMissed is wrong: expected a non-negative integer, got nothing. Dropped it.')
  })

  test('refuses an Alive whose position names a rank that is not a non-negative integer, naming the field', () => {
    const message = controlMessage(MessageType.Alive, config.jobId, { token: 'a1b2', step: 3, op: 1, waitingFor: -1 })
    expect(rejection(encode(message)).message).toBe('the coordinator got a Alive from worker 3f2a whose waitingFor is wrong: expected a non-negative integer, got -1. Dropped it.')
  })

  test('refuses an Assignment whose job config breaks a rule, naming the field', () => {
    const message = controlMessage(MessageType.Assignment, config.jobId, { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, round: 0, peers: [[]], hosts: ['a'], config: { ...config, batchSize: 0 } })
    expect(rejection(encode(message)).message).toMatch(/batchSize must be an integer greater than zero when set, got 0/)
  })

  test('refuses a DataRequest for an unknown split and a DataChunk whose layout is not one', () => {
    const request = { ...controlMessage(MessageType.DataRequest, config.jobId, { rank: 0, round: 0, split: 'train', requestId: 1 }), split: 'validation' }
    expect(rejection(encode(request)).message).toBe(`the coordinator got a DataRequest from worker 3f2a whose split is wrong: expected 'train' or 'eval', got "validation". Dropped it.`)
    const chunk = controlMessage(MessageType.DataChunk, config.jobId, { split: 'train', requestId: 1, length: 3, inputLayout: { shape: [-1], encoding: { type: 'float32' } } })
    expect(rejection(encode(chunk)).message).toMatch(/whose inputLayout is wrong: expected a field layout/)
  })

  test('refuses values that are not maps (a number, an array)', () => {
    expect(rejection(encode(5)).message).toMatch(/got 5 from worker 3f2a; expected a control message/)
    expect(rejection(encode([1, 2])).code).toBe('E_BAD_FRAME')
  })
})

describe('resolveJobConfig', () => {
  test('fills the defaults', () => {
    expect(config.epochs, 'unset: the task decides').toBeUndefined()
    expect(config).toMatchObject({ heartbeatIntervalMs: 1000, heartbeatMaxMissed: 5, backend: 'auto', taskOptions: {} })
  })

  test('says the rule with the value in it', () => {
    expect(() => resolveJobConfig({ jobId: 'j', worldSize: 0, task: 't', outDir: 'o' })).toThrow('worldSize must be an integer greater than zero, got 0.')
    expect(() => resolveJobConfig({ jobId: 'j', worldSize: 1, task: 't', outDir: 'o', backend: 'tpu' as never })).toThrow('backend must be one of auto, tensorflow, webgpu, wasm, cpu, got "tpu".')
  })
})
