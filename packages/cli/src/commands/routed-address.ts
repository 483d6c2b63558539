/**
 * The address of this machine that its route to `host` leaves from: what other machines of
 * the job reach this worker on, when `--host` is not given. A UDP socket's connect() only
 * asks the kernel for a route; no packet is sent.
 */
import { createSocket } from 'node:dgram'
import { isIP } from 'node:net'

export function routedAddress(host: string, port: number): Promise<string> {
  if (/^(127\.|localhost$|::1$)/.test(host)) return Promise.resolve('127.0.0.1')
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4')
    socket.once('error', (error) => {
      socket.close()
      reject(error)
    })
    socket.connect(port, host, () => {
      const { address } = socket.address()
      socket.close()
      resolve(address)
    })
  })
}
