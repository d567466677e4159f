/**
 * Structured log lines for the Functions app: one JSON object a line with the build
 * id and the batch id (shard) on every line, so Application Insights can filter a
 * build's traces (`customDimensions` aside, the message itself parses as JSON).
 */

export interface LogFields {
  buildId: string | null;
  batchId: string | null;
}

const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);

/**
 * The build and batch an invocation works on, from its trigger: a queue message
 * (object, or JSON text) with `buildId` / `shardId`, or an HTTP request whose route
 * has `{id}`. Unknown shapes give nulls, never an error: logging must not fail.
 */
export function logFieldsOf(trigger: unknown): LogFields {
  let t = trigger;
  if (typeof t === 'string') {
    try {
      t = JSON.parse(t);
    } catch {
      return { buildId: null, batchId: null };
    }
  }
  if (t === null || typeof t !== 'object') return { buildId: null, batchId: null };
  const o = t as Record<string, unknown>;
  const params = o.params as Record<string, unknown> | undefined;
  return {
    buildId: str(o.buildId) ?? str(params?.id),
    batchId: str(o.shardId),
  };
}

const textOf = (a: unknown): string => {
  if (typeof a === 'string') return a;
  if (a instanceof Error) return `${a.name}: ${a.message}`;
  try {
    return JSON.stringify(a) ?? String(a);
  } catch {
    return String(a);
  }
};

/** One log line as JSON: level, message, build and batch ids, then the invocation's context. */
export function formatLogLine(
  level: string,
  args: readonly unknown[],
  fields: LogFields & { fn?: string; invocationId?: string },
): string {
  return JSON.stringify({
    level,
    msg: args.map(textOf).join(' '),
    buildId: fields.buildId,
    batchId: fields.batchId,
    ...(fields.fn ? { fn: fields.fn } : {}),
    ...(fields.invocationId ? { invocationId: fields.invocationId } : {}),
  });
}
