/**
 * Writes a model in the standard tfjs format, `model.json` + `weights.bin`, the layout
 * tfjs-node's `file://` handler writes and `tf.loadLayersModel` reads.
 *
 * Atomic: both files are written (and fsynced) into a temporary sibling directory that is
 * then renamed onto `dir`, so a reader, or a run resumed after a crash, finds the old
 * complete model or the new complete model, never half of one. If `dir` already exists it
 * is first renamed aside and removed after the swap.
 */
import { rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { outputWriteError, swapDirectory, temporarySibling, writeFileSynced } from '@ringtrain/core'

/** What is saved: a LayersModel (topology and weights), or named weights of a custom model. */
export type SavedModelSource = { layersModel: tf.LayersModel } | { weights: readonly { name: string; tensor: tf.Tensor }[] }

/** The file names inside a saved model directory. */
export const modelJsonFile = 'model.json'
export const weightsFile = 'weights.bin'

/**
 * Saves `source` to directory `dir` (created with its parents). A LayersModel is loadable
 * with `tf.loadLayersModel`. Custom-model weights go to the same weights manifest format
 * with `format: 'ringtrain-variables'` and no topology: `tf.io.decodeWeights` reads them.
 */
export async function saveModel(source: SavedModelSource, dir: string): Promise<void> {
  const target = resolve(dir)
  let temp: string | undefined
  try {
    const files = await modelFiles(source)
    temp = await temporarySibling(target)
    for (const [name, bytes] of files) await writeFileSynced(join(temp, name), bytes)
    await swapDirectory(temp, target)
  } catch (error) {
    if (temp !== undefined) await rm(temp, { recursive: true, force: true }).catch(() => undefined)
    throw outputWriteError(error, target, 'the trained model')
  }
}

/** The files of a saved model: weights.bin and model.json, as `saveModel` writes them (and rank 0 streams them). */
export async function modelFiles(source: SavedModelSource): Promise<[string, Uint8Array][]> {
  const { modelJson, weightData } = await serialize(source)
  return [[weightsFile, new Uint8Array(weightData)], [modelJsonFile, new TextEncoder().encode(JSON.stringify(modelJson))]]
}

async function serialize(source: SavedModelSource): Promise<{ modelJson: object; weightData: ArrayBuffer }> {
  if ('weights' in source) {
    const { data, specs } = await tf.io.encodeWeights(source.weights.map((w) => ({ name: w.name, tensor: w.tensor })))
    const modelJson = { format: 'ringtrain-variables', generatedBy: `TensorFlow.js tfjs-core v${tf.version_core}`, weightsManifest: [{ paths: [weightsFile], weights: specs }] }
    return { modelJson, weightData: data }
  }
  let saved: { modelJson: object; weightData: ArrayBuffer } | undefined
  await source.layersModel.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const { weightData, weightSpecs, ...rest } = artifacts
      saved = {
        modelJson: { ...withoutUndefined(rest), weightsManifest: [{ paths: [weightsFile], weights: weightSpecs ?? [] }] },
        weightData: weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(weightData),
      }
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) }
    }),
  )
  if (saved === undefined) throw new Error('tf.LayersModel.save did not call the save handler')
  return saved
}

/**
 * model.json of `source` without its weightsManifest: the topology (and training config) of
 * a LayersModel, or the raw-variables header. A checkpoint adds the manifest of the weights
 * it snapshotted; the weights read here are discarded.
 */
export async function modelJsonWithoutWeights(source: SavedModelSource): Promise<Record<string, unknown>> {
  const { modelJson } = await serialize(source)
  const { weightsManifest: _ignored, ...rest } = modelJson as Record<string, unknown>
  return rest
}

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined))
}
