/**
 * The fan-in's wave step for a wave-judged build (shared/build-waves.ts): read the
 * planner items of the scan round and the verdicts of the waves so far, replay the
 * planner, and either queue the next wave's batches or hand the selected rows to the
 * balance. Runs under the fan-in's claim lease; every write is a deterministic
 * overwrite or create-only, so a redelivered fan-in decides the same thing.
 */
import type { InvocationContext } from '@azure/functions';
import { annotateSamples } from '../../shared/judge/annotate';
import {
  buildPaths,
  completionOf,
  type BatchFailure,
  type BatchSummary,
  type BuildSpec,
} from '../../shared/build/spec';
import {
  collectVerdicts,
  idsByShard,
  itemLine,
  parseItemLine,
  type WavePlan,
} from '../../shared/build/waves';
import { parseBatchRows } from '../../shared/build/batch';
import type { AnnotatedRow, Label } from '../../shared/contracts/rows';
import { resumeWaves, type WaveItem, type WavePlanner } from '../../shared/waves/planner';
import { waveItems } from '../../shared/waves/judge';
import { batchMarked, errorText, getWavePlan, latestWave, pool, readMarkers } from './build-ops';
import type { Deps } from './deps';
import { readShard, readWaveIds, waveSamples } from '../judge-batch';

export type WaveDecision =
  /** The latest wave still has batches running: nothing to decide yet. */
  | { kind: 'wait'; wave: number; pending: number }
  /** The next wave's batches are queued. */
  | { kind: 'queued'; wave: number; samples: number; batches: number }
  /** Judging is over: balance these rows. */
  | {
      kind: 'done';
      planner: WavePlanner;
      /** Every labelled row the waves returned. */
      judged: AnnotatedRow[];
      /** The rows the planner selects for the balance. */
      offered: AnnotatedRow[];
      summaries: BatchSummary[];
      failures: BatchFailure[];
      /** Wave batches whose results were missing or corrupt and were judged again. */
      rejudged: { wave: number; shardId: string; cause: string }[];
    }
  | { kind: 'fail'; reason: string };

const jsonl = (items: readonly unknown[]) => items.map((x) => JSON.stringify(x) + '\n').join('');

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
      await deps.store.put(p.items(sid), items.map((it) => itemLine(it) + '\n').join(''));
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

