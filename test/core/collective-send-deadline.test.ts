/**
 * A rank that only sends (a broadcast root) must not wait for ever on a peer that stopped
 * reading: its sends never leave, and the call's deadline ends the wait with a typed error.
 */
import { expect, test } from 'vitest'
import { broadcast, type Tag, type Transport } from '@ringtrain/core'
import { scaled } from '../helpers/slack.js'

/** A transport whose sends are never taken, as when the peer's socket queue is full. */
class StuckTransport implements Transport {
  readonly worldSize = 2
  constructor(readonly rank: number) {}
  send(_peer: number, _tag: Tag, _bytes: Uint8Array): Promise<void> {
    return new Promise(() => {})
  }
  recv(): Promise<Uint8Array> {
    return new Promise(() => {})
  }
  async close(): Promise<void> {}
}

test('a broadcast root whose sends never leave fails within its deadline, naming the peer', async () => {
  const started = performance.now()
  const error = await broadcast(new StuckTransport(0), new Float32Array(1000), { root: 0, step: 3, op: 1, timeoutMs: 200, segmentBytes: 1024 }).catch((e) => e)
  // The 200 ms deadline, not a hang: idle, well within 1 s. Load delays the timer, so the
  // margin past the deadline is scaled (at most 3.4 s with the derived slack of 4).
  expect(performance.now() - started).toBeLessThan(200 + scaled(800))
  expect(error.name).toBe('CollectiveTimeoutError')
  expect(error.code).toBe('E_TIMEOUT')
  expect(error.message).toBe('rank 0 waited 200 ms in broadcast op 1 at step 3 for its sends to leave; 4 message(s) to rank 1 never did. The peer stopped reading (its socket queue is full): check that it is alive.')
  expect(error.context).toMatchObject({ rank: 0, peer: 1, step: 3, op: 1, phase: 'sending' })
})
