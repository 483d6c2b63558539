/**
 * The control server hands its owner the first invalid message of a sender per interval
 * and counts the rest (Note [Invalid control messages] in transport/control-socket.ts).
 */
import { MessageType, connectControlClient, controlMessage, openControlServer, type ControlMessage, type ControlReceipt } from '@ringtrain/core'
import { expect, onTestFinished, test } from 'vitest'
import { scaled } from '../helpers/slack.js'
import { testSecurity } from '../helpers/test-key.js'

test('a sender\'s invalid messages reach the owner once per interval; the rest are counted in one line', async () => {
  const receipts: ControlReceipt[] = []
  const lines: string[] = []
  let heartbeat: () => void = () => {}
  const heartbeatArrived = new Promise<void>((resolve) => { heartbeat = resolve })
  const server = await openControlServer('tcp://127.0.0.1:0', {
    jobId: 'job',
    security: testSecurity,
    log: (line) => lines.push(line),
    onReceive: (receipt) => {
      receipts.push(receipt)
      if (receipt.kind === 'message') heartbeat()
    },
  })
  let serverClosed = false
  onTestFinished(async () => { if (!serverClosed) await server.close({ lingerMs: 0 }) })
  const client = await connectControlClient(server.endpoint, () => 'the test', { onReceive: () => {}, log: () => {}, security: testSecurity })
  onTestFinished(() => client.close({ lingerMs: 0 }))

  for (let i = 0; i < 50; i++) await client.send({ not: 'a control message', i } as unknown as ControlMessage)
  // One connection delivers in order: once the valid message is here, so are the 50 before it.
  await client.send(controlMessage(MessageType.Heartbeat, 'job', { rank: 0, round: 0, step: 1 }))
  await Promise.race([heartbeatArrived, new Promise((_, reject) => setTimeout(() => reject(new Error(`no heartbeat; receipts ${receipts.length}`)), scaled(5_000)))])

  expect(receipts.map((r) => r.kind)).toEqual(['invalid', 'message'])
  expect(lines).toEqual([])
  await server.close({ lingerMs: 0 })
  serverClosed = true
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(/^Dropped 49 more invalid message\(s\) from worker [0-9a-f]{8} in the last [\d.]+ s without answering them; the last: the coordinator at tcp:\/\/127\.0\.0\.1:\d+ got a control message of unknown type nothing from worker [0-9a-f]{8}; expected one of 1, 2,/)
})
