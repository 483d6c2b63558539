// Internals exposed for tests only. Not part of the public API: may change without notice.
export { PeerInbox } from './transport/peer-inbox.js'
export { encodeFrameHeader, decodeFrameHeader } from './protocol/frame-header.js'
export type { FrameHeader } from './protocol/frame-header.js'
export { SendQueue } from './transport/send-queue.js'
export type { SendQueueOptions } from './transport/send-queue.js'
