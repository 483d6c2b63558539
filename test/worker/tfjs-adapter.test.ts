/**
 * The thin gradient path (Note [Copy into tensors]): tensors go into the flat buffer
 * straight from the backend's memory, and tensors made from the flat buffer never keep a
 * view of it, on wasm (which copies into its heap) and on cpu (which would adopt it).
 */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest'
import { createLayout } from '@ringtrain/core'
import { selectBackend, tf } from '@ringtrain/worker'
import { assignVariablesFromFlat, tensorsFromFlat, writeTensorsInto } from '@ringtrain/worker/unstable-internals-do-not-import'

const layout = createLayout([{ name: 'a', shape: [2, 3] }, { name: 'missing', shape: [2] }, { name: 'c', shape: [5] }])
const valuesOf = (length: number, salt: number) => Float32Array.from({ length }, (_, i) => Math.sin(i * 1.7 + salt) * 10)

describe.each(['wasm', 'cpu'] as const)('tfjs-adapter on %s', (backend) => {
  beforeAll(async () => { await selectBackend(backend) })
  afterAll(async () => { await tf.setBackend('cpu') })

  test('writeTensorsInto reads each tensor where the backend keeps it (no dataSync) and zero-fills a missing one', () => {
    const a = tf.tensor(valuesOf(6, 1), [2, 3])
    const c = tf.variable(tf.tensor(valuesOf(5, 2)))
    const read = [vi.spyOn(a, 'dataSync'), vi.spyOn(c, 'dataSync')]
    const out = new Float32Array(layout.length).fill(Number.NaN)
    writeTensorsInto([a, null, c], layout, out)
    expect(Array.from(out)).toEqual([...valuesOf(6, 1), 0, 0, ...valuesOf(5, 2)])
    for (const spy of read) expect(spy).not.toHaveBeenCalled() // a view of the backend's memory, not a copy of it
    tf.dispose([a, c])
  })

  test('tensors made from the flat buffer keep their values when the buffer is reused', () => {
    const flat = Float32Array.from({ length: layout.length }, (_, i) => i + 0.5)
    const tensors = tensorsFromFlat(layout, flat)
    flat.fill(-1) // the next step's gradient
    expect(tensors.map((t) => Array.from(t.dataSync()))).toEqual([[0.5, 1.5, 2.5, 3.5, 4.5, 5.5], [6.5, 7.5], [8.5, 9.5, 10.5, 11.5, 12.5]])
    expect(tensors.map((t) => t.shape)).toEqual([[2, 3], [2], [5]])
    tf.dispose(tensors)
  })

  test('variables assigned from the flat buffer keep their values when the buffer is reused', () => {
    const variables = layout.entries.map((e) => tf.variable(tf.zeros([...e.shape])))
    const flat = valuesOf(layout.length, 3)
    assignVariablesFromFlat(variables, layout, flat)
    flat.fill(0)
    const out = new Float32Array(layout.length)
    writeTensorsInto(variables, layout, out)
    expect(Array.from(out)).toEqual(Array.from(valuesOf(layout.length, 3)))
    tf.dispose(variables)
  })
})
