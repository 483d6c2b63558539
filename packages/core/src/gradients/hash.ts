/**
 * A small, stable, dependency-free hash (FNV-1a, 64 bits) for layouts and parameters.
 * Not cryptographic: it detects accidental disagreement between ranks, not tampering.
 */

const offsetBasisHigh = 0xcbf29ce4
const offsetBasisLow = 0x84222325
// 64-bit FNV prime 0x100000001b3 = 2^40 + 0x1b3, split for 32-bit arithmetic.
const primeLow = 0x1b3

/** Incremental FNV-1a 64 over bytes; `digest()` gives 16 lowercase hex characters. */
export class Fnv1a64 {
  private high = offsetBasisHigh
  private low = offsetBasisLow

  /** Feeds `bytes` into the hash. Returns `this` for chaining. */
  update(bytes: Uint8Array): this {
    let high = this.high
    let low = this.low
    for (let i = 0; i < bytes.length; i++) {
      low ^= bytes[i]!
      // (high:low) * (2^40 + 0x1b3) mod 2^64, in 16-bit limbs of the low word to stay exact.
      const lowTimesPrimeLow = (low & 0xffff) * primeLow
      const carry = ((low >>> 16) * primeLow + (lowTimesPrimeLow >>> 16)) >>> 0
      const newLow = ((carry << 16) | (lowTimesPrimeLow & 0xffff)) >>> 0
      const newHigh = (Math.imul(high, primeLow) + (low << 8) + Math.floor(carry / 0x10000)) >>> 0
      high = newHigh
      low = newLow
    }
    this.high = high
    this.low = low
    return this
  }

  /** Feeds the UTF-8 bytes of `text`. */
  updateString(text: string): this {
    return this.update(new TextEncoder().encode(text))
  }

  digest(): string {
    return this.high.toString(16).padStart(8, '0') + this.low.toString(16).padStart(8, '0')
  }
}

/** FNV-1a 64 of `bytes` (or of a Float32Array's bytes), as 16 hex characters. */
export function hashBytes(bytes: Uint8Array | Float32Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return new Fnv1a64().update(view).digest()
}
