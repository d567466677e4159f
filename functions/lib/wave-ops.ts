/**
 * The fan-in's wave step for a wave-judged build (shared/build/waves.ts): read the
 * planner items of the scan round and the verdicts of the waves so far, replay the
 * planner, and either queue the next wave's batches or hand the selected rows to the
 * balance. Runs under the fan-in's claim lease; every write is a deterministic
 * overwrite or create-only, so a redelivered fan-in decides the same thing.
 */
import type { InvocationContext } from '@azure/functions';
import { buildPaths, roundCompletion, type BuildSpec } from '../../shared/build/spec';
import {
  decideNextWave,
  itemsText,
  parseItemLine,
  type NextWave,
  type WavePlan,
  type WaveVerdicts,
} from '../../shared/build/waves';
import type { WavesResults } from '../../shared/build/publish';
import { parseBatchRows } from '../../shared/build/batch';
import type { AnnotatedRow } from '../../shared/contracts/rows';
import type { WaveItem, WavePlanner } from '../../shared/waves/planner';
import { waveItems } from '../../shared/waves/judge';
import { batchMarked, errorText, getWavePlan, latestWave, pool, readMarkers } from './build-ops';
import type { Deps } from './deps';
import { rejudgeBatch } from './rejudge';
import { readShard, readWaveIds } from './shards';

export type WaveDecision =
  /** The latest wave still has batches running: nothing to decide yet. */
  | { kind: 'wait'; wave: number; pending: number }
  /** The next wave's batches are queued. */
  | { kind: 'queued'; wave: number; samples: number; batches: number }
  /** Judging is over: balance these rows. */
  | ({
      kind: 'done';
      planner: WavePlanner;
      /** Every labelled row the waves returned. */
      judged: AnnotatedRow[];
      /** The rows the planner selects for the balance. */
      offered: AnnotatedRow[];
    } & WavesResults)
  | { kind: 'fail'; reason: string };

/** The planner items of the scan round's done shards, and each item's shard. */
async function readItems(
  deps: Deps,
  spec: BuildSpec,
  shardIds: readonly string[],
  context: InvocationContext,
): Promise<{ items: WaveItem[]; shardOf: Map<string, string> }> {
  const p = buildPaths(spec.id);
  const perShard = new Map<string, WaveItem[]>();
  await pool(shardIds, 8, async (sid) => {
    const buf = await deps.store.get(p.items(sid));
    let items: WaveItem[] | null = null;
    if (buf !== null) {
      items = [];
      for (const line of buf.toString('utf8').split('\n')) {
        if (line.length === 0) continue;
        const it = parseItemLine(line);
        if (typeof it === 'string') {
          items = null;
          break;
        }
        items.push(it);
      }
    }
    if (items === null) {
      // Missing or corrupt: the shard is read again (no judging needed for items).
      context.warn(
        `fan-in: planner items of ${sid} are missing or corrupt; reading the shard again`,
      );
      const prepared = await readShard(deps, spec, sid);
      if (!prepared) throw new Error(`shard blob ${p.shard(sid)} is missing`);
      items = waveItems(prepared.samples, spec.config);
      await deps.store.put(p.items(sid), itemsText(items));
    }
    perShard.set(sid, items);
  });
  const all: WaveItem[] = [];
  const shardOf = new Map<string, string>();
  for (const sid of [...perShard.keys()].sort()) {
    for (const it of perShard.get(sid)!) {
      all.push(it);
      shardOf.set(it.id, sid);
    }
  }
  return { items: all, shardOf };
}

/** Queues the batches of a planned wave that have no marker, then marks the wave queued. */
async function queueWave(deps: Deps, plan: WavePlan): Promise<number> {
  const p = buildPaths(plan.buildId);
  let sent = 0;
  for (const s of plan.shards) {
    if (await batchMarked(deps, plan.buildId, s.id, plan.wave)) continue;
    await deps.queues.send(deps.settings.queues.shards, {
      kind: 'shard',
      buildId: plan.buildId,
      shardId: s.id,
      wave: plan.wave,
    });
    sent++;
  }
  await deps.store.put(p.waveQueued(plan.wave), JSON.stringify({ wave: plan.wave, sent }));
  return sent;
}

/** The plans of waves 1..latest; a string when one is missing. */
async function readWavePlans(deps: Deps, buildId: string): Promise<WavePlan[] | string> {
  const latest = await latestWave(deps, buildId);
  const plans: WavePlan[] = [];
  for (let w = 1; w <= latest; w++) {
    const plan = await getWavePlan(deps, buildId, w);
    if (!plan) return `wave ${w} has no plan although wave ${latest} has`;
    plans.push(plan);
  }
  return plans;
}

type WaveMarkers = Awaited<ReturnType<typeof readMarkers>>;

/**
 * What each wave sent and returned: labelled rows from the done batches (judged again
 * when missing or corrupt); every id a wave sent counts as judged. A string when a
 * wave's ids cannot be read or a batch cannot be judged again.
 */
