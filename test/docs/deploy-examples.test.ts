/**
 * examples/deploy/ runs as written: every `ringtrain` flag its files use (commands and the
 * usage in their comments) is one the CLI's --help lists for that command, and
 * kubernetes.yaml holds the objects it describes, consistently wired. No YAML parser is a
 * dependency of the project: the YAML is checked by its lines (documents, indentation, keys).
 * test/integration/slurm.test.ts runs slurm.sbatch itself on a real one-node Slurm cluster.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli } from '../helpers/run-cli.js'

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8')
const sbatch = read('examples/deploy/slurm.sbatch')
const kubernetes = read('examples/deploy/kubernetes.yaml')

/** The options `ringtrain COMMAND --help` lists: its long flags and its one-letter aliases. */
async function optionsOf(command: string): Promise<Set<string>> {
  const help = await runCli([command, '--help'])
  expect(help.code, help.output).toBe(0)
  return new Set(help.output.match(/(?<![\w-])--?[a-z][a-z-]*/g))
}

/** Every flag (`--name` or `-n`) among `words`. */
const flagsIn = (words: string[]) => words.filter((word) => /^--?[a-z][a-z-]*$/.test(word)).map((word) => word.replace(/=.*/, ''))

/** [command, flags] of every ringtrain invocation in the batch script, and of the usage lines that pass flags through to the coordinator. */
function sbatchInvocations(): Array<[string, string[]]> {
  const joined = sbatch.replace(/\\\n\s*/g, ' ')
  const found: Array<[string, string[]]> = []
  for (const match of joined.matchAll(/ringtrain\S*\s+(coordinator|worker|keygen)\b([^\n`]*)/g)) found.push([match[1]!, flagsIn(match[2]!.split(/\s+/))])
  // `sbatch … slurm.sbatch TASK FLAGS…`: the flags after the task are the coordinator's.
  for (const match of joined.matchAll(/slurm\.sbatch\s+(?!TASK\b)\S+([^\n`]*)/g)) found.push(['coordinator', flagsIn(match[1]!.split(/\s+/))])
  return found
}

