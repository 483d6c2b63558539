// What tests and embedders may use of @ringtrain/cli; the commands themselves are run through main.ts.
export { createRunDir, runStamp, safeName, type RunDirOptions } from './commands/out-dir.js'
export { jobConfigWithOutDir, type JobArgs } from './commands/job-options.js'
export { coordinatorFromEnvironment, firstSlurmNode, localRankFromEnvironment, rankHintsFromEnvironment, withoutSchedulerRanks } from './commands/scheduler-environment.js'
export { addressOf, isThisMachine, parseHostList, parseHostfileText, placeWorkers, readHostfile, type HostSlots, type Placement } from './launch/remote-hosts.js'
export { remoteEnvironment, shellQuote, splitCommandLine, sshWorkerCommand } from './launch/ssh-workers.js'
