/** Log lines with a fixed prefix of who and when: `[rank 3/8 round 1 step 120] …`. */
export class WorkerLog {
  rank = -1
  worldSize = 0
  round = 0
  step = 0

  private prefix(): string {
    return this.rank < 0 ? `[worker pid ${process.pid}]` : `[rank ${this.rank}/${this.worldSize} round ${this.round} step ${this.step}]`
  }

  info(sentence: string): void {
    process.stdout.write(`${this.prefix()} ${sentence}\n`)
  }

  error(sentence: string): void {
    process.stderr.write(`${this.prefix()} ${sentence}\n`)
  }
}
