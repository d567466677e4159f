/**
 * Plan (queue trigger on SFT_PLAN_QUEUE): splits the build's source into shards by a
 * hash of the conversation id (a conversation's turns stay together), writes each
 * shard as a blob of `LINENO<TAB>RAW` lines, records plan.json, then queues one
 * message per shard. A redelivery rewrites the same shard blobs and re-queues only
 * the shards without a marker.
 */
import type { InvocationContext } from '@azure/functions';
import {
  PlanMessageSchema,
  buildPaths,
  routeLine,
  shardCount,
  shardIdOf,
  shardLine,
  type BuildSpec,
  type PlanRecord,
} from '../shared/build';
import { SourceNotFoundError } from '../adapters/storage-source';
import {
  errorText,
  getOutcome,
  getPlan,
  getSpec,
  listMarkers,
  parseMessage,
  pool,
  recordOutcome,
} from './build-ops';
import type { Deps } from './deps';

/** Bytes buffered per shard before a block is staged. */
const FLUSH_BYTES = 1 << 20;
/** Blocks being staged at once. */
const STAGE_WIDTH = 8;

/** Streams the source into shard blobs; returns the plan (not yet written). */
export async function writeShards(deps: Deps, spec: BuildSpec): Promise<PlanRecord> {
  const source = deps.openSource(spec.source);
  const bytes = await source.size();
  const n = shardCount(bytes, spec.shardBytes, spec.maxShards);
  const p = buildPaths(spec.id);
  const ids = Array.from({ length: n }, (_, i) => shardIdOf(i));
  const writers = ids.map((id) => deps.store.blockWriter(p.shard(id)));
  const buffers: string[][] = ids.map(() => []);
  const buffered = new Array<number>(n).fill(0);
  const rows = new Array<number>(n).fill(0);
  const sizes = new Array<number>(n).fill(0);
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  const stage = async (k: number) => {
    const data = Buffer.from(buffers[k]!.join(''), 'utf8');
    buffers[k] = [];
    buffered[k] = 0;
    sizes[k]! += data.length;
    const job = writers[k]!.stage(data).catch((err: unknown) => {
      failure ??= err instanceof Error ? err : new Error(String(err));
    });
    inFlight.add(job);
    void job.finally(() => inFlight.delete(job));
    if (inFlight.size >= STAGE_WIDTH) await Promise.race(inFlight);
  };
  let total = 0;
  for await (const batch of source.lines()) {
    for (const { line, lineNo } of batch) {
      if (line.length === 0) continue;
      const k = routeLine(line, lineNo, n);
      const text = shardLine(lineNo, line) + '\n';
      buffers[k]!.push(text);
      buffered[k]! += text.length;
      rows[k]!++;
      total++;
      if (buffered[k]! >= FLUSH_BYTES) await stage(k);
    }
    if (failure !== undefined) throw failure;
  }
  for (let k = 0; k < n; k++) if (buffered[k]! > 0) await stage(k);
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  await pool(writers, 16, (w) => w.commit());
  return {
    buildId: spec.id,
    sourceBytes: bytes,
    rows: total,
    shards: ids.map((id, k) => ({ id, rows: rows[k]!, bytes: sizes[k]! })),
  };
}

export function createPlanBuild(deps: Deps) {
  return async function planBuildHandler(
    message: unknown,
    context: InvocationContext,
  ): Promise<void> {
    const msg = parseMessage(PlanMessageSchema, message, context);
    if (!msg) return;
    const spec = await getSpec(deps, msg.buildId);
    if (!spec) {
      context.error(`plan: no build ${msg.buildId}; dropping the message`);
      return;
    }
    if (await getOutcome(deps, spec.id)) return;
    const p = buildPaths(spec.id);
    let plan = await getPlan(deps, spec.id);
    if (!plan) {
      try {
        plan = await writeShards(deps, spec);
      } catch (err) {
        if (!(err instanceof SourceNotFoundError)) throw err;
        await recordOutcome(deps, {
          buildId: spec.id,
          state: 'failed',
          stage: 'plan',
          reason: errorText(err),
          completedAt: deps.now().toISOString(),
        });
        context.error(`plan: build ${spec.id} failed: ${errorText(err)}`);
        return;
      }
      if (plan.rows === 0) {
        await recordOutcome(deps, {
          buildId: spec.id,
          state: 'failed',
          stage: 'plan',
          reason: `the source (${spec.source.kind}:${spec.source.path}) has no rows`,
          completedAt: deps.now().toISOString(),
        });
        return;
      }
      await deps.store.put(p.plan, JSON.stringify(plan));
      deps.failpoint('plan:planned');
    }
    const marked = new Set((await listMarkers(deps, spec.id)).map((m) => m.shardId));
    const todo = plan.shards.filter((s) => !marked.has(s.id));
    await pool(todo, 16, (s) =>
      deps.queues.send(deps.settings.queues.shards, {
        kind: 'shard',
        buildId: spec.id,
        shardId: s.id,
      }),
    );
    context.log(
      `plan: build ${spec.id}: ${plan.rows} rows in ${plan.shards.length} shards, ${todo.length} queued`,
    );
  };
}
