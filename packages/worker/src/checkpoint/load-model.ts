/**
 * Loading what a job saved (OUT/model, or a checkpoint's folder) in plain tfjs, without
 * tfjs-node: `fileHandler(dir)` is a tfjs IOHandler that reads `model.json` and the weight
 * files it names from disk, so `tf.loadLayersModel(fileHandler(dir))` works in Node where
 * `file://` URLs need tfjs-node. `loadModel(dir)` returns the LayersModel, or for a task
 * with raw variables (`format: 'ringtrain-variables'`, no topology) the named tensors.
 *
 * Errors are ConfigErrors naming the file: a folder without model.json, JSON that does not
 * parse, a weight file that is missing or shorter than its manifest says.
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { ConfigError } from '@ringtrain/core'

/** A tfjs IOHandler that loads a model saved in tfjs format from folder `dir`. */
export function fileHandler(dir: string): tf.io.IOHandler {
  const folder = resolve(dir)
  return {
    load: async () => {
      const modelJson = await readModelJson(folder)
      return tf.io.getModelArtifactsForJSON(modelJson, (manifest) => readWeights(folder, manifest))
    },
  }
}

/**
 * The model saved in `dir`: a `tf.LayersModel` for tasks whose model is one, else (raw
 * variables) a map from variable name to tensor. The caller disposes what it gets.
 */
export async function loadModel(dir: string): Promise<tf.LayersModel | tf.NamedTensorMap> {
  const folder = resolve(dir)
  const modelJson = await readModelJson(folder)
  if (modelJson.modelTopology !== undefined) return tf.loadLayersModel(fileHandler(folder))
  const [specs, data] = await readWeights(folder, modelJson.weightsManifest)
  return tf.io.decodeWeights(data, specs)
}

async function readModelJson(folder: string): Promise<tf.io.ModelJSON> {
  const path = join(folder, 'model.json')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    throw new ConfigError(`no saved model in ${folder}: could not read ${path} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}). Name a folder that holds model.json, such as OUT/model or a checkpoint's folder.`, { file: path }, { cause })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    throw new ConfigError(`${path} is not valid JSON: ${(cause as Error).message}.`, { file: path }, { cause })
  }
  const manifest = (json as { weightsManifest?: unknown } | null)?.weightsManifest
  if (!Array.isArray(manifest)) throw new ConfigError(`${path} has no weightsManifest list; it is not a model saved in tfjs format.`, { file: path, expected: 'weightsManifest: [...]' })
  return json as tf.io.ModelJSON
}

async function readWeights(folder: string, manifest: tf.io.WeightsManifestConfig): Promise<[tf.io.WeightsManifestEntry[], ArrayBuffer]> {
  const specs = manifest.flatMap((group) => group.weights)
  const parts = await Promise.all(manifest.flatMap((group) => group.paths.map(async (name) => {
    const path = join(folder, name)
    try {
      return await readFile(path)
    } catch (cause) {
      throw new ConfigError(`the weight file ${path} named in ${join(folder, 'model.json')} could not be read (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}).`, { file: path }, { cause })
    }
  })))
  const bytes = Buffer.concat(parts)
  const expected = specs.reduce((sum, spec) => sum + weightBytes(spec), 0)
  if (bytes.byteLength < expected) {
    throw new ConfigError(`the weight files of ${folder} hold ${bytes.byteLength} bytes, but model.json's manifest needs ${expected}; the model is incomplete.`, { file: folder, expected, got: bytes.byteLength })
  }
  return [specs, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer]
}

/** Bytes a manifest entry takes in the weight files (quantized entries included). */
function weightBytes(spec: tf.io.WeightsManifestEntry): number {
  const size = spec.shape.reduce((a, b) => a * b, 1)
  const dtype = spec.quantization?.dtype ?? spec.dtype
  const width: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 }
  if (spec.dtype === 'string') return 0
  return size * (width[dtype] ?? 4)
}
