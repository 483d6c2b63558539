/** Reads the weights of a model saved in tfjs format (model.json + weights.bin) by name. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type * as tfTypes from '@tensorflow/tfjs'

export function readSavedWeights(dir: string): Map<string, Float32Array> {
  const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as {
    weightsManifest: { paths: string[]; weights: { name: string; shape: number[]; dtype: string }[] }[]
  }
  const weights = new Map<string, Float32Array>()
  for (const group of modelJson.weightsManifest) {
    const bytes = Buffer.concat(group.paths.map((path) => readFileSync(join(dir, path))))
    let offset = 0
    for (const spec of group.weights) {
      const length = spec.shape.reduce((a, b) => a * b, 1)
      weights.set(spec.name, new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + length * 4)))
      offset += length * 4
    }
  }
  return weights
}

/** Loads a saved LayersModel with `tf.loadLayersModel`, reading model.json and its weight files. */
export async function loadSavedLayersModel(dir: string) {
  const tf = await import('@tensorflow/tfjs')
  const modelJson = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'))
  const groups = modelJson.weightsManifest as { paths: string[]; weights: tfTypes.io.WeightsManifestEntry[] }[]
  const bytes = Buffer.concat(groups.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p)))))
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: groups.flatMap((g) => g.weights),
      weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    }),
  )
}
