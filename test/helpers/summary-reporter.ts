/**
 * Prints one plain closing line, `tests: N passed, N failed` (`, N skipped` when any), after
 * vitest's own summary, so that any CI reading closing lines can count the run.
 */
import type { Reporter, RunnerTask, RunnerTestFile } from 'vitest'

function collect(tasks: RunnerTask[], counts: { passed: number; failed: number; skipped: number }): void {
  for (const task of tasks) {
    if (task.type === 'suite') collect(task.tasks, counts)
    else if (task.mode === 'skip' || task.mode === 'todo') counts.skipped++
    else if (task.result?.state === 'pass') counts.passed++
    else if (task.result?.state === 'fail') counts.failed++
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    const counts = { passed: 0, failed: 0, skipped: 0 }
    collect(files, counts)
    const failed = counts.failed + errors.length
    process.stdout.write(`\ntests: ${counts.passed} passed, ${failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ''}\n`)
  }
}
