/**
 * The README's code is executable: every `ts` block that defines a task is written to a
 * folder outside the repository, as a user would copy it, and trained for a few steps by
 * `ringtrain launch` on the default backend. The README cannot drift from the code.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli } from '../helpers/run-cli.js'
import { scaled } from '../helpers/slack.js'

// Launch, 3 steps, evaluation on 2000 digits: about 20 s on an idle 2-core machine.
const launchDeadlineMs = scaled(120_000)

/** The `ts` code blocks of a Markdown file that call defineTask, with the line each starts on. */
function taskBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = []
  const fence = /^```ts\n([\s\S]*?)^```$/gm
  for (const match of markdown.matchAll(fence)) {
    if (!match[1]!.includes('defineTask(')) continue
    blocks.push({ line: markdown.slice(0, match.index).split('\n').length, code: match[1]! })
  }
  return blocks
}

const blocks = taskBlocks(readFileSync(join(repoRoot, 'README.md'), 'utf8'))

test('the README shows at least one task', () => {
  expect(blocks.length).toBeGreaterThan(0)
})

test.each(blocks.map((b) => [b.line, b] as const))('the task in README.md at line %i trains for 3 steps on 2 workers', async (_line, block) => {
  const folder = mkdtempSync(join(tmpdir(), 'ringtrain-readme-'))
  onTestFinished(() => rmSync(folder, { recursive: true, force: true }))
  const task = join(folder, 'task.mts')
  writeFileSync(task, block.code)
  const out = join(folder, 'out')
  const run = await runCli(['launch', '-n', '2', task, '--max-steps', '3', '--out', out, '--quiet'], { timeoutMs: launchDeadlineMs })
  expect(run.code, run.output).toBe(0)
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
  expect(summary).toMatchObject({ workers: 2, steps: 3, replicasIdentical: true })
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number; learningRate: number })
  expect(lines).toHaveLength(3)
  for (const line of lines) expect(Number.isFinite(line.loss) && line.learningRate > 0, JSON.stringify(line)).toBe(true)
}, cliTestTimeout(launchDeadlineMs))
