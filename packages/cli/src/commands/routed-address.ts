/**
 * The address of this machine that its route to `host` leaves from: what other machines of
 * the job reach this worker on, when `--host` is not given. A UDP socket's connect() only
 * asks the kernel for a route; no packet is sent. A name is resolved first (/etc/hosts, DNS):
 * a UDP connect() to a name that does not resolve "succeeds" with 0.0.0.0, and the worker
 * would then wait out its join timeout for a coordinator it can never reach.
 */
import { createSocket } from 'node:dgram'
import { lookup } from 'node:dns/promises'
import { ConfigError } from '@ringtrain/core'

export async function routedAddress(host: string, port: number): Promise<string> {
  if (/^(127\.|localhost$|::1$)/.test(host)) return '127.0.0.1'
  const { address: ip, family } = await lookup(host).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`the coordinator's host ${host} does not resolve on this machine (${error.code ?? error.message}): give --coordinator (or RINGTRAIN_COORDINATOR) an address, or make the name resolve here (DNS, /etc/hosts).`, { flag: 'coordinator', got: host })
  })
  return new Promise((resolve, reject) => {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4')
    socket.once('error', (error) => {
      socket.close()
      reject(error)
    })
    socket.connect(port, ip, () => {
      const { address } = socket.address()
      socket.close()
      resolve(address)
    })
  })
}
