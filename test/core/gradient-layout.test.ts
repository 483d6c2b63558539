import { describe, expect, test } from 'vitest'
import { clipByGlobalNorm, compareLayouts, createLayout, hashBytes } from '@ringtrain/core'
import { decodeLayout, encodeLayout, splitFlat } from '@ringtrain/core/unstable-internals-do-not-import'

const mlp = (hidden: number) =>
  createLayout([
    { name: 'dense_1/kernel', shape: [784, hidden] },
    { name: 'dense_1/bias', shape: [hidden] },
    { name: 'dense_2/kernel', shape: [hidden, 10] },
  ])

describe('createLayout', () => {
  test('packs tensors in order without gaps', () => {
    const layout = mlp(512)
    expect(layout.entries.map((e) => [e.name, e.offset, e.length])).toEqual([
      ['dense_1/kernel', 0, 784 * 512],
      ['dense_1/bias', 784 * 512, 512],
      ['dense_2/kernel', 784 * 512 + 512, 5120],
    ])
    expect(layout.length).toBe(784 * 512 + 512 + 5120)
  })

  test('hash is stable, and changes with a name, a shape or the order', () => {
    expect(mlp(512).hash).toBe(mlp(512).hash)
    expect(mlp(512).hash).toMatch(/^[0-9a-f]{16}$/)
    expect(mlp(256).hash).not.toBe(mlp(512).hash)
    const swapped = createLayout([
      { name: 'b', shape: [2] },
      { name: 'a', shape: [2] },
    ])
    const ordered = createLayout([
      { name: 'a', shape: [2] },
      { name: 'b', shape: [2] },
    ])
    expect(swapped.hash).not.toBe(ordered.hash)
    // A shape split differently must not collide: [12] vs [1,2].
    expect(createLayout([{ name: 'w', shape: [12] }]).hash).not.toBe(createLayout([{ name: 'w', shape: [1, 2] }]).hash)
  })

  test('rejects a duplicate name with E_CONFIG', () => {
    const error = (() => {
      try {
        createLayout([
          { name: 'w', shape: [1] },
          { name: 'w', shape: [2] },
        ])
      } catch (e) {
        return e as Error & { code: string }
      }
    })()
    expect(error?.code).toBe('E_CONFIG')
    expect(error?.message).toBe("tensor name 'w' appears twice in the model; every trainable tensor needs a unique name.")
  })

  test('splitFlat gives views that share the buffer', () => {
    const layout = createLayout([
      { name: 'a', shape: [2] },
      { name: 'b', shape: [1, 3] },
    ])
    const flat = new Float32Array(5)
    const [a, b] = splitFlat(layout, flat)
    b![2] = 7
    expect(a!.length).toBe(2)
    expect(flat[4]).toBe(7)
  })
})

describe('compareLayouts', () => {
  test('accepts equal layouts', () => {
    expect(() => compareLayouts(mlp(512), 0, mlp(512), 1)).not.toThrow()
  })

  test('names the first differing tensor, both shapes and both ranks', () => {
    let error: (Error & { code?: string; context?: unknown }) | undefined
    try {
      compareLayouts(mlp(512), 0, mlp(256), 1)
    } catch (e) {
      error = e as Error
    }
    expect(error?.name).toBe('LayoutMismatchError')
    expect(error?.code).toBe('E_LAYOUT_MISMATCH')
    expect(error?.message).toBe(
      "rank 1's model differs from rank 0's at tensor 'dense_1/kernel': rank 0 has shape [784,512], rank 1 has [784,256]. Every rank must build the same model.",
    )
    expect(error?.context).toMatchObject({ rank: 1, peer: 0, tensor: 'dense_1/kernel', expected: [784, 512], got: [784, 256] })
  })

  test('names a tensor that only one rank has', () => {
    const shorter = createLayout(mlp(512).entries.slice(0, 2))
    expect(() => compareLayouts(mlp(512), 0, shorter, 3)).toThrow(
      "rank 3's model differs from rank 0's at tensor #2 'dense_2/kernel': rank 0 has it with shape [512,10], rank 3 has only 2 tensors. Every rank must build the same model.",
    )
  })

  test('names both tensors when the names differ', () => {
    const renamed = createLayout([{ name: 'x', shape: [1] }])
    expect(() => compareLayouts(createLayout([{ name: 'w', shape: [1] }]), 0, renamed, 2)).toThrow(
      "rank 2's model differs from rank 0's at tensor #0: rank 0 has 'w' [1], rank 2 has 'x' [1]. Every rank must build the same model.",
    )
  })
})

describe('encodeLayout / decodeLayout', () => {
  test('round-trips', () => {
    const layout = mlp(512)
    expect(decodeLayout(encodeLayout(layout))).toEqual(layout)
  })

  test('rejects garbage and a corrupted hash with E_BAD_FRAME', () => {
    expect(() => decodeLayout(new Uint8Array([0xff, 0x00]))).toThrow('a gradient layout frame of 2 bytes is not UTF-8 JSON; dropped it.')
    const text = new TextDecoder().decode(encodeLayout(mlp(512))).replace('[784,512]', '[784,513]')
    let code: string | undefined
    try {
      decodeLayout(new TextEncoder().encode(text))
    } catch (e) {
      code = (e as { code: string }).code
    }
    expect(code).toBe('E_BAD_FRAME')
  })
})

describe('clipByGlobalNorm', () => {
  test('scales to maxNorm when above and returns the norm before clipping', () => {
    const g = new Float32Array([3, 4]) // norm 5
    expect(clipByGlobalNorm(g, 1)).toBe(5)
    expect(Array.from(g)).toEqual([Math.fround(0.6), Math.fround(0.8)])
  })

  test('leaves a gradient below maxNorm untouched', () => {
    const g = new Float32Array([3, 4])
    expect(clipByGlobalNorm(g, 10)).toBe(5)
    expect(Array.from(g)).toEqual([3, 4])
  })
})

test('hashBytes is FNV-1a 64 (reference vectors)', () => {
  expect(hashBytes(new Uint8Array())).toBe('cbf29ce484222325')
  expect(hashBytes(new TextEncoder().encode('a'))).toBe('af63dc4c8601ec8c')
  expect(hashBytes(new TextEncoder().encode('foobar'))).toBe('85944171f73967e8')
})
