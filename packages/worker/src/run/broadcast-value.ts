/**
 * Rank 0's value (anything msgpack encodes) to every rank, over the ring transport: first
 * its encoded length, then the bytes. For small set-up records, not tensors.
 */
import { broadcast, decode, encode, type Transport } from '@ringtrain/core'

export async function broadcastFromRankZero<T>(
  transport: Transport,
  value: T,
  tag: { round: number; step: number; op: number; timeoutMs: number },
): Promise<T> {
  const mine = encode(value)
  // The length travels as a float32: exact for any record under 16 MiB.
  const length = new Float32Array([mine.byteLength])
  await broadcast(transport, length, { root: 0, ...tag })
  const padded = new Uint8Array(Math.ceil(length[0]! / 4) * 4)
  if (transport.rank === 0) padded.set(mine)
  const floats = new Float32Array(padded.buffer)
  await broadcast(transport, floats, { root: 0, ...tag, op: tag.op + 1 })
  return decode(new Uint8Array(floats.buffer, 0, length[0]!)) as T
}
