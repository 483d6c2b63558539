/** This install's version, from @ringtrain/worker's package.json (checkpoints record it). */
import { readFileSync } from 'node:fs'

export const RINGTRAIN_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
