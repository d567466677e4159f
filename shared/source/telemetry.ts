/**
 * Where telemetry turns come from: the {@link TelemetrySource} interface the plan step
 * and the shard workers use, the selection (which of the seed's two queries, over
 * which window, with which buckets and caps), shard plans, and the pure planning math
 * that keeps every Kusto result under its limits.
 *
 * Two implementations live in adapters/: KustoSource runs the KQL in queries/;
 * FileSource reads a JSONL export and applies the same selection (shared/source/selection.ts).
 */
import { z } from 'zod';
import type { TelemetryTurn } from '../contracts/rows';
import type { QuarantineRecord } from '../balance/balancer';
import { DEFAULT_BUCKETS } from '../contracts/config';
import { isIsoTimestamp } from '../contracts/rows';
import { PermanentError, TransientError } from '../errors';

export const SOURCE_KINDS = ['kusto', 'file'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** The seed's two queries, by the names of their files in queries/. */
export const QUERY_NAMES = [
  'sft_session_router_first_turns',
  'sft_stratified_by_turn_count',
] as const;
export type QueryName = (typeof QUERY_NAMES)[number];

/** Kusto's result limits (E_QUERY_RESULT_SET_TOO_LARGE past either). */
export const KUSTO_MAX_ROWS = 500_000;
export const KUSTO_MAX_BYTES = 64 * 1024 * 1024;

const isoInstant = z.string().refine(isIsoTimestamp, 'must be an ISO-8601 timestamp with a zone');

export const WindowSchema = z
  .object({
    /** Conversations whose first turn is at or after this instant... */
    start: isoInstant,
    /** ...and before this one. */
    end: isoInstant,
    /** Later turns are read up to `end` + this; a longer conversation counts as incomplete. */
    maxConversationSpanMs: z.number().int().min(0).default(86_400_000),
  })
  .refine((w) => Date.parse(w.start) < Date.parse(w.end), 'window start must be before its end');
export type Window = z.infer<typeof WindowSchema>;

export const CappedBucketSchema = z
  .object({
    name: z.string().min(1),
    min: z.number().int().min(1),
    max: z.number().int().min(1),
    /** Conversations taken from the bucket at most. */
    cap: z.number().int().min(0),
  })
  .refine((b) => b.min <= b.max, 'bucket min must not exceed max');
export type CappedBucket = z.infer<typeof CappedBucketSchema>;

/** The seed's buckets with ~25k conversations split evenly. */
export const DEFAULT_CAPPED_BUCKETS: CappedBucket[] = DEFAULT_BUCKETS.map((b, i) => ({
  ...b,
  cap: i === 0 ? 8_334 : 8_333,
}));

const noOverlap = (buckets: readonly CappedBucket[]) =>
  buckets.every((a, i) => buckets.every((b, j) => j <= i || a.max < b.min || b.max < a.min));

export const SelectionSchema = z.discriminatedUnion('query', [
  z.object({
    query: z.literal('sft_session_router_first_turns'),
    window: WindowSchema,
    /** 'all': every turn of the selected conversations (for consumers that assemble them). */
    turns: z.enum(['first', 'all']).default('first'),
  }),
  z.object({
    query: z.literal('sft_stratified_by_turn_count'),
    window: WindowSchema,
    buckets: z
      .array(CappedBucketSchema)
      .min(1)
      .default(DEFAULT_CAPPED_BUCKETS)
      .refine(noOverlap, 'buckets must not overlap')
      .refine(
        (bs) => new Set(bs.map((b) => b.name)).size === bs.length,
        'bucket names must be unique',
      ),
    /** Picks which conversations fill a capped bucket; same seed, same picks. */
    seed: z.union([z.string().min(1), z.number().int()]).default('42'),
  }),
]);
export type Selection = z.infer<typeof SelectionSchema>;
export type SelectionInput = z.input<typeof SelectionSchema>;

/** The last conversation a capped bucket takes, in (sampleKey, conversationId) order. */
export const ThresholdSchema = z.object({
  key: z.number().int().min(0),
  conversationId: z.string(),
});
export type Threshold = z.infer<typeof ThresholdSchema>;

export const ShardLimitsSchema = z.object({
  maxRows: z.number().int().positive().default(KUSTO_MAX_ROWS),
  maxBytes: z.number().int().positive().default(KUSTO_MAX_BYTES),
  /** Plan each shard to at most this share of both limits ("well under"). */
  headroom: z.number().gt(0).max(1).default(0.5),
  maxShards: z.number().int().positive().default(4_096),
});
export type ShardLimits = z.infer<typeof ShardLimitsSchema>;

export const ShardCountSchema = z.object({
  index: z.number().int().min(0),
  rows: z.number().int().min(0),
  bytes: z.number().min(0),
});
export type ShardCount = z.infer<typeof ShardCountSchema>;

/** What one shard worker needs: small enough for a queue message. */
export const ShardSpecSchema = z.object({
  source: z.enum(SOURCE_KINDS),
  selection: SelectionSchema,
  shardCount: z.number().int().positive(),
  index: z.number().int().min(0),
  /** Per-bucket thresholds (stratified query only), so caps hold across shards. */
  thresholds: z.record(z.string(), ThresholdSchema.nullable()).optional(),
  /** Rows the plan counted for this shard; a read that returns fewer is an error. */
  expectedRows: z.number().int().min(0).optional(),
});
export type ShardSpec = z.infer<typeof ShardSpecSchema>;

export const ShardPlanSchema = z.object({
  source: z.enum(SOURCE_KINDS),
  selection: SelectionSchema,
  shardCount: z.number().int().positive(),
  thresholds: z.record(z.string(), ThresholdSchema.nullable()).optional(),
  shards: z.array(ShardCountSchema),
  totals: z.object({ rows: z.number().int().min(0), bytes: z.number().min(0) }),
  limits: ShardLimitsSchema,
  /** Count passes it took to find shardCount. */
  attempts: z.array(
    z.object({ shardCount: z.number().int(), maxRows: z.number(), maxBytes: z.number() }),
  ),
});
export type ShardPlan = z.infer<typeof ShardPlanSchema>;

/** A row set aside while reading a shard; `line` is the row (or file line) number. */
export interface SourceQuarantineRecord extends QuarantineRecord {
  shard: number;
  /** Where the row came from: "kusto:<database>" or the file name. */
  origin: string;
  /** The whole row as read, when it parsed (raw is cut at 500 characters). */
  row?: unknown;
}

export interface ShardSink {
  onTurn(turn: TelemetryTurn): void;
  onQuarantine(record: SourceQuarantineRecord): void;
}

export interface ShardReadStats {
  shard: number;
  /** Rows the selection returned for the shard. */
  rows: number;
  turns: number;
  quarantined: number;
  quarantinedByReason: Record<string, number>;
  /** Lines read with bytes that are not valid UTF-8 (kept, as U+FFFD); file sources count them in shard 0. */
  invalidUtf8Lines?: number;
}

/**
 * A source of telemetry turns. The plan step calls `planShards` once per run; each
 * shard worker calls `readShard` with one of `shardSpecs(plan)`.
 */
export interface TelemetrySource {
  readonly kind: SourceKind;
  planShards(selection: Selection, limits?: Partial<ShardLimits>): Promise<ShardPlan>;
  readShard(spec: ShardSpec, sink: ShardSink): Promise<ShardReadStats>;
}

/** The self-contained work item of each shard of a plan. */
export function shardSpecs(plan: ShardPlan): ShardSpec[] {
  return plan.shards.map((s) => {
    const spec: ShardSpec = {
      source: plan.source,
      selection: plan.selection,
      shardCount: plan.shardCount,
      index: s.index,
      expectedRows: s.rows,
    };
    if (plan.thresholds) spec.thresholds = plan.thresholds;
    return spec;
  });
}

/** A selection from loose input, defaults filled; throws a ZodError naming the bad field. */
export function parseSelection(input: SelectionInput): Selection {
  return SelectionSchema.parse(input);
}

/** A shard's result was (or would be) cut at Kusto's limits: never use it. Permanent. */
export class ShardTruncatedError extends PermanentError {
  constructor(
    readonly shard: number,
    readonly shardCount: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`shard ${shard} of ${shardCount}: ${message}`, options);
  }
}

