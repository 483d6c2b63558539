/**
 * Catch mismatches before step 0 (STYLE.md D): rank 0 broadcasts its backend name and
 * gradient layout; every rank compares them with its own and fails naming the first
 * differing tensor, both shapes and both ranks. Mixed backends are refused because their
 * float results differ, so replicas would drift apart.
 */
import { broadcast, compareLayouts, ConfigError, decode, encode, type GradientLayout, type Transport } from '@ringtrain/core'

export async function checkSameSetup(
  transport: Transport,
  layout: GradientLayout,
  backend: string,
  options: { round: number; timeoutMs: number },
): Promise<void> {
  const mine = encode({ backend, layout })
  // Length first, so that every rank can allocate the buffer for rank 0's bytes.
  const length = new Float32Array([mine.byteLength])
  await broadcast(transport, length, { root: 0, round: options.round, step: 0, op: 0, timeoutMs: options.timeoutMs })
  const padded = new Uint8Array(Math.ceil(length[0]! / 4) * 4)
  if (transport.rank === 0) padded.set(mine)
  const floats = new Float32Array(padded.buffer)
  await broadcast(transport, floats, { root: 0, round: options.round, step: 0, op: 1, timeoutMs: options.timeoutMs })
  const rank0 = decode(new Uint8Array(floats.buffer, 0, length[0]!)) as { backend: string; layout: GradientLayout }
  if (rank0.backend !== backend) {
    throw new ConfigError(
      `rank ${transport.rank} computes on backend '${backend}' but rank 0 on '${rank0.backend}'; a job refuses to mix backends because their float results differ. Pass the same --backend to every worker.`,
      { rank: transport.rank, expected: rank0.backend, got: backend },
    )
  }
  compareLayouts(rank0.layout, 0, layout, transport.rank)
}
