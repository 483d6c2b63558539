/** What mpirun, srun, torchrun-style launchers and Kubernetes tell a worker (scheduler-environment.ts). */
import { describe, expect, test } from 'vitest'
import { coordinatorFromEnvironment, firstSlurmNode, localRankFromEnvironment } from '@ringtrain/cli'

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
