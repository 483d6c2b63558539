/**
 * A clone explains itself: docs and comments point only at what the repository contains.
 * Every `Note [...]` a comment cites is defined exactly once, every relative link in the
 * Markdown files leads to a file that exists, and nothing points outside the repository.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { expect, test } from 'vitest'
import { repoRoot } from '../helpers/run-cli.js'

/** The files git tracks or would add (untracked, not ignored): what a clone gets. */
function repositoryFiles(): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: repoRoot, encoding: 'utf8' })
    .split('\n')
    .filter((path) => path !== '' && existsSync(join(repoRoot, path)))
}

const files = repositoryFiles()
const sources = files.filter((path) => /\.(ts|mts|mjs|js|md)$/.test(path))
const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8')

test('every Note a comment cites is defined once, in a comment that starts with its name', () => {
  const defined = new Map<string, string[]>()
  const cited = new Map<string, string>()
  for (const path of sources.filter((p) => p !== 'test/docs/references.test.ts')) {
    const text = read(path)
    for (const match of text.matchAll(/^\s*(?:\/\/|\*|\/\*\*?)\s*Note \[([^\]]+)\]\s*(?::|$)/gm)) {
      defined.set(match[1]!, [...(defined.get(match[1]!) ?? []), path])
    }
    // A citation may wrap onto the next comment line: fold the line break and its `*` or `//`.
    for (const match of text.matchAll(/Note \[([^\]]+)\]/g)) cited.set(match[1]!.replace(/\s*\n\s*(?:\*|\/\/)?\s*/g, ' '), path)
  }
  const missing = [...cited].filter(([name]) => !defined.has(name)).map(([name, path]) => `Note [${name}] (cited in ${path})`)
  expect(missing, 'cited but never defined').toEqual([])
  const twice = [...defined].filter(([, paths]) => paths.length > 1)
  expect(twice, 'defined more than once').toEqual([])
})

test('no file points outside the repository (../shared, design documents a clone lacks)', () => {
  const outside = sources.filter((path) => path !== 'test/docs/references.test.ts')
    .flatMap((path) => read(path).split('\n').map((line, i) => ({ path, line: i + 1, text: line })))
    .filter(({ text }) => /\.\.\/shared|\bDESIGN\.md\b|\bSTYLE\.md\b/.test(text))
    .map(({ path, line, text }) => `${path}:${line}: ${text.trim()}`)
  expect(outside).toEqual([])
})

test('relative links in the Markdown files lead to files that exist', () => {
  const broken: string[] = []
  for (const path of files.filter((p) => p.endsWith('.md'))) {
    for (const match of read(path).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      const target = match[1]!
      if (/^[a-z]+:/.test(target)) continue // http:, https:, mailto:
      if (!existsSync(join(repoRoot, dirname(path), target))) broken.push(`${path} → ${target}`)
    }
  }
  expect(broken).toEqual([])
})

test('every package.json names the license, and the LICENSE file is there', () => {
  expect(read('LICENSE')).toMatch(/Apache License\s+Version 2\.0/)
  for (const path of files.filter((p) => p.endsWith('package.json'))) {
    expect((JSON.parse(read(path)) as { license?: string }).license, path).toBe('Apache-2.0')
  }
})
