/**
 * Module resolution hook for task modules (registered by load-task.ts with module.register).
 *
 * A task written outside the ringtrain install (`ringtrain launch -n 4 ~/work/my-task.ts`)
 * imports `@ringtrain/worker` and `@tensorflow/tfjs`. Resolved from its own folder they are
 * either missing or another copy of tfjs, whose engine, kernels and variables the worker
 * never sees. So for importers outside the install, these specifiers resolve from the
 * worker package: the task and the worker share one tfjs.
 */
const shared = /^(@ringtrain\/(worker|core)|@tensorflow\/tfjs)(\/|$)/

let base = ''
let root = ''

export async function initialize(data) {
  base = data.base
  root = data.root
}

export async function resolve(specifier, context, next) {
  if (shared.test(specifier) && context.parentURL && !context.parentURL.startsWith(root)) {
    return next(specifier, { ...context, parentURL: base })
  }
  return next(specifier, context)
}
