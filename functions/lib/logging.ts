/**
 * Wraps a handler so that everything it logs through its InvocationContext becomes a
 * structured line (shared/log.ts) carrying the build id and batch id of its trigger.
 * The handlers keep calling `context.log(...)`; the context they get delegates to
 * the host's, with the text replaced by the JSON line.
 */
import type { InvocationContext } from '@azure/functions';
import { formatLogLine, logFieldsOf } from '../../shared/util/log';

const LEVELS = ['log', 'trace', 'debug', 'info', 'warn', 'error'] as const;
const LEVEL_NAMES: Record<(typeof LEVELS)[number], string> = {
  log: 'information',
  trace: 'trace',
  debug: 'debug',
  info: 'information',
  warn: 'warning',
  error: 'error',
};

/** A context whose log methods write structured lines; everything else is the host's. */
export function structuredContext(context: InvocationContext, trigger: unknown): InvocationContext {
  const fields = {
    ...logFieldsOf(trigger),
    fn: context.functionName,
    invocationId: context.invocationId,
  };
  const wrapped = Object.create(context) as InvocationContext;
  for (const level of LEVELS) {
    const original = context[level].bind(context);
    wrapped[level] = (...args: unknown[]) =>
      original(formatLogLine(LEVEL_NAMES[level], args, fields));
  }
  return wrapped;
}

export function withStructuredLogs<T, R>(
  handler: (trigger: T, context: InvocationContext) => R,
): (trigger: T, context: InvocationContext) => R {
  return (trigger, context) => handler(trigger, structuredContext(context, trigger));
}
