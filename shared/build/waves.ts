/**
 * Yield-aware judging in the serverless build, pure parts (the I/O is in
 * functions/lib/wave-ops.ts). A wave-judged build runs in rounds:
 *
 * - the scan round: one batch per shard reads and checks its telemetry, builds the
 *   samples and writes each one's planner item (id, stratum, signal score, dedup
 *   group) instead of judging;
 * - waves: the fan-in replays the planner (shared/waves/planner.ts `resumeWaves`) from the
 *   verdicts stored so far, writes the next wave's sample ids per shard and queues one
 *   batch per shard holding any; each batch judges only its listed samples;
 * - when the planner is done (quotas met, supply or budget exhausted, wave limit) the
 *   fan-in balances the rows the planner selects.
 *
 * The planner keeps no state between rounds: the same items and verdicts give the
 * same waves, so a redelivered or restarted fan-in decides the same thing.
 */
import { z } from 'zod';
import { BuildIdSchema, type BatchSummary } from './spec';
import type { BalanceConfig } from '../contracts/config';
import type { AnnotatedRow, Label } from '../contracts/rows';
import {
  MAX_WAVES,
  resumeWaves,
  type WaveItem,
  type WavePlanner,
  type WaveSettingsInput,
} from '../waves/planner';
import type { PreparedShard } from './batch';
import type { Unlabeled } from '../judge/annotate';

/** waves/wNNN.json: the batches of one wave (create-only: the first fan-in decides). */
export const WavePlanSchema = z.object({
  buildId: BuildIdSchema,
  wave: z.number().int().min(1).max(MAX_WAVES),
  /** Samples sent to the judge in this wave, over all its batches. */
  samples: z.number().int().min(0),
  shards: z.array(z.object({ id: z.string(), samples: z.number().int().min(1) })),
});
export type WavePlan = z.infer<typeof WavePlanSchema>;

/** waves/wNNN/SHARD.json: the sample ids a wave batch judges. */
export const WaveIdsSchema = z.array(z.string().min(1));

/** One planner item per line, compact: `[id, stratum, score]` or `[..., group]`. */
export function itemLine(item: WaveItem): string {
  return JSON.stringify(
    item.group === undefined
      ? [item.id, item.stratum, item.score]
      : [item.id, item.stratum, item.score, item.group],
  );
}

/** The items blob of a shard: one item line each. */
export const itemsText = (items: readonly WaveItem[]): string =>
  items.map((it) => itemLine(it) + '\n').join('');

/** Parses an item line; a string naming the problem when it is not one. */
export function parseItemLine(text: string): WaveItem | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (
    !Array.isArray(v) ||
    (v.length !== 3 && v.length !== 4) ||
    typeof v[0] !== 'string' ||
    typeof v[1] !== 'string' ||
    typeof v[2] !== 'number' ||
    !Number.isFinite(v[2]) ||
    (v.length === 4 && typeof v[3] !== 'string')
  )
    return 'not an item ([id, stratum, score, group?])';
  const item: WaveItem = { id: v[0], stratum: v[1], score: v[2] };
  if (v.length === 4) item.group = v[3] as string;
  return item;
}

/** The wave's ids grouped by the shard holding them: shards in order, ids sorted. */
export function idsByShard(
  ids: readonly string[],
  shardOf: (id: string) => string,
): { shardId: string; ids: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const id of ids) {
    const s = shardOf(id);
    const g = groups.get(s);
    if (g) g.push(id);
    else groups.set(s, [id]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([shardId, list]) => ({ shardId, ids: list.sort() }));
}

/**
 * Verdicts of the waves so far, for the planner's replay: a label, or null for a
 * sample sent to the judge that came back unlabeled, whose batch failed, or whose
 * result is missing (judged and not usable: never guessed, never judged again).
 */
export function collectVerdicts(
  waves: readonly {
    /** Every id the wave sent to the judge. */
    sent: readonly string[];
    /** The labels its batches returned. */
    labelled: readonly { id: string; label: Label }[];
  }[],
): Map<string, Label | null> {
  const verdicts = new Map<string, Label | null>();
  for (const w of waves) {
    for (const id of w.sent) verdicts.set(id, null);
    for (const r of w.labelled) if (verdicts.has(r.id)) verdicts.set(r.id, r.label);
  }
  return verdicts;
}

