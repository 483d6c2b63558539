// Internals exposed for tests only. Not part of the public API: may change without notice.
export { decide, initialState } from './rendezvous/decide.js'
export type { Decision, RendezvousAction, RendezvousEvent, RendezvousState } from './rendezvous/types.js'
export { OutputSink, writeOutToken } from './output-sink.js'
export { answerDataRequest } from './data-server.js'
