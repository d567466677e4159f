/**
 * Storage operations the handlers share: reading a build's records, counting its
 * markers, starting a build, recording an outcome, and the completion check that
 * hands a finished build to the fan-in. Idempotent throughout: each may run twice.
 */
import type { InvocationContext } from '@azure/functions';
import type { z } from 'zod';
import {
  BatchFailureSchema,
  BatchSummarySchema,
  BuildSpecSchema,
  OutcomeSchema,
  PlanRecordSchema,
  buildPaths,
  completionOf,
  parseMarkerName,
  reduceStatus,
  type BatchFailure,
  type BatchSummary,
  type BuildSpec,
  type BuildStatus,
  type Outcome,
  type PlanRecord,
} from '../shared/build';
import type { Deps } from './deps';

/** A message that can never succeed (bad shape): logged and dropped, not retried. */
export class PermanentMessageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentMessageError';
  }
}

/** A failure worth another delivery (storage hiccup, judge outage). */
export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/** The queue payload as an object: the host hands JSON messages over parsed. */
export function parseMessage<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  context: InvocationContext,
): z.infer<S> | null {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    context.error(
      `dropping malformed message: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ')}`,
    );
    return null;
  }
  return parsed.data;
}

export const dequeueCountOf = (context: InvocationContext): number => {
  const n = Number(context.triggerMetadata?.dequeueCount);
  return Number.isFinite(n) && n >= 1 ? n : 1;
};

export const errorText = (err: unknown): string => {
  if (err instanceof Error) {
    const cause =
      err.cause instanceof Error ? ` (cause: ${err.cause.name}: ${err.cause.message})` : '';
    return `${err.name}: ${err.message}${cause}`;
  }
  return String(err);
};

export async function getSpec(deps: Deps, buildId: string): Promise<BuildSpec | null> {
  const cached = deps.specCache.get(buildId);
  if (cached) return cached;
  const spec = await deps.store.getJson(buildPaths(buildId).spec, BuildSpecSchema);
  if (spec) deps.specCache.set(buildId, spec);
  return spec;
}

export const getPlan = (deps: Deps, buildId: string): Promise<PlanRecord | null> =>
  deps.store.getJson(buildPaths(buildId).plan, PlanRecordSchema);

export const getOutcome = (deps: Deps, buildId: string): Promise<Outcome | null> =>
  deps.store.getJson(buildPaths(buildId).outcome, OutcomeSchema);

/** Marker names of a build: (shardId, done|failed). */
export async function listMarkers(deps: Deps, buildId: string) {
  const names = await deps.store.list(buildPaths(buildId).markers);
  return names.map(parseMarkerName).filter((m) => m !== null);
}

async function pool<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
export { pool };

/** Reads every marker body of a build (status and fan-in need the counts). */
export async function readMarkers(
  deps: Deps,
  buildId: string,
): Promise<{ summaries: BatchSummary[]; failures: BatchFailure[] }> {
  const p = buildPaths(buildId);
  const markers = await listMarkers(deps, buildId);
  const summaries: BatchSummary[] = [];
  const failures: BatchFailure[] = [];
  await pool(markers, 16, async (m) => {
    if (m.kind === 'done') {
      const s = await deps.store.getJson(p.done(m.shardId), BatchSummarySchema);
      if (s) summaries.push(s);
    } else {
      const f = await deps.store.getJson(p.failed(m.shardId), BatchFailureSchema);
      if (f) failures.push(f);
    }
  });
  const byShard = (a: { shardId: string }, b: { shardId: string }) =>
    a.shardId < b.shardId ? -1 : 1;
  return { summaries: summaries.sort(byShard), failures: failures.sort(byShard) };
}

/** Writes build.json (create-only) and queues its plan; false when the id was taken. */
export async function startBuild(deps: Deps, spec: BuildSpec): Promise<boolean> {
  await deps.store.ensureContainer();
  const created = await deps.store.create(buildPaths(spec.id).spec, JSON.stringify(spec, null, 2));
  if (created)
    await deps.queues.send(deps.settings.queues.plan, { kind: 'plan', buildId: spec.id });
  return created;
}

/** Records how a build ended; the first outcome wins. */
export async function recordOutcome(deps: Deps, outcome: Outcome): Promise<boolean> {
  return deps.store.create(buildPaths(outcome.buildId).outcome, JSON.stringify(outcome, null, 2));
}

/**
 * Queues the fan-in when every planned batch is done or failed. Runs after each
 * batch commits (and again on a redelivery), so the last one to finish sees it.
 */
export async function checkCompletion(deps: Deps, buildId: string): Promise<boolean> {
  const plan = await getPlan(deps, buildId);
  if (!plan) return false;
  const c = completionOf(
    plan.shards.map((s) => s.id),
    await listMarkers(deps, buildId),
  );
  if (!c.complete) return false;
  await deps.queues.send(deps.settings.queues.fanin, { kind: 'fanin', buildId });
  return true;
}

/**
 * Re-queues what an interrupted build needs: its plan when it has none, its fan-in
 * when every batch finished but nothing published. Queued batches resume by
 * themselves (their messages reappear when the visibility timeout lapses).
 */
export async function resumeBuild(
  deps: Deps,
  buildId: string,
): Promise<'done' | 'plan' | 'fanin' | 'running'> {
  if (await getOutcome(deps, buildId)) return 'done';
  if (!(await getPlan(deps, buildId))) {
    await deps.queues.send(deps.settings.queues.plan, { kind: 'plan', buildId });
    return 'plan';
  }
  return (await checkCompletion(deps, buildId)) ? 'fanin' : 'running';
}

/** The status document of a build, or null for an unknown id. */
export async function readStatus(deps: Deps, buildId: string): Promise<BuildStatus | null> {
  const spec = await getSpec(deps, buildId);
  if (!spec) return null;
  const [plan, outcome, markers] = await Promise.all([
    getPlan(deps, buildId),
    getOutcome(deps, buildId),
    readMarkers(deps, buildId),
  ]);
  return reduceStatus({ spec, plan, outcome, ...markers });
}
