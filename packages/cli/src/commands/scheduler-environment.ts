/**
 * What the schedulers people already use tell a worker through its environment: the
 * coordinator's address and the local rank, so that `mpirun … ringtrain worker`, `srun …
 * ringtrain worker`, a torchrun-style launcher or a Kubernetes Job can start workers with no
 * per-process flags.
 *
 *   coordinator  RINGTRAIN_COORDINATOR (tcp://HOST:PORT or HOST:PORT), else MASTER_ADDR and
 *                MASTER_PORT (torchrun), else the first node of SLURM_JOB_NODELIST; the
 *                port, when not given, is RINGTRAIN_PORT or 29400
 *   local rank   RINGTRAIN_LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_RANK (Open MPI), SLURM_LOCALID,
 *                LOCAL_RANK (torchrun)
 *   rank         RINGTRAIN_RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX
 *                (Kubernetes indexed Jobs), RANK (torchrun): a hint the coordinator follows
 *                when it can (rendezvous/assign-ranks.ts)
 *   world size   RINGTRAIN_WORLD_SIZE, OMPI_COMM_WORLD_SIZE, SLURM_NTASKS, WORLD_SIZE: checked
 *                against the coordinator's -n at the join
 *
 * Each is read from the first scheduler whose variable is set, so a worker under one
 * scheduler never mixes in another's leftovers.
 */
import { ConfigError } from '@ringtrain/core'

export const DEFAULT_COORDINATOR_PORT = 29400

/** The coordinator endpoint the environment names, or undefined. Throws a ConfigError naming a malformed variable. */
export function coordinatorFromEnvironment(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const port = env['RINGTRAIN_PORT'] ?? String(DEFAULT_COORDINATOR_PORT)
  if (!/^\d{1,5}$/.test(port)) throw new ConfigError(`RINGTRAIN_PORT must be a port number; got '${port}'.`, { got: port })
  const given = env['RINGTRAIN_COORDINATOR']
  if (given !== undefined) {
    const endpoint = given.startsWith('tcp://') ? given : `tcp://${given.includes(':') ? given : `${given}:${port}`}`
    if (!/^tcp:\/\/[^:\s/]+:\d{1,5}$/.test(endpoint)) throw new ConfigError(`RINGTRAIN_COORDINATOR must be tcp://HOST:PORT or HOST[:PORT]; got '${given}'.`, { got: given })
    return endpoint
  }
  const master = env['MASTER_ADDR']
  if (master !== undefined && master !== '') {
    const masterPort = env['MASTER_PORT'] ?? port
    if (!/^\d{1,5}$/.test(masterPort)) throw new ConfigError(`MASTER_PORT must be a port number; got '${masterPort}'.`, { got: masterPort })
    return `tcp://${master}:${masterPort}`
  }
  const nodes = env['SLURM_JOB_NODELIST'] ?? env['SLURM_NODELIST']
  if (nodes !== undefined && nodes !== '') return `tcp://${firstSlurmNode(nodes)}:${port}`
  return undefined
}

/**
 * The first host of a Slurm node list: `node[03-05,07],gpu1` → `node03`, `a,b` → `a`
 * (the compressed form `scontrol show hostnames` expands).
 */
export function firstSlurmNode(list: string): string {
  const match = /^([^,[]+)(?:\[([^\],]+)[^\]]*\])?/.exec(list.trim())
  if (match === null) throw new ConfigError(`SLURM_JOB_NODELIST '${list}' names no node.`, { got: list })
  const [, prefix, range] = match
  if (range === undefined) return prefix!
  const first = range.split('-')[0]!
  return `${prefix}${first}`
}

/** Local rank as schedulers set it, when the flag is not given. */
export function localRankFromEnvironment(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return firstInteger(env, ['RINGTRAIN_LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_RANK', 'SLURM_LOCALID', 'LOCAL_RANK'], 'the local rank')?.value
}

/** A scheduler's rank and world size for this process, and the variables they came from. */
export interface RankHints {
  rank?: number
  worldSize?: number
  /** 'SLURM_PROCID/SLURM_NTASKS', for messages. */
  source?: string
}

/** Rank and world size, in pairs of one scheduler; a Kubernetes indexed Job gives only the rank. */
const RANK_SOURCES: readonly (readonly [rank: string, worldSize: string | undefined])[] = [
  ['RINGTRAIN_RANK', 'RINGTRAIN_WORLD_SIZE'],
  ['OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'],
  ['SLURM_PROCID', 'SLURM_NTASKS'],
  ['JOB_COMPLETION_INDEX', undefined],
  ['RANK', 'WORLD_SIZE'],
]

/**
 * The rank hint and world size of the first scheduler whose rank variable is set (only
 * RINGTRAIN_WORLD_SIZE may come alone). Throws a ConfigError naming a malformed variable, or a
 * rank that is not below its own world size.
 */
export function rankHintsFromEnvironment(env: NodeJS.ProcessEnv = process.env): RankHints {
  for (const [rankName, sizeName] of RANK_SOURCES) {
    const rank = firstInteger(env, [rankName], 'a rank')
    if (rank === undefined) continue
    const size = sizeName === undefined ? undefined : firstInteger(env, [sizeName], 'a world size')
    if (size !== undefined && (size.value < 1 || rank.value >= size.value)) {
      throw new ConfigError(`${rankName}=${rank.value} must be below ${sizeName}=${size.value}.`, { expected: `< ${size.value}`, got: rank.value })
    }
    return { rank: rank.value, ...(size !== undefined ? { worldSize: size.value } : {}), source: size !== undefined ? `${rankName}/${sizeName}` : rankName }
  }
  const size = firstInteger(env, ['RINGTRAIN_WORLD_SIZE'], 'a world size')
  return size !== undefined ? { worldSize: size.value, source: 'RINGTRAIN_WORLD_SIZE' } : {}
}

function firstInteger(env: NodeJS.ProcessEnv, names: readonly string[], what: string): { name: string; value: number } | undefined {
  for (const name of names) {
    const value = env[name]
    if (value === undefined || value.trim() === '') continue
    if (!/^\d+$/.test(value.trim())) throw new ConfigError(`${name} must be a non-negative integer (${what}); got '${value}'.`, { got: value })
    return { name, value: Number(value) }
  }
  return undefined
}

/**
 * The environment for workers a launcher numbers itself: without the rank and world-size
 * variables of a scheduler the launcher itself may run under (a `launch` inside an srun
 * step would otherwise hand every local worker the same SLURM_PROCID).
 */
export function withoutSchedulerRanks(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env }
  for (const [rank, size] of RANK_SOURCES) {
    delete copy[rank]
    if (size !== undefined) delete copy[size]
  }
  delete copy['RINGTRAIN_WORLD_SIZE']
  return copy
}
