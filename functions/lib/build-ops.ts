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
  waveTag,
} from '../../shared/build/spec';
import { WavePlanSchema, type WavePlan } from '../../shared/build/waves';
import type { Deps } from './deps';

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

/**
 * Marker names of a build: (shardId, done|failed, wave). Round 0 by default (every
 * batch of a build judging all samples, or the scan round of a wave-judged one); a
 * wave number for that wave; 'waves' for every wave.
 */
export async function listMarkers(deps: Deps, buildId: string, round: number | 'waves' = 0) {
  const p = buildPaths(buildId);
  const prefix =
    typeof round === 'number' && round > 0 ? `${p.markers}${waveTag(round)}/` : p.markers;
  const names = await deps.store.list(prefix);
  return names
    .map(parseMarkerName)
    .filter((m) => m !== null)
    .filter((m) => (round === 'waves' ? m.wave > 0 : m.wave === round));
}

export const getWavePlan = (deps: Deps, buildId: string, wave: number): Promise<WavePlan | null> =>
  deps.store.getJson(buildPaths(buildId).wavePlan(wave), WavePlanSchema);

/** The waves a build has planned so far (1..N; 0 when none). */
export async function latestWave(deps: Deps, buildId: string): Promise<number> {
  const names = await deps.store.list(buildPaths(buildId).wavePlans);
  let latest = 0;
  for (const n of names) {
    const m = /\/w(\d{3})\.json$/.exec(n);
    if (m) latest = Math.max(latest, Number(m[1]));
  }
  return latest;
}

/** The shard ids a round plans: the plan's shards for round 0, the wave plan's for a wave. */
async function plannedShards(deps: Deps, buildId: string, round: number): Promise<string[] | null> {
  if (round === 0) return (await getPlan(deps, buildId))?.shards.map((s) => s.id) ?? null;
  return (await getWavePlan(deps, buildId, round))?.shards.map((s) => s.id) ?? null;
}

async function pool<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
export { pool };

/** Reads the marker bodies of a round (see {@link listMarkers}): status and fan-in need the counts. */
export async function readMarkers(
  deps: Deps,
  buildId: string,
  round: number | 'waves' = 0,
): Promise<{ summaries: BatchSummary[]; failures: BatchFailure[] }> {
  const p = buildPaths(buildId);
  const markers = await listMarkers(deps, buildId, round);
  const summaries: BatchSummary[] = [];
  const failures: BatchFailure[] = [];
  await pool(markers, 16, async (m) => {
    const paths = p.batch(m.shardId, m.wave);
    if (m.kind === 'done') {
      const s = await deps.store.getJson(paths.done, BatchSummarySchema);
      if (s) summaries.push(s);
    } else {
      const f = await deps.store.getJson(paths.failed, BatchFailureSchema);
      if (f) failures.push(f);
    }
  });
  const order = (
    a: { shardId: string; wave?: number | undefined },
    b: { shardId: string; wave?: number | undefined },
  ) => (a.wave ?? 0) - (b.wave ?? 0) || (a.shardId < b.shardId ? -1 : 1);
  return { summaries: summaries.sort(order), failures: failures.sort(order) };
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
 * Queues the fan-in when every planned batch of a round is done or failed. Runs after
 * each batch commits (and again on a redelivery), so the last one to finish sees it.
 */
export async function checkCompletion(deps: Deps, buildId: string, round = 0): Promise<boolean> {
  const planned = await plannedShards(deps, buildId, round);
  if (!planned) return false;
  const c = completionOf(planned, await listMarkers(deps, buildId, round), round);
  if (!c.complete) return false;
  await deps.queues.send(deps.settings.queues.fanin, {
    kind: 'fanin',
    buildId,
    ...(round > 0 ? { wave: round } : {}),
  });
  return true;
}

/** True when a batch of a round has its marker (done or failed). */
export async function batchMarked(
  deps: Deps,
  buildId: string,
  shardId: string,
  round = 0,
): Promise<boolean> {
  const paths = buildPaths(buildId).batch(shardId, round);
  return (await deps.store.exists(paths.done)) || (await deps.store.exists(paths.failed));
}

/**
 * A redelivered batch message whose batch already has its marker: true, after running
 * the completion check again (the earlier delivery may have stopped before it).
 */
export async function settledBatch(
  deps: Deps,
  buildId: string,
  shardId: string,
  round = 0,
): Promise<boolean> {
  if (!(await batchMarked(deps, buildId, shardId, round))) return false;
  await checkCompletion(deps, buildId, round);
  return true;
}

/**
 * Re-queues what an interrupted build needs: its plan when it has none, its fan-in
 * when every batch finished but nothing published (in a wave-judged build the fan-in
 * then finds which wave stands where). Queued batches resume by themselves (their
 * messages reappear when the visibility timeout lapses).
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
  const wave = await latestWave(deps, buildId);
  if (wave > 0) {
    if (await checkCompletion(deps, buildId, wave)) return 'fanin';
    // Planned but never queued (the fan-in stopped in between): the fan-in queues it.
    if (!(await deps.store.exists(buildPaths(buildId).waveQueued(wave)))) {
      await deps.queues.send(deps.settings.queues.fanin, { kind: 'fanin', buildId });
      return 'fanin';
    }
    return 'running';
  }
  return (await checkCompletion(deps, buildId)) ? 'fanin' : 'running';
}

/** The status document of a build, or null for an unknown id. */
export async function readStatus(deps: Deps, buildId: string): Promise<BuildStatus | null> {
  const spec = await getSpec(deps, buildId);
  if (!spec) return null;
  const [plan, outcome, markers, wave] = await Promise.all([
    getPlan(deps, buildId),
    getOutcome(deps, buildId),
    readMarkers(deps, buildId),
    spec.waves ? latestWave(deps, buildId) : Promise.resolve(0),
  ]);
  if (!spec.waves) return reduceStatus({ spec, plan, outcome, ...markers });
  const [wavePlan, waveMarkers] = await Promise.all([
    wave > 0 ? getWavePlan(deps, buildId, wave) : Promise.resolve(null),
    readMarkers(deps, buildId, 'waves'),
  ]);
  return reduceStatus({
    spec,
    plan,
    outcome,
    ...markers,
    waves: {
      wave,
      planned: wavePlan ? wavePlan.shards.map((s) => s.id) : [],
      ...waveMarkers,
    },
  });
}
