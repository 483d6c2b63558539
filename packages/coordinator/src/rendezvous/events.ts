/**
 * Turns what the ROUTER received into a rendezvous event: each message type the coordinator
 * accepts maps to one event; a message that failed validation, or a type only the
 * coordinator sends, becomes `invalidMessage` so it is logged (and refused) by `decide`.
 */
import { MessageType, messageTypeName, type ControlReceipt } from '@ringtrain/core'
import type { RendezvousEvent } from './types.js'

export function eventFromReceipt(receipt: ControlReceipt): RendezvousEvent {
  const { from } = receipt
  if (receipt.kind === 'invalid') return { kind: 'invalidMessage', from, error: receipt.error.toWire() }
  const message = receipt.message
  switch (message.type) {
    case MessageType.JoinRequest: return { kind: 'join', from, message }
    case MessageType.Heartbeat: return { kind: 'heartbeat', from, message }
    case MessageType.BarrierRequest: return { kind: 'barrier', from, message }
    case MessageType.StepMetrics: return { kind: 'metrics', from, message }
    case MessageType.WorkerDone: return { kind: 'done', from, message }
    case MessageType.WorkerFailed: return { kind: 'failed', from, message }
    case MessageType.KeepAlive: return { kind: 'keepAlive', from, message }
    case MessageType.Alive: return { kind: 'alive', from, message }
    case MessageType.OutputPart: return { kind: 'outputPart', from, message }
    case MessageType.OutputCommit: return { kind: 'outputCommit', from, message }
    case MessageType.OutputRequest: return { kind: 'outputRequest', from, message }
    default: {
      const text = `The coordinator got a ${messageTypeName(message.type)} from worker ${from.slice(0, 8)}; only the coordinator sends that type. Dropped it.`
      return { kind: 'invalidMessage', from, error: { name: 'FrameError', code: 'E_BAD_FRAME', message: text, context: { expected: 'a worker-to-coordinator message', got: messageTypeName(message.type) } } }
    }
  }
}
