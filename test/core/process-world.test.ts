import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { runInProcesses, runInProcessesTimeout } from '../helpers/process-world.js'
import { scaled } from '../helpers/slack.js'

const scenario = fileURLToPath(new URL('./process-world.scenarios.ts', import.meta.url))

/** True while a process with this pid exists. */
const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }
/** Pids of this process's live children (Linux /proc); the vitest worker has none of its own. */
const children = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(process.pid) } catch { return false }
})

describe('runInProcesses', () => {
  test.each([2, 3])('passes each rank to the next, ring-wise, across %i processes', async (worldSize) => {
    const results = await runInProcesses<{ timeoutMs: number }, { rank: number; got: number; pid: number }>({
      worldSize, scenario, exportName: 'passRankAlongRing', params: { timeoutMs: scaled(10_000) },
    })
    expect(results.map((r) => r.got)).toEqual(results.map((_, rank) => (rank - 1 + worldSize) % worldSize))
    expect(new Set([process.pid, ...results.map((r) => r.pid)]).size).toBe(worldSize + 1) // one process per rank
    await expect.poll(() => results.filter((r) => alive(r.pid))).toEqual([]) // none left behind
  }, runInProcessesTimeout())

  test('fails on the deadline with the ranks that did not finish, and kills them all', async () => {
    // The deadline runs from the moment all ranks are connected (process start-up, which load
    // stretches most, has its own), and is scaled: ranks 0 and 1 must return in time.
    const deadlineMs = scaled(3_000)
    const error = await runInProcesses({ worldSize: 3, scenario, exportName: 'oneRankHangs', params: { stuckRank: 2 }, deadlineMs }).catch((e) => e)
    expect(error.message).toBe(`runInProcesses (3 ranks, oneRankHangs) passed its ${deadlineMs} ms deadline. Missing ranks: 2.`)
    expect(children()).toEqual([]) // the stuck rank was killed, and the finished ones exited
  }, runInProcessesTimeout())

  test("rethrows a rank's typed error with its rank and code", async () => {
    const error = await runInProcesses({ worldSize: 2, scenario, exportName: 'rankOneTimesOut', params: { timeoutMs: 100 } }).catch((e) => e)
    expect(error.code).toBe('E_TIMEOUT')
    expect(error.rank).toBe(1)
    expect(error.message).toBe('rank 1 failed: CollectiveTimeoutError [E_TIMEOUT]: rank 1 waited 100 ms for a message from rank 0 (round 0 step 9 op 0 ring step 0 segment 0); nothing arrived.')
  }, runInProcessesTimeout())
})
