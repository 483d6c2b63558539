/**
 * Note [Releasing received buffers]
 * zeromq.js hands every received message to JavaScript zero-copy, as a Buffer over
 * libzmq's own memory, and reports its size to V8 as external memory
 * (`AdjustExternalMemory` in zeromq.js's src/incoming_msg.cc). That memory goes back to
 * libzmq only when the garbage collector finalizes the Buffer, and V8 starts a major GC
 * each time about 64 MB of external memory has piled up: every 2–3 iterations of a
 * 16 MiB all-reduce, about a fifth of both cores, and every receive lands in cold memory.
 *
 * Detaching the Buffer's ArrayBuffer once its bytes are consumed drops V8's last reference
 * to the backing store at once: Node runs zeromq.js's release callback on the next turn
 * of the event loop, which frees the message and takes back the external-memory report.
 * No GC is needed, and malloc hands the same (cache-warm) memory to the next receive.
 * Measured with two processes exchanging 16 MiB both ways at once over ipc (1 MiB
 * messages, 60 iterations, see docs/benchmarks.md): 21–28 mark-compacts and 1.26–2.03 GB/s
 * per direction without detaching; 0 mark-compacts and 2.23–2.36 GB/s with it.
 *
 * `ArrayBuffer.prototype.transfer(0)` detaches. Node 22 ships it; Node 20's V8 has it
 * behind --harmony-rab-gsab-transfer, which only takes effect in contexts created after
 * it is set, so we set it, take the builtin from a fresh `vm` context (builtins accept
 * an ArrayBuffer from any context) and unset it again. Where neither works, detaching is
 * a no-op and buffers go back through the GC as before.
 *
 * The cost: after the first detach in a process V8 drops an optimization and checks every
 * typed array access for detachment (growing a WebAssembly memory, as tfjs-backend-wasm
 * does, has the same effect). That is why the all-reduce adds in WebAssembly
 * (collectives/add-into-wasm.ts).
 *
 * Only the owner of every view of a buffer may detach it: afterwards every view has
 * length 0. Transports detach only the messages they delivered, when the receiver says
 * it is done with them (`Transport.release`), and never a buffer that was passed on to a
 * send, which ZeroMQ may still be reading on its I/O thread.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Transfer = (this: ArrayBuffer, newByteLength: number) => ArrayBuffer

const transfer: Transfer | undefined = findTransfer()

/** True when this Node can detach ArrayBuffers (see Note [Releasing received buffers]). */
export const canDetachArrayBuffers = transfer !== undefined

/**
 * Detaches `buffer`, freeing its memory now instead of at the next GC; every view of it
 * then has length 0. Returns false, leaving `buffer` as it is, when this Node cannot
 * detach, or for a SharedArrayBuffer or an already detached buffer.
 */
export function detachArrayBuffer(buffer: ArrayBufferLike): boolean {
  if (transfer === undefined || !(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) return false
  try {
    transfer.call(buffer, 0)
    return true
  } catch {
    return false // not detachable (for example a WebAssembly.Memory's buffer)
  }
}

function findTransfer(): Transfer | undefined {
  const native = (ArrayBuffer.prototype as { transfer?: unknown }).transfer
  if (typeof native === 'function') return native as Transfer
  try {
    setFlagsFromString('--harmony-rab-gsab-transfer')
    try {
      const fromFreshContext: unknown = runInNewContext('ArrayBuffer.prototype.transfer')
      return typeof fromFreshContext === 'function' ? (fromFreshContext as Transfer) : undefined
    } finally {
      setFlagsFromString('--no-harmony-rab-gsab-transfer')
    }
  } catch {
    return undefined
  }
}
