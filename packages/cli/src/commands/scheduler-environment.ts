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
  for (const name of ['RINGTRAIN_LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_RANK', 'SLURM_LOCALID', 'LOCAL_RANK']) {
    const value = env[name]
    if (value === undefined) continue
    if (!/^\d+$/.test(value.trim())) throw new ConfigError(`${name} must be a non-negative integer (the local rank); got '${value}'.`, { got: value })
    return Number(value)
  }
  return undefined
}