/** The YAML's documents, each as its lines without comments and blank lines. */
function yamlDocuments(): string[][] {
  return kubernetes.split(/^---$/m).map((doc) => doc.split('\n').filter((line) => line.trim() !== '' && !/^\s*#/.test(line)))
}

/** [command, flags] of every container whose args start with a ringtrain command. */
function kubernetesInvocations(): Array<[string, string[]]> {
  const found: Array<[string, string[]]> = []
  for (const match of kubernetes.matchAll(/^(\s*)args:\n((?:\1 {2}- .*\n)+)/gm)) {
    const items = match[2]!.split('\n').filter((line) => line.trim() !== '').map((line) => line.trim().replace(/^- /, '').replace(/^"(.*)"$/, '$1'))
    found.push([items[0]!, flagsIn(items.slice(1))])
  }
  return found
}

test('every ringtrain flag in slurm.sbatch and kubernetes.yaml is one the CLI lists in --help', async () => {
  const commands = ['coordinator', 'worker', 'keygen']
  const known = new Map(await Promise.all(commands.map(async (command) => [command, await optionsOf(command)] as const)))
  const invocations = [...sbatchInvocations().map(([c, f]) => ['slurm.sbatch', c, f] as const), ...kubernetesInvocations().map(([c, f]) => ['kubernetes.yaml', c, f] as const)]
  // Both files start a coordinator and workers; the Slurm script makes a key too.
  expect(new Set(invocations.map(([file, command]) => `${file} ${command}`))).toEqual(new Set([
    'slurm.sbatch coordinator', 'slurm.sbatch worker', 'slurm.sbatch keygen', 'kubernetes.yaml coordinator', 'kubernetes.yaml worker',
  ]))
  const unknown = invocations.flatMap(([file, command, flags]) => flags.filter((flag) => !known.get(command)?.has(flag)).map((flag) => `${file}: ringtrain ${command} ${flag}`))
  expect(unknown).toEqual([])
  expect(invocations.flatMap(([, , flags]) => flags)).toContain('--secret-file')
}, cliTestTimeout())

test('slurm.sbatch asks Slurm for tasks per node, starts workers with srun and no --coordinator, and is valid bash', () => {
  expect(sbatch).toMatch(/^#!\/bin\/bash\n/)
  expect(sbatch).toMatch(/^#SBATCH --ntasks-per-node=\d+$/m)
  expect(sbatch).toMatch(/^srun .*\bworker\b/m)
  expect(sbatch).not.toMatch(/worker[^\n]*--coordinator/)
  expect(sbatch).toMatch(/\$SLURM_NTASKS/)
  expect(runBash(['-n', join(repoRoot, 'examples/deploy/slurm.sbatch')])).toBe('')
})

test('kubernetes.yaml: well-formed documents, a headless Service for the coordinator Pod, an indexed Job of as many workers as -n, the key as a 0400 Secret file', () => {
  const docs = yamlDocuments()
  for (const [i, lines] of docs.entries()) {
    const where = `document ${i + 1}`
    expect(lines.filter((line) => /\t/.test(line)), `${where}: tabs`).toEqual([])
    expect(lines.filter((line) => (line.length - line.trimStart().length) % 2 !== 0), `${where}: odd indentation`).toEqual([])
    // A key line is `key:` or `key: value`; a list item `- …`; nothing else at any depth.
    expect(lines.filter((line) => !/^\s*(- .*|[A-Za-z][\w./-]*:( .*)?)$/.test(line)), `${where}: lines that are neither a key nor a list item`).toEqual([])
    expect(lines.filter((line) => !line.startsWith(' ')).map((line) => line.split(':')[0]), where).toEqual(['apiVersion', 'kind', 'metadata', 'spec'])
  }
  const kinds = docs.map((lines) => lines.find((line) => line.startsWith('kind:'))!.slice('kind:'.length).trim())
  expect(kinds).toEqual(['Service', 'Pod', 'Job'])
  const [service, pod, jobDoc] = docs.map((lines) => lines.join('\n'))
  const value = (text: string, key: string) => [...text.matchAll(new RegExp(`^\\s*${key}: (.*)$`, 'gm'))].map((m) => m[1]!.replace(/^"(.*)"$/, '$1'))

  expect(value(service!, 'clusterIP')).toEqual(['None'])
  // The Service selects the coordinator Pod by every label of its selector.
  const afterSelector = service!.slice(service!.indexOf('selector:')).split('\n').slice(1)
  const selector = afterSelector.slice(0, afterSelector.findIndex((line) => !/^ {4}/.test(line))).map((line) => line.trim())
  expect(selector.length).toBeGreaterThan(0)
  for (const label of selector) expect(pod, `Pod label ${label}`).toContain(`    ${label}`)
  // The workers' RINGTRAIN_COORDINATOR names the Service and the port the coordinator binds.
  const coordinatorArgs = kubernetesInvocations().find(([command]) => command === 'coordinator')!
  const bind = pod!.match(/- --bind\n\s*- tcp:\/\/0\.0\.0\.0:(\d+)/)
  expect(bind, 'coordinator --bind tcp://0.0.0.0:PORT').not.toBeNull()
  const serviceName = value(service!, 'name')[0]
  expect(value(service!, 'port')).toEqual([bind![1]])
  expect(jobDoc).toMatch(new RegExp(`- name: RINGTRAIN_COORDINATOR\\n\\s*value: tcp://${serviceName}:${bind![1]}\\n`))
  expect(coordinatorArgs[1]).toContain('--secret-file')

  // An indexed Job (Kubernetes sets JOB_COMPLETION_INDEX in each Pod) of -n workers.
  expect(value(jobDoc!, 'completionMode')).toEqual(['Indexed'])
  const workers = pod!.match(/- -n\n\s*- "?(\d+)"?/)![1]
  expect(value(jobDoc!, 'completions')).toEqual([workers])
  expect(value(jobDoc!, 'parallelism')).toEqual([workers])

  // The key: one Secret, mounted read-only with mode 0400 where --secret-file points.
  for (const text of [pod!, jobDoc!]) {
    const keyFile = text.match(/- --secret-file\n\s*- (\S+)/)![1]!
    const mountPath = value(text, 'mountPath').find((path) => keyFile.startsWith(`${path}/`))
    expect(mountPath, `a volume mounted where ${keyFile} is`).toBeDefined()
    expect(value(text, 'secretName')).toEqual(['ringtrain-job-key'])
    expect(value(text, 'defaultMode')).toEqual(['0400'])
  }
  const keyName = pod!.match(/- --secret-file\n\s*- \S+\/([^/\s]+)/)![1]
  expect(kubernetes).toContain(`kubectl create secret generic ringtrain-job-key --from-file=${keyName}=`)
})

/** What `bash ARGS` prints (bash -n: nothing for a script that parses). */
function runBash(args: string[]): string {
  const result = spawnSync('bash', args, { encoding: 'utf8' })
  return `${result.stdout}${result.stderr}`
}
