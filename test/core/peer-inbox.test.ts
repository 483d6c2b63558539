import { describe, expect, test } from 'vitest'
import { InProcessHub } from '@ringtrain/core'

const tag = (over: Partial<Record<'round' | 'step' | 'op' | 'collective' | 'ringStep' | 'segment', number>> = {}) =>
  ({ round: 0, step: 0, op: 0, collective: 0, ringStep: 0, segment: 0, ...over })

describe('InProcessTransport semantics', () => {
  test('delivers in order per peer', async () => {
    const [a, b] = new InProcessHub(2).transports()
    await a!.send(1, tag({ ringStep: 0 }), new Uint8Array([1]))
    await a!.send(1, tag({ ringStep: 1 }), new Uint8Array([2]))
    expect(await b!.recv(0, tag({ ringStep: 0 }), { timeoutMs: 100 })).toEqual(new Uint8Array([1]))
    expect(await b!.recv(0, tag({ ringStep: 1 }), { timeoutMs: 100 })).toEqual(new Uint8Array([2]))
  })

  test('rejects a frame of another round with E_STALE_ROUND and drops it', async () => {
    const [a, b] = new InProcessHub(2).transports()
    await a!.send(1, tag({ round: 0 }), new Uint8Array([9]))
    const error = await b!.recv(0, tag({ round: 1 }), { timeoutMs: 100 }).catch((e) => e)
    expect(error.code).toBe('E_STALE_ROUND')
    expect(error.message).toBe('rank 1 got a frame of round 0 from rank 0 while in round 1; dropped it (round 0 step 0 op 0 ring step 0 segment 0).')
  })

  test('rejects a frame with a foreign tag with E_TAG_MISMATCH', async () => {
    const [a, b] = new InProcessHub(2).transports()
    await a!.send(1, tag({ op: 3 }), new Uint8Array([9]))
    const error = await b!.recv(0, tag({ op: 2 }), { timeoutMs: 100 }).catch((e) => e)
    expect(error.code).toBe('E_TAG_MISMATCH')
    expect(error.message).toMatch(/^rank 1 expected a frame with round 0 step 0 op 2 ring step 0 segment 0 from rank 0 but got round 0 step 0 op 3/)
  })

  test('times out naming rank, peer and tag', async () => {
    const [, b] = new InProcessHub(2).transports()
    const error = await b!.recv(0, tag({ step: 4 }), { timeoutMs: 20 }).catch((e) => e)
    expect(error.name).toBe('CollectiveTimeoutError')
    expect(error.code).toBe('E_TIMEOUT')
    expect(error.message).toBe('rank 1 waited 20 ms for a message from rank 0 (round 0 step 4 op 0 ring step 0 segment 0); nothing arrived.')
  })

  test('a closed peer fails pending receives with E_PEER_LOST', async () => {
    const [a, b] = new InProcessHub(2).transports()
    const pending = b!.recv(0, tag(), { timeoutMs: 1000 })
    await a!.close()
    await expect(pending).rejects.toMatchObject({ code: 'E_PEER_LOST' })
  })
})
