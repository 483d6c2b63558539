/**
 * How a launcher starts one more `ringtrain worker` process: the same Node, with tsx loaded
 * so that workers can import user tasks written in TypeScript.
 */
import { fileURLToPath } from 'node:url'

const cliMain = fileURLToPath(new URL('../main.ts', import.meta.url))
const tsxLoader = import.meta.resolve('tsx')

export function workerCommand(args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', tsxLoader, cliMain, 'worker', ...args] }
}
