/**
 * Resolves on the event loop's next turn (after timers and I/O), unlike `await` on a settled
 * promise, which stays in the microtask queue. Long synchronous compute (a training step on
 * a slow backend, an evaluation) calls it so heartbeats and control messages still go out.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
