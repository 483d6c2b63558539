/** What mpirun, srun, torchrun-style launchers and Kubernetes tell a worker (scheduler-environment.ts). */
import { describe, expect, test } from 'vitest'
import { coordinatorFromEnvironment, firstSlurmNode, localRankFromEnvironment, rankHintsFromEnvironment, withoutSchedulerRanks } from '@ringtrain/cli'

describe('the coordinator from the environment', () => {
  test('RINGTRAIN_COORDINATOR first, as an endpoint or HOST[:PORT]', () => {
    expect(coordinatorFromEnvironment({ RINGTRAIN_COORDINATOR: 'tcp://10.0.0.1:7000', MASTER_ADDR: 'x' })).toBe('tcp://10.0.0.1:7000')
    expect(coordinatorFromEnvironment({ RINGTRAIN_COORDINATOR: 'head:7001' })).toBe('tcp://head:7001')
    expect(coordinatorFromEnvironment({ RINGTRAIN_COORDINATOR: 'head', RINGTRAIN_PORT: '7002' })).toBe('tcp://head:7002')
  })

  test('then torchrun\'s MASTER_ADDR and MASTER_PORT, then the first node of a Slurm allocation, on port 29400 by default', () => {
    expect(coordinatorFromEnvironment({ MASTER_ADDR: '10.1.2.3', MASTER_PORT: '29500' })).toBe('tcp://10.1.2.3:29500')
    expect(coordinatorFromEnvironment({ MASTER_ADDR: 'head' })).toBe('tcp://head:29400')
    expect(coordinatorFromEnvironment({ SLURM_JOB_NODELIST: 'gpu[07-09,12],cpu1' })).toBe('tcp://gpu07:29400')
    expect(coordinatorFromEnvironment({})).toBeUndefined()
  })

  test('malformed variables are refused, naming them', () => {
    expect(() => coordinatorFromEnvironment({ RINGTRAIN_COORDINATOR: 'tcp://a b:1' })).toThrow(/RINGTRAIN_COORDINATOR must be tcp:\/\/HOST:PORT/)
    expect(() => coordinatorFromEnvironment({ MASTER_ADDR: 'h', MASTER_PORT: 'eighty' })).toThrow(/MASTER_PORT must be a port number; got 'eighty'/)
  })

  test('Slurm node lists: plain, ranges, lists', () => {
    expect(firstSlurmNode('node01')).toBe('node01')
    expect(firstSlurmNode('a,b,c')).toBe('a')
    expect(firstSlurmNode('n[3-5]')).toBe('n3')
    expect(firstSlurmNode('rack1-n[010,012-020]')).toBe('rack1-n010')
  })
})

test('the local rank from Open MPI, Slurm, torchrun or RINGTRAIN_LOCAL_RANK, in that precedence', () => {
  expect(localRankFromEnvironment({ OMPI_COMM_WORLD_LOCAL_RANK: '2', SLURM_LOCALID: '5' })).toBe(2)
  expect(localRankFromEnvironment({ RINGTRAIN_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_RANK: '2' })).toBe(1)
  expect(localRankFromEnvironment({ LOCAL_RANK: '3' })).toBe(3)
  expect(localRankFromEnvironment({})).toBeUndefined()
  expect(() => localRankFromEnvironment({ SLURM_LOCALID: 'x' })).toThrow(/SLURM_LOCALID must be a non-negative integer/)
})

describe('rank hints from the environment', () => {
  test('each scheduler gives its rank and world size as a pair, in precedence order', () => {
    expect(rankHintsFromEnvironment({ OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '4', SLURM_PROCID: '1', SLURM_NTASKS: '2' })).toEqual({ rank: 3, worldSize: 4, source: 'OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE' })
    expect(rankHintsFromEnvironment({ SLURM_PROCID: '1', SLURM_NTASKS: '2', RANK: '0', WORLD_SIZE: '8' })).toEqual({ rank: 1, worldSize: 2, source: 'SLURM_PROCID/SLURM_NTASKS' })
    expect(rankHintsFromEnvironment({ RANK: '5', WORLD_SIZE: '8' })).toEqual({ rank: 5, worldSize: 8, source: 'RANK/WORLD_SIZE' })
    expect(rankHintsFromEnvironment({ RINGTRAIN_RANK: '0', RINGTRAIN_WORLD_SIZE: '2', SLURM_PROCID: '1' })).toEqual({ rank: 0, worldSize: 2, source: 'RINGTRAIN_RANK/RINGTRAIN_WORLD_SIZE' })
  })

  test('a Kubernetes indexed Job gives the rank alone; RINGTRAIN_WORLD_SIZE may come alone; nothing set gives no hints', () => {
    expect(rankHintsFromEnvironment({ JOB_COMPLETION_INDEX: '2' })).toEqual({ rank: 2, source: 'JOB_COMPLETION_INDEX' })
    expect(rankHintsFromEnvironment({ RINGTRAIN_WORLD_SIZE: '3' })).toEqual({ worldSize: 3, source: 'RINGTRAIN_WORLD_SIZE' })
    expect(rankHintsFromEnvironment({ SLURM_LOCALID: '0', WORLD_SIZE: '2' })).toEqual({})
  })

  test('malformed or inconsistent variables are refused, naming them', () => {
    expect(() => rankHintsFromEnvironment({ SLURM_PROCID: 'one' })).toThrow(/SLURM_PROCID must be a non-negative integer \(a rank\); got 'one'/)
    expect(() => rankHintsFromEnvironment({ RANK: '4', WORLD_SIZE: '4' })).toThrow('RANK=4 must be below WORLD_SIZE=4.')
    expect(() => rankHintsFromEnvironment({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '-1' })).toThrow(/OMPI_COMM_WORLD_SIZE must be a non-negative integer/)
  })

  test('a launcher running under a scheduler hands its own workers none of its rank variables', () => {
    const env = withoutSchedulerRanks({ SLURM_PROCID: '1', SLURM_NTASKS: '2', SLURM_LOCALID: '1', JOB_COMPLETION_INDEX: '0', RANK: '1', WORLD_SIZE: '2', OMPI_COMM_WORLD_RANK: '1', RINGTRAIN_WORLD_SIZE: '2', PATH: '/bin' })
    expect(env).toEqual({ SLURM_LOCALID: '1', PATH: '/bin' })
  })
})