/** No shard count within `maxShards` keeps every shard under the limits. Permanent. */
export class ShardPlanError extends PermanentError {}

/** The query was rejected (syntax, semantics, permissions). Permanent. */
export class SourceQueryError extends PermanentError {}

/** Throttled or unavailable after the retries: rethrow so the queue redelivers. */
export class SourceTransientError extends TransientError {}

/** Fills zero counts for shards the count query did not return, in index order. */
export function completeCounts(counts: readonly ShardCount[], shardCount: number): ShardCount[] {
  const out: ShardCount[] = Array.from({ length: shardCount }, (_, index) => ({
    index,
    rows: 0,
    bytes: 0,
  }));
  for (const c of counts) {
    if (c.index < 0 || c.index >= shardCount)
      throw new ShardPlanError(
        `count query returned shard ${c.index} outside 0..${shardCount - 1}`,
      );
    out[c.index] = {
      index: c.index,
      rows: out[c.index]!.rows + c.rows,
      bytes: out[c.index]!.bytes + c.bytes,
    };
  }
  return out;
}

/**
 * The shard count to try next, or null when every shard of `counts` already fits:
 * scales by the worst overshoot (hash shards are near even) plus a quarter, at least
 * doubling, so a skewed split converges in a few passes.
 */
export function nextShardCount(
  counts: readonly ShardCount[],
  shardCount: number,
  limits: ShardLimits,
): number | null {
  const rowCap = limits.maxRows * limits.headroom;
  const byteCap = limits.maxBytes * limits.headroom;
  let over = 0;
  for (const c of counts) over = Math.max(over, c.rows / rowCap, c.bytes / byteCap);
  if (over <= 1) return null;
  return Math.max(shardCount * 2, Math.ceil(shardCount * over * 1.25));
}

