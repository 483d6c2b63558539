/**
 * `Promise.all` with a deterministic error: waits for every promise to settle, then
 * resolves with all values, or rejects with the rejection of the first promise *in argument
 * order*. `Promise.all` rejects with whichever fails first in time, so the same bad input
 * could report different errors depending on which read the scheduler finished first.
 */
export async function allInOrder<T extends readonly unknown[] | []>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled: readonly PromiseSettledResult<unknown>[] = await Promise.allSettled(promises as readonly unknown[])
  const values: unknown[] = []
  for (const outcome of settled) {
    if (outcome.status === 'rejected') throw outcome.reason
    values.push(outcome.value)
  }
  return values as { -readonly [K in keyof T]: Awaited<T[K]> }
}