async function readVerdicts(
  deps: Deps,
  spec: BuildSpec,
  plans: readonly WavePlan[],
  markers: WaveMarkers,
  context: InvocationContext,
): Promise<(WaveVerdicts & { rejudged: WavesResults['rejudged'] }) | string> {
  const p = buildPaths(spec.id);
  const out: WaveVerdicts & { rejudged: WavesResults['rejudged'] } = {
    waves: [],
    judged: [],
    rejudged: [],
  };
  for (const plan of plans) {
    const c = roundCompletion(
      plan.shards.map((s) => s.id),
      markers,
      plan.wave,
    );
    const wave: WaveVerdicts['waves'][number] = { sent: [], labelled: [] };
    let failure: string | null = null;
    await pool(plan.shards, 8, async (s) => {
      const ids = await readWaveIds(deps, spec.id, plan.wave, s.id);
      if (ids === null) {
        failure = `wave ${plan.wave}: the ids of ${s.id} are missing or unreadable`;
        return;
      }
      wave.sent.push(...ids);
      if (!c.doneIds.includes(s.id)) return;
      const buf = await deps.store.get(p.batch(s.id, plan.wave).rows);
      let rows =
        buf === null
          ? 'are missing although the batch is marked done'
          : parseBatchRows(buf.toString('utf8'));
      if (typeof rows === 'string') {
        const cause = rows;
        context.warn(`fan-in: results of ${s.id} wave ${plan.wave} ${cause}; judging them again`);
        try {
          rows = (await rejudgeBatch(deps, spec, s.id, plan.wave, ids)).rows;
        } catch (err) {
          failure = `results of ${s.id} wave ${plan.wave} ${cause}, and judging them again failed: ${errorText(err)}`;
          return;
        }
        out.rejudged.push({ wave: plan.wave, shardId: s.id, cause });
      }
      for (const r of rows) {
        out.judged.push(r);
        wave.labelled.push({ id: r.sampleId!, label: r.label });
      }
    });
    if (failure !== null) return failure;
    out.waves.push(wave);
  }
  out.rejudged.sort((a, b) => a.wave - b.wave || (a.shardId < b.shardId ? -1 : 1));
  return out;
}

/** Writes a new wave's ids per shard and its plan (create-only: the first fan-in decides), then queues it. */
async function startWave(
  deps: Deps,
  next: Extract<NextWave, { kind: 'judge' }>,
  context: InvocationContext,
): Promise<WaveDecision> {
  const { plan, groups } = next;
  const p = buildPaths(plan.buildId);
  await pool(groups, 8, (g) =>
    deps.store.put(p.waveIds(plan.wave, g.shardId), JSON.stringify(g.ids)),
  );
  await deps.store.create(p.wavePlan(plan.wave), JSON.stringify(plan, null, 2));
  deps.failpoint('fanin:wave-planned');
  await queueWave(deps, plan);
  context.log(
    `fan-in: build ${plan.buildId} wave ${plan.wave}: ${plan.samples} sample(s) in ${groups.length} batch(es)`,
  );
  return { kind: 'queued', wave: plan.wave, samples: plan.samples, batches: groups.length };
}

/**
 * Where a wave-judged build stands once its scan round is complete: waiting on a
 * wave, the next wave queued, or done with the rows to balance. The decision is the
 * core's (decideNextWave); this reads what it needs and writes what it decides.
 */
export async function advanceWaves(
  deps: Deps,
  spec: BuildSpec,
  scanDoneIds: readonly string[],
  context: InvocationContext,
): Promise<WaveDecision> {
  const plans = await readWavePlans(deps, spec.id);
  if (typeof plans === 'string') return { kind: 'fail', reason: plans };
  const markers = await readMarkers(deps, spec.id, 'waves');
  const last = plans[plans.length - 1];
  if (last) {
    const c = roundCompletion(
      last.shards.map((s) => s.id),
      markers,
      last.wave,
    );
    if (!c.complete) {
      // A fan-in that stopped between planning a wave and queuing it left no messages.
      if (!(await deps.store.exists(buildPaths(spec.id).waveQueued(last.wave)))) {
        const sent = await queueWave(deps, last);
        context.log(`fan-in: build ${spec.id} wave ${last.wave}: re-queued ${sent} batch(es)`);
      }
      return { kind: 'wait', wave: last.wave, pending: c.pending };
    }
  }
  const { items, shardOf } = await readItems(deps, spec, scanDoneIds, context);
  const verdicts = await readVerdicts(deps, spec, plans, markers, context);
  if (typeof verdicts === 'string') return { kind: 'fail', reason: verdicts };
  const next = decideNextWave({
    buildId: spec.id,
    config: spec.config,
    settings: spec.waves!,
    items,
    shardOf,
    latest: plans.length,
    verdicts,
    summaries: markers.summaries,
  });
  if (next.kind === 'fail') return next;
  if (next.kind === 'judge') return startWave(deps, next, context);
  return {
    ...next,
    summaries: markers.summaries,
    failures: markers.failures,
    rejudged: verdicts.rejudged,
  };
}