/**
 * Counts per shard for growing shard counts until each shard fits, and returns the
 * plan. `countShards(n)` runs the selection's count query split n ways.
 */
export async function planShardCounts(
  source: SourceKind,
  selection: Selection,
  limitsInput: Partial<ShardLimits> | undefined,
  countShards: (shardCount: number) => Promise<ShardCount[]>,
  thresholds?: Record<string, Threshold | null>,
): Promise<ShardPlan> {
  const limits = ShardLimitsSchema.parse(limitsInput ?? {});
  const attempts: ShardPlan['attempts'] = [];
  let n = 1;
  for (;;) {
    const counts = completeCounts(await countShards(n), n);
    attempts.push({
      shardCount: n,
      maxRows: Math.max(...counts.map((c) => c.rows)),
      maxBytes: Math.max(...counts.map((c) => c.bytes)),
    });
    const next = nextShardCount(counts, n, limits);
    if (next === null) {
      const plan: ShardPlan = {
        source,
        selection,
        shardCount: n,
        shards: counts,
        totals: {
          rows: counts.reduce((a, c) => a + c.rows, 0),
          bytes: counts.reduce((a, c) => a + c.bytes, 0),
        },
        limits,
        attempts,
      };
      if (thresholds) plan.thresholds = thresholds;
      return plan;
    }
    if (next > limits.maxShards || attempts.length >= 8)
      throw new ShardPlanError(
        `no shard count up to ${limits.maxShards} keeps every shard under ${limits.maxRows * limits.headroom} rows ` +
          `and ${limits.maxBytes * limits.headroom} bytes (tried ${attempts.map((a) => a.shardCount).join(', ')}; ` +
          `the largest shard of ${n} had ${attempts.at(-1)!.maxRows} rows, ${attempts.at(-1)!.maxBytes} bytes): ` +
          `one conversation may be too large, or narrow the window`,
      );
    n = next;
  }
}
