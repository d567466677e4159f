/**
 * Yield-aware judging in the serverless build, pure parts (the I/O is in
 * functions/wave-ops.ts). A wave-judged build runs in rounds:
 *
 * - the scan round: one batch per shard reads and checks its telemetry, builds the
 *   samples and writes each one's planner item (id, stratum, signal score, dedup
 *   group) instead of judging;
 * - waves: the fan-in replays the planner (shared/waves.ts `resumeWaves`) from the
 *   verdicts stored so far, writes the next wave's sample ids per shard and queues one
 *   batch per shard holding any; each batch judges only its listed samples;
 * - when the planner is done (quotas met, supply or budget exhausted, wave limit) the
 *   fan-in balances the rows the planner selects.
 *
 * The planner keeps no state between rounds: the same items and verdicts give the
 * same waves, so a redelivered or restarted fan-in decides the same thing.
 */
import { z } from 'zod';
import { BuildIdSchema } from './spec';
import type { Label } from '../contracts/rows';
import { MAX_WAVES, type WaveItem } from '../waves/planner';

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
