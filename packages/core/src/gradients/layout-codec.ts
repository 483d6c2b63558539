/**
 * A gradient layout as bytes, for rank 0's broadcast before step 0. The format is UTF-8
 * JSON `{ version, hash, entries: [[name, shape], ...] }`: small (a layout is sent once),
 * readable in a packet dump, and independent of the message codec.
 */
import { FrameError } from '../errors.js'
import { createLayout, type GradientLayout } from './layout.js'

const layoutFormatVersion = 1

/** Encodes `layout` for `decodeLayout`. */
export function encodeLayout(layout: GradientLayout): Uint8Array {
  const entries = layout.entries.map((e) => [e.name, e.shape])
  return new TextEncoder().encode(JSON.stringify({ version: layoutFormatVersion, hash: layout.hash, entries }))
}

/**
 * Decodes bytes from `encodeLayout` and recomputes offsets and hash. Rejects with
 * `FrameError` (`E_BAD_FRAME`) bytes that are not a layout, a foreign format version, or a
 * hash that does not match the entries (a corrupted frame).
 */
export function decodeLayout(bytes: Uint8Array): GradientLayout {
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (cause) {
    throw new FrameError('E_BAD_FRAME', `a gradient layout frame of ${bytes.byteLength} bytes is not UTF-8 JSON; dropped it.`, {}, { cause })
  }
  const { version, hash, entries } = (parsed ?? {}) as { version?: unknown; hash?: unknown; entries?: unknown }
  if (version !== layoutFormatVersion) {
    throw new FrameError('E_BAD_FRAME', `a gradient layout frame has format version ${String(version)}; expected ${layoutFormatVersion}.`, {
      expected: layoutFormatVersion,
      got: version,
    })
  }
  if (!Array.isArray(entries) || !entries.every(isEntry)) {
    throw new FrameError('E_BAD_FRAME', 'a gradient layout frame has malformed entries; expected [name, shape] pairs.')
  }
  const layout = createLayout(entries.map(([name, shape]) => ({ name, shape })))
  if (layout.hash !== hash) {
    throw new FrameError('E_BAD_FRAME', `a gradient layout frame says hash ${String(hash)} but its entries hash to ${layout.hash}; the frame is corrupted.`, {
      expected: hash,
      got: layout.hash,
    })
  }
  return layout
}

function isEntry(value: unknown): value is [string, number[]] {
  return (
    Array.isArray(value) &&
    value.length === 2 &&
    typeof value[0] === 'string' &&
    Array.isArray(value[1]) &&
    value[1].every((d: unknown) => typeof d === 'number')
  )
}
