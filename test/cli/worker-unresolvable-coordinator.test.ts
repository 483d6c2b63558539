/**
 * A worker whose coordinator is named by a host name that does not resolve (a Slurm node
 * list or RINGTRAIN_COORDINATOR naming a host this machine does not know) stops at once with
 * a ConfigError naming the name, instead of waiting out its join timeout for a coordinator it
 * can never reach. The worker runs in a network namespace of its own (`unshare --net`, as
 * root, as CI runs): the lookup fails there without a packet leaving the machine.
 */
import { expect, test } from 'vitest'
import { cliTestTimeout, startCli, waitForExit } from '../helpers/run-cli.js'
import { scaled } from '../helpers/slack.js'

test('a worker whose coordinator host does not resolve exits 2 in seconds, naming the host and the fix', async () => {
  const started = Date.now()
  const worker = startCli(['worker', '--coordinator', 'tcp://no-such-node.invalid:29400', '--insecure'], { wrap: ['unshare', '--net'] })
  const exit = await waitForExit(worker, scaled(30_000))
  const output = worker.output()
  expect(exit.code, output).toBe(2)
  expect(output).toContain("the coordinator's host no-such-node.invalid does not resolve on this machine")
  expect(output).toContain('give --coordinator (or RINGTRAIN_COORDINATOR) an address, or make the name resolve here')
  expect(output).not.toMatch(/\n\s+at /)
  expect(Date.now() - started).toBeLessThan(scaled(30_000))
}, cliTestTimeout())
