/** Small builders of rendezvous actions shared by decide.ts and failures.ts. */
import type { RendezvousAction, RendezvousState } from './types.js'

/** Sends `message` to every participant and waiting worker. */
export function broadcast(state: RendezvousState, message: Extract<RendezvousAction, { kind: 'broadcast' }>['message']): RendezvousAction {
  const to = [...Object.keys(state.participants), ...state.waitList.map((w) => w.identity)]
  return { kind: 'broadcast', to, message }
}

export function log(line: string): RendezvousAction {
  return { kind: 'log', line }
}
