/**
 * How a launcher starts one more `ringtrain worker` process: the same Node, with tsx loaded
 * so that workers can import user tasks written in TypeScript.
 */
import { fileURLToPath } from 'node:url'

const cliMain = fileURLToPath(new URL('../main.ts', import.meta.url))

export function workerCommand(args: string[]): { command: string; args: string[] } {
  // Resolved on use: modules that only build remote commands load without Node's import.meta.resolve (vitest's loader has none).
  return { command: process.execPath, args: ['--import', import.meta.resolve('tsx'), cliMain, 'worker', ...args] }
}
