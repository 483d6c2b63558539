/** SendQueue: the one queue in front of every ZeroMQ socket, data plane and control plane. */
import { expect, test } from 'vitest'
import { SendQueue } from '@ringtrain/core/unstable-internals-do-not-import'

/** A socket whose sends complete when the test says so, and that refuses a second pending send as zeromq.js does (EBUSY). */
function fakeSocket() {
  const sent: string[] = []
  const pending: { item: string; done: (error?: Error) => void }[] = []
  let busy = false
  const send = (item: string) => {
    if (busy) throw new Error('EBUSY: a send is already pending')
    busy = true
    return new Promise<void>((resolve, reject) => pending.push({ item, done: (error) => { busy = false; sent.push(item); if (error) reject(error); else resolve() } }))
  }
  const completeNext = async (error?: Error) => {
    for (let turn = 0; pending.length === 0 && turn < 100; turn++) await Promise.resolve() // the pump hands the next item over in a microtask
    pending.shift()!.done(error)
  }
  return { send, sent, completeNext }
}

test('feeds the socket one item at a time, in order, and each push resolves when its item was taken', async () => {
  const socket = fakeSocket()
  const queue = new SendQueue(socket.send)
  const settled: string[] = []
  const pushes = ['a', 'b', 'c'].map((item) => queue.push(item).then(() => settled.push(item)))
  expect(queue.length).toBe(3)
  for (let i = 0; i < 3; i++) await socket.completeNext()
  await Promise.all(pushes)
  expect(socket.sent).toEqual(['a', 'b', 'c'])
  expect(settled).toEqual(['a', 'b', 'c'])
  expect(queue.length).toBe(0)
})

test('a failed send rejects its own push with errorFor(cause), and the queue goes on', async () => {
  const socket = fakeSocket()
  const queue = new SendQueue(socket.send, { errorFor: (cause) => new Error(`wrapped: ${(cause as Error).message}`) })
  const first = queue.push('a').catch((error: Error) => error.message)
  const second = queue.push('b')
  await socket.completeNext(new Error('EHOSTUNREACH'))
  await socket.completeNext()
  expect(await first).toBe('wrapped: EHOSTUNREACH')
  await expect(second).resolves.toBeUndefined()
})

test('fail() rejects what is queued and every later push, and drained() resolves once the socket is idle', async () => {
  const socket = fakeSocket()
  const queue = new SendQueue(socket.send)
  const inFlight = queue.push('a')
  const queued = queue.push('b').catch((error: Error) => error.message)
  const drained = queue.drained()
  queue.fail(new Error('closed'))
  expect(await queued).toBe('closed')
  await expect(queue.push('c')).rejects.toThrow('closed')
  await socket.completeNext()
  await inFlight
  await drained
  expect(socket.sent).toEqual(['a'])
})

test('droppable items are dropped while maxQueued wait, with one report for the first drop and one for the drain', async () => {
  const socket = fakeSocket()
  const reports: number[] = []
  const queue = new SendQueue(socket.send, { maxQueued: 2, onDrops: (n) => reports.push(n) })
  const kept = [queue.push('a', { droppable: true }), queue.push('b', { droppable: true })]
  await queue.push('c', { droppable: true }) // dropped: resolves at once
  await queue.push('d', { droppable: true })
  const mustSend = queue.push('e') // not droppable: waits its turn
  expect(reports).toEqual([1])
  for (let i = 0; i < 3; i++) await socket.completeNext()
  await Promise.all([...kept, mustSend])
  await queue.drained()
  expect(socket.sent).toEqual(['a', 'b', 'e'])
  expect(reports).toEqual([1, -2])
})

test('closeAfterFlush lets what is queued go out, then takes no more: later pushes resolve without a send', async () => {
  const socket = fakeSocket()
  const queue = new SendQueue(socket.send)
  const queued = [queue.push('a'), queue.push('b')]
  const closed = queue.closeAfterFlush(10_000)
  await queue.push('late') // resolves at once, never sent
  await socket.completeNext()
  await socket.completeNext()
  await Promise.all([...queued, closed])
  expect(socket.sent).toEqual(['a', 'b'])
})

test('closeAfterFlush gives up waiting after lingerMs when the socket never takes the item', async () => {
  const socket = fakeSocket()
  const queue = new SendQueue(socket.send)
  void queue.push('stuck')
  await queue.closeAfterFlush(20) // resolves on its own: the caller then closes the socket
  expect(socket.sent).toEqual([])
})
