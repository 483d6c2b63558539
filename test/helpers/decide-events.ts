/** Drives the coordinator's pure `decide` in tests: events in order, at one time. */
import { decide, type RendezvousAction, type RendezvousEvent, type RendezvousState } from '@ringtrain/coordinator/unstable-internals-do-not-import'

/** Applies `events` in order at time `now`; returns the last state and every action. */
export function runEvents(state: RendezvousState, events: RendezvousEvent[], now: number): { state: RendezvousState; actions: RendezvousAction[] } {
  const actions: RendezvousAction[] = []
  for (const event of events) {
    const decision = decide(state, event, now)
    state = decision.state
    actions.push(...decision.actions)
  }
  return { state, actions }
}