/**
 * What a batch judges: every sample of its shard, or in a wave only the listed ones.
 * Listed ids the shard does not hold (never expected) come back as unlabeled.
 */
export function waveSamples(prepared: PreparedShard, ids: readonly string[]) {
  const wanted = new Set(ids);
  const samples = prepared.samples.filter((s) => wanted.has(s.sampleId));
  const found = new Set(samples.map((s) => s.sampleId));
  const missing: Unlabeled[] = ids
    .filter((id) => !found.has(id))
    .map((sampleId) => ({
      sampleId,
      conversationId: '',
      turnIndex: -1,
      error: 'not-in-shard: the wave listed a sample its shard does not hold',
    }));
  return { samples, missing };
}

/** What the waves so far returned, per planned wave (wave 1 first). */
export interface WaveVerdicts {
  /** Every id the wave sent to the judge, and the labels its batches returned. */
  waves: { sent: string[]; labelled: { id: string; label: Label }[] }[];
  /** Every labelled row the waves returned. */
  judged: AnnotatedRow[];
}

/** The next step of a wave-judged build whose latest wave is complete. */
export type NextWave =
  /** Judge another wave: write its ids per shard and its plan, then queue its batches. */
  | { kind: 'judge'; plan: WavePlan; groups: { shardId: string; ids: string[] }[] }
  /** Judging is over: `offered` are the rows the planner selects; `judged` every labelled row, by id. */
  | { kind: 'done'; planner: WavePlanner; judged: AnnotatedRow[]; offered: AnnotatedRow[] }
  | { kind: 'fail'; reason: string };

/**
 * The next-wave decision: replays the planner from the scan round's items and the
 * verdicts of waves 1..`latest`, then either plans wave `latest + 1` (its ids grouped
 * by the shard holding them) or hands over the planner's selection. Deterministic: a
 * redelivered fan-in decides the same thing.
 */
export function decideNextWave(args: {
  buildId: string;
  config: BalanceConfig;
  settings: WaveSettingsInput;
  items: readonly WaveItem[];
  /** The shard of each item. */
  shardOf: ReadonlyMap<string, string>;
  /** Waves planned so far. */
  latest: number;
  verdicts: WaveVerdicts;
  /** The wave batches' summaries: judge requests and cost per wave. */
  summaries: readonly BatchSummary[];
}): NextWave {
  const { latest } = args;
  const requests = new Map<number, number>();
  const costs = new Map<number, number>();
  for (let w = 1; w <= latest; w++) {
    requests.set(w, 0);
    costs.set(w, 0);
  }
  for (const s of args.summaries) {
    if (s.wave === undefined || !requests.has(s.wave)) continue;
    requests.set(s.wave, requests.get(s.wave)! + s.judgeCalls);
    costs.set(s.wave, costs.get(s.wave)! + (s.usage?.estimatedCost ?? 0));
  }
  const verdicts = collectVerdicts(args.verdicts.waves);
  const step = resumeWaves(
    args.items,
    args.config,
    args.settings,
    (id) => verdicts.get(id),
    (w) => requests.get(w),
    (w) => costs.get(w),
  );
  if (step.kind === 'judge') {
    if (step.wave !== latest + 1) {
      return {
        kind: 'fail',
        reason: `wave ${step.wave} has ${step.ids.length} sample(s) without a verdict after wave ${latest}`,
      };
    }
    const groups = idsByShard(step.ids, (id) => args.shardOf.get(id)!);
    const plan: WavePlan = {
      buildId: args.buildId,
      wave: step.wave,
      samples: step.ids.length,
      shards: groups.map((g) => ({ id: g.shardId, samples: g.ids.length })),
    };
    return { kind: 'judge', plan, groups };
  }
  const judged = [...args.verdicts.judged];
  const rowById = new Map(judged.map((r) => [r.sampleId!, r]));
  const offered = step.planner.selection().map((s) => rowById.get(s.id)!);
  judged.sort((a, b) => (a.sampleId! < b.sampleId! ? -1 : a.sampleId! > b.sampleId! ? 1 : 0));
  return { kind: 'done', planner: step.planner, judged, offered };
}