/** Judges a wave batch again and rewrites its results (the verdict cache makes it cheap). */
async function rejudgeWave(
  deps: Deps,
  spec: BuildSpec,
  wave: number,
  shardId: string,
  ids: readonly string[],
): Promise<AnnotatedRow[]> {
  const p = buildPaths(spec.id);
  const prepared = await readShard(deps, spec, shardId, ids);
  if (!prepared) throw new Error(`shard blob ${p.shard(shardId)} is missing`);
  const chosen = waveSamples(prepared, ids);
  const judged = await annotateSamples(chosen.samples, deps.judgeFor(spec), {
    batchSize: spec.judge.batchSize,
  });
  const paths = p.batch(shardId, wave);
  await deps.store.put(paths.rows, jsonl(judged.rows));
  await deps.store.put(paths.unlabeled, jsonl([...judged.unlabeled, ...chosen.missing]));
  return judged.rows;
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

/**
 * Where a wave-judged build stands once its scan round is complete: waiting on a
 * wave, the next wave queued, or done with the rows to balance.
 */
export async function advanceWaves(
  deps: Deps,
  spec: BuildSpec,
  scanDoneIds: readonly string[],
  context: InvocationContext,
): Promise<WaveDecision> {
  const settings = spec.waves!;
  const p = buildPaths(spec.id);
  const latest = await latestWave(deps, spec.id);
  const plans: WavePlan[] = [];
  for (let w = 1; w <= latest; w++) {
    const plan = await getWavePlan(deps, spec.id, w);
    if (!plan) return { kind: 'fail', reason: `wave ${w} has no plan although wave ${latest} has` };
    plans.push(plan);
  }
  const markers = await readMarkers(deps, spec.id, 'waves');
  const completion = (plan: WavePlan) =>
    completionOf(
      plan.shards.map((s) => s.id),
      [
        ...markers.summaries
          .filter((s) => s.wave === plan.wave)
          .map((s) => ({ shardId: s.shardId, kind: 'done' as const })),
        ...markers.failures
          .filter((f) => f.wave === plan.wave)
          .map((f) => ({ shardId: f.shardId, kind: 'failed' as const })),
      ],
    );
  const last = plans[plans.length - 1];
  if (last) {
    const c = completion(last);
    if (!c.complete) {
      // A fan-in that stopped between planning a wave and queuing it left no messages.
      if (!(await deps.store.exists(p.waveQueued(last.wave)))) {
        const sent = await queueWave(deps, last);
        context.log(`fan-in: build ${spec.id} wave ${last.wave}: re-queued ${sent} batch(es)`);
      }
      return { kind: 'wait', wave: last.wave, pending: c.pending };
    }
  }

  const { items, shardOf } = await readItems(deps, spec, scanDoneIds, context);

  // Verdicts of every wave so far: labelled rows from the done batches; every id a
  // wave sent that has no label (unlabeled, failed batch) counts as judged, unlabeled.
  const judged: AnnotatedRow[] = [];
  const rejudged: { wave: number; shardId: string; cause: string }[] = [];
  const waves: { sent: string[]; labelled: { id: string; label: Label }[] }[] = [];
  const requests = new Map<number, number>();
  for (const plan of plans) {
    const c = completion(plan);
    const sent: string[] = [];
    const labelled: { id: string; label: Label }[] = [];
    let failure: string | null = null;
    await pool(plan.shards, 8, async (s) => {
      const ids = await readWaveIds(deps, spec.id, plan.wave, s.id);
      if (ids === null) {
        failure = `wave ${plan.wave}: the ids of ${s.id} are missing or unreadable`;
        return;
      }
      sent.push(...ids);
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
          rows = await rejudgeWave(deps, spec, plan.wave, s.id, ids);
        } catch (err) {
          failure = `results of ${s.id} wave ${plan.wave} ${cause}, and judging them again failed: ${errorText(err)}`;
          return;
        }
        rejudged.push({ wave: plan.wave, shardId: s.id, cause });
      }
      for (const r of rows) {
        judged.push(r);
        labelled.push({ id: r.sampleId!, label: r.label });
      }
    });
    if (failure !== null) return { kind: 'fail', reason: failure };
    waves.push({ sent, labelled });
    let calls = 0;
    for (const s of markers.summaries) if (s.wave === plan.wave) calls += s.judgeCalls;
    requests.set(plan.wave, calls);
  }
  const verdicts = collectVerdicts(waves);
  const step = resumeWaves(
    items,
    spec.config,
    settings,
    (id) => verdicts.get(id),
    (w) => requests.get(w),
  );

  if (step.kind === 'judge') {
    if (step.wave !== latest + 1) {
      return {
        kind: 'fail',
        reason: `wave ${step.wave} has ${step.ids.length} sample(s) without a verdict after wave ${latest}`,
      };
    }
    const groups = idsByShard(step.ids, (id) => shardOf.get(id)!);
    await pool(groups, 8, (g) =>
      deps.store.put(p.waveIds(step.wave, g.shardId), JSON.stringify(g.ids)),
    );
    const plan: WavePlan = {
      buildId: spec.id,
      wave: step.wave,
      samples: step.ids.length,
      shards: groups.map((g) => ({ id: g.shardId, samples: g.ids.length })),
    };
    await deps.store.create(p.wavePlan(step.wave), JSON.stringify(plan, null, 2));
    deps.failpoint('fanin:wave-planned');
    await queueWave(deps, plan);
    context.log(
      `fan-in: build ${spec.id} wave ${step.wave}: ${step.ids.length} sample(s) in ${groups.length} batch(es)`,
    );
    return { kind: 'queued', wave: step.wave, samples: step.ids.length, batches: groups.length };
  }

  const rowById = new Map(judged.map((r) => [r.sampleId!, r]));
  const offered = step.planner.selection().map((s) => rowById.get(s.id)!);
  judged.sort((a, b) => (a.sampleId! < b.sampleId! ? -1 : a.sampleId! > b.sampleId! ? 1 : 0));
  return {
    kind: 'done',
    planner: step.planner,
    judged,
    offered,
    summaries: markers.summaries,
    failures: markers.failures,
    rejudged: rejudged.sort((a, b) => a.wave - b.wave || (a.shardId < b.shardId ? -1 : 1)),
  };
}
