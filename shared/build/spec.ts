/**
 * The serverless build, pure parts: what a build is (its spec), the messages that
 * drive it, where its blobs live, how the source is split into shards, when it is
 * complete, whether it may publish, and what its status says. No I/O: functions/
 * and the local runner do the reading and writing.
 *
 * Fan-out / fan-in by hand, at-least-once: every blob name derives from the build id
 * and the shard id, batch results are committed by a create-only marker, completion
 * is counted from the markers (done + failed = planned), and one fan-in publishes.
 */
import { z } from 'zod';
import {
  ALLOCATIONS,
  BalanceConfigSchema,
  SHORTFALL_MODES,
  STRATIFIERS,
  type BalanceConfig,
} from '../contracts/config';
import { checkColumnMap, isIsoTimestamp, type QuarantineReason } from '../contracts/rows';
import { hash64 } from '../util/hash';
import { PIPELINES, type AssemblyStats } from '../samples/assemble';
import { SourceRefSchema } from '../source/ref';
import { OUTPUT_FORMATS, parseFormats, type OutputFormat } from '../dataset/formats';
import { checkShares, parseShares } from '../split/shares';
import {
  ChatMaxTokensSchema,
  LabelWordsSchema,
  LicenseSchema,
  SystemPromptSchema,
  type DatasetSettings,
} from '../contracts/dataset-settings';
import {
  MAX_WAVES,
  WaveSettingsSchema,
  type WaveSettings,
  type WaveSettingsInput,
} from '../waves/planner';

/** Build ids name blobs: lowercase letters, digits and hyphens. */
export const BuildIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{2,62}$/, 'must be 3-63 lowercase letters, digits or hyphens');

const isoTimestamp = z.string().refine(isIsoTimestamp, 'must be an ISO-8601 timestamp with a zone');

export const TimeWindowSchema = z
  .strictObject({ from: isoTimestamp.optional(), to: isoTimestamp.optional() })
  .refine((w) => !(w.from && w.to) || Date.parse(w.from) < Date.parse(w.to), {
    message: 'window.from must be before window.to',
    path: ['from'],
  });
export type TimeWindow = z.infer<typeof TimeWindowSchema>;

/** True when `timestamp` falls in [from, to); no window admits everything. */
export function inWindow(timestamp: string, window: TimeWindow | undefined): boolean {
  if (!window || (window.from === undefined && window.to === undefined)) return true;
  const t = Date.parse(timestamp);
  if (window.from !== undefined && t < Date.parse(window.from)) return false;
  if (window.to !== undefined && t >= Date.parse(window.to)) return false;
  return true;
}

const ratioInput = z.union([
  z.number().gt(0, 'ratio must be in (0, 1)').lt(1, 'ratio must be in (0, 1)'),
  z
    .string()
    .regex(/^\d+(\.\d+)?:\d+(\.\d+)?$/, 'ratio must be a number in (0, 1) or "A:B" such as "70:30"')
    .refine((s) => {
      const [a, b] = s.split(':').map(Number) as [number, number];
      return a > 0 && b > 0;
    }, 'ratio must be in (0, 1): both sides of "A:B" above zero'),
]);

/**
 * The body of POST /api/builds: overrides of the configured defaults. Strict, so a
 * misspelt field is named rather than ignored. Only blob sources: a caller may not
 * point the service at its own file system.
 */
export const BuildRequestSchema = z.strictObject({
  pipeline: z.enum(PIPELINES).optional(),
  total: z.number().int().positive().max(10_000_000).optional(),
  ratio: ratioInput.optional(),
  strategies: z.array(z.enum(STRATIFIERS)).max(STRATIFIERS.length).optional(),
  allocation: z.enum(ALLOCATIONS).optional(),
  onShortfall: z.enum(SHORTFALL_MODES).optional(),
  seed: z.union([z.number().int(), z.string().min(1).max(128)]).optional(),
  validation: z.number().min(0).lt(1).optional(),
  /**
   * train / validation / test shares, e.g. [0.9, 0.05, 0.05] or "0.9,0.05,0.05"
   * (docs/dedup.md "Splits"); overrides `validation`.
   */
  split: z
    .union([z.string(), z.array(z.number())])
    .transform((v, ctx) => {
      try {
        const shares = typeof v === 'string' ? parseShares(v, 'split') : checkShares(v, 'split');
        if (shares[0] > 0) return shares;
        ctx.addIssue({ code: 'custom', message: 'the train share must be above 0' });
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^split: /, '') });
      }
      return z.NEVER;
    })
    .optional(),
  /** Near-duplicate removal in the selection (docs/dedup.md); `false` keeps near-duplicates. */
  nearDedup: z.boolean().optional(),
  /** Estimated Jaccard at or above which two user messages are near-duplicates, 0 < T ≤ 1. */
  dedupThreshold: z
    .number()
    .gt(0, 'a Jaccard similarity in (0, 1]')
    .lte(1, 'a Jaccard similarity in (0, 1]')
    .optional(),
  /** Output formats beside the JSONL record: chat, classifier, parquet (docs/formats.md). */
  formats: z.array(z.enum(OUTPUT_FORMATS)).max(OUTPUT_FORMATS.length).optional(),
  /** Complexity tier cut points [low, high] on the score in [0, 1] (docs/strata.md). */
  complexityThresholds: z
    .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
    .refine(([lo, hi]) => lo <= hi, 'the low threshold must not exceed the high one')
    .optional(),
  window: TimeWindowSchema.optional(),
  /**
   * Column mapping: contract field → the source's column, e.g.
   * `{ "userMessage": "prompt", "conversationId": "session_id" }` (unknown fields refused).
   */
  columns: z
    .record(z.string(), z.string().min(1).max(256))
    .superRefine((m, ctx) => {
      const problem = checkColumnMap(m);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  /**
   * The format of the source's blob parts when their names do not say (CSV and
   * Parquet exports, docs/input-formats.md); by extension otherwise.
   */
  inputFormat: z.enum(['jsonl', 'csv', 'parquet']).optional(),
  source: z
    .strictObject({
      kind: z.literal('blob'),
      path: z.string().min(1).max(1024),
      container: z.string().min(3).max(63).optional(),
    })
    .optional(),
  /**
   * Yield-aware judging (shared/waves/planner.ts): `true` with the configured settings, an
   * object to override them, `false` to judge every sample.
   */
  waves: z
    .union([
      z.boolean(),
      z.strictObject({
        judgeBudget: z.number().int().positive().optional(),
        /** The judge budget in currency (USD at the built-in prices): --judge-budget-usd, SFT_JUDGE_BUDGET_USD. */
        judgeBudgetUsd: z.number().positive().optional(),
        explore: z.number().min(0).max(1).optional(),
        maxWaves: z.number().int().min(1).max(MAX_WAVES).optional(),
      }),
    ])
    .optional(),
  /**
   * The router probe at the end of the build: `false` turns it off, `{ minAuc }` fails the
   * build below that text AUC (default: the settings, SFT_PROBE and SFT_PROBE_MIN_AUC).
   */
  probe: z.union([z.boolean(), z.strictObject({ minAuc: z.number().min(0).max(1) })]).optional(),
  // Dataset settings (docs/formats.md): over SFT_SYSTEM_PROMPT, SFT_LABEL_WORDS, SFT_CHAT_MAX_TOKENS, SFT_LICENSE.
  /** The chat format's system message (--system-prompt). */
  systemPrompt: SystemPromptSchema.optional(),
  /** The chat assistant's words for label 0 and label 1, e.g. ["reasoning", "fast"] (--label-words). */
  labelWords: LabelWordsSchema.optional(),
  /** Chat examples over this many tokens are left out (--chat-max-tokens). */
  chatMaxTokens: ChatMaxTokensSchema.optional(),
  /** The dataset card's license id (--license). */
  license: LicenseSchema.optional(),
});
export type BuildRequest = z.infer<typeof BuildRequestSchema>;

/** The router probe of a build; absent = on, advising (docs/probe.md). */
export const ProbeSpecSchema = z.object({
  enabled: z.boolean(),
  /** The build fails when the probe's text AUC is below this. */
  minAuc: z.number().min(0).max(1).optional(),
});

export const HistorySchema = z.object({
  historyTurns: z.number().int().min(0),
  historyTokenBudget: z.number().int().min(0),
});

/** build.json: everything a build needs, fixed when it starts (settings may change later). */
export const BuildSpecSchema = z.object({
  id: BuildIdSchema,
  createdAt: isoTimestamp,
  createdBy: z.enum(['http', 'timer', 'cli']),
  pipeline: z.enum(PIPELINES),
  history: HistorySchema,
  config: BalanceConfigSchema,
  judge: z.object({ name: z.string().min(1), batchSize: z.number().int().positive() }),
  source: SourceRefSchema,
  window: TimeWindowSchema.optional(),
  minJudgedShare: z.number().min(0).max(1),
  shardBytes: z.number().int().positive(),
  maxShards: z.number().int().positive(),
  /** Secrets and personal data replaced by placeholders at the source step (shared/samples/redact.ts). */
  redact: z.boolean().default(true),
  /**
   * Yield-aware judging: a scan round reads every shard without judging, then waves
   * of batches judge only what the balance needs (absent = judge every sample).
   */
  waves: WaveSettingsSchema.optional(),
  /** The router probe; absent = on, advising (older specs, and the default). */
  probe: ProbeSpecSchema.optional(),
});
export type BuildSpec = z.infer<typeof BuildSpecSchema>;

export interface BuildDefaults {
  pipeline: (typeof PIPELINES)[number];
  total: number;
  ratio: number;
  stratify?: (typeof STRATIFIERS)[number][];
  allocation: (typeof ALLOCATIONS)[number];
  onShortfall: (typeof SHORTFALL_MODES)[number];
  seed: number | string;
  validation: number;
  /** train / validation / test shares (SFT_SPLIT); overrides `validation`. */
  split?: readonly [number, number, number];
  /** Output formats (SFT_FORMATS); absent = the JSONL record alone. */
  formats?: OutputFormat[];
  /** Near-duplicate removal (SFT_NEAR_DEDUP); absent = on. */
  nearDedup?: boolean;
  /** Near-duplicate threshold (SFT_DEDUP_THRESHOLD); absent = 0.8. */
  dedupThreshold?: number;
  historyTurns: number;
  historyTokens: number;
  /** Complexity tier cut points (SFT_COMPLEXITY_THRESHOLDS); absent = the config's default. */
  complexityThresholds?: [number, number];
  /** Wave settings when builds judge in waves by default (SFT_WAVES); absent = judge all. */
  waves?: WaveSettingsInput;
  /** Dataset settings (SFT_SYSTEM_PROMPT, SFT_LABEL_WORDS, SFT_CHAT_MAX_TOKENS, SFT_LICENSE). */
  dataset?: DatasetSettings;
}

/** A build's dataset settings: each field of the request over the configured default. */
function datasetSettingsOf(r: BuildRequest, d: DatasetSettings | undefined): DatasetSettings {
  const out: DatasetSettings = {};
  for (const k of ['systemPrompt', 'labelWords', 'chatMaxTokens', 'license'] as const) {
    const v = r[k] ?? d?.[k];
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/** The wave settings of a build: the request's choice over the configured default. */
export function waveSettingsOf(
  request: BuildRequest['waves'],
  defaults: WaveSettingsInput | undefined,
): WaveSettings | undefined {
  if (request === false || (request === undefined && defaults === undefined)) return undefined;
  const input: WaveSettingsInput = { ...defaults };
  if (typeof request === 'object') {
    if (request.judgeBudget !== undefined) input.maxJudged = request.judgeBudget;
    if (request.judgeBudgetUsd !== undefined) input.maxCost = request.judgeBudgetUsd;
    if (request.explore !== undefined) input.explore = request.explore;
    if (request.maxWaves !== undefined) input.maxWaves = request.maxWaves;
  }
  return WaveSettingsSchema.parse(input);
}

/** A build's probe settings: the request over the settings; undefined for the default (on, advising). */
export function probeSpecOf(
  request: BuildRequest['probe'],
  settings: z.infer<typeof ProbeSpecSchema> | undefined,
): z.infer<typeof ProbeSpecSchema> | undefined {
  const p = { enabled: true, ...settings };
  if (request === false) p.enabled = false;
  else if (request === true) p.enabled = true;
  else if (request) {
    p.enabled = true;
    p.minAuc = request.minAuc;
  }
  if (p.enabled && p.minAuc === undefined) return undefined;
  return p.enabled ? { enabled: true, minAuc: p.minAuc } : { enabled: false };
}

/** Default strata of a pipeline, as the CLI has them. */
export const defaultStratify = (pipeline: (typeof PIPELINES)[number]) =>
  pipeline === 'session' ? (['turnBucket'] as const) : (['turnBucket', 'position'] as const);

/** A blob source with the request's `inputFormat` (other sources have no parts to name). */
function withFormat(
  source: BuildSpec['source'],
  format: BuildRequest['inputFormat'],
): BuildSpec['source'] {
  return format && source.kind === 'blob' ? { ...source, format } : source;
}

/** The spec of a new build: request overrides over the defaults. */
export function buildSpecOf(args: {
  id: string;
  createdAt: string;
  createdBy: BuildSpec['createdBy'];
  request: BuildRequest;
  defaults: BuildDefaults;
  source: BuildSpec['source'];
  judge: BuildSpec['judge'];
  minJudgedShare: number;
  shardBytes: number;
  maxShards: number;
  config?: BalanceConfig;
  /** Redaction at the source step; on unless turned off (SFT_REDACT=false). */
  redact?: boolean;
  /** Wave settings chosen by the caller (the CLI); otherwise from the request and defaults. */
  waves?: WaveSettingsInput;
  /** The probe settings (SFT_PROBE, SFT_PROBE_MIN_AUC); the request overrides them. */
  probe?: z.infer<typeof ProbeSpecSchema>;
}): BuildSpec {
  const { request: r, defaults: d } = args;
  const pipeline = r.pipeline ?? d.pipeline;
  const split = r.split ?? d.split;
  const formats = r.formats ?? d.formats;
  const config =
    args.config ??
    BalanceConfigSchema.parse({
      total: r.total ?? d.total,
      ratio: r.ratio ?? d.ratio,
      stratify: r.strategies ?? d.stratify ?? [...defaultStratify(pipeline)],
      allocation: r.allocation ?? d.allocation,
      onShortfall: r.onShortfall ?? d.onShortfall,
      seed: r.seed ?? d.seed,
      validation: r.split ? r.split[1] : (r.validation ?? split?.[1] ?? d.validation),
      ...(split && (r.split || r.validation === undefined) && split[2] > 0
        ? { test: split[2] }
        : {}),
      ...(formats ? { formats: parseFormats(formats, r.formats ? 'formats' : 'SFT_FORMATS') } : {}),
      ...((r.nearDedup ?? d.nearDedup) !== undefined
        ? { nearDedup: r.nearDedup ?? d.nearDedup }
        : {}),
      ...((r.dedupThreshold ?? d.dedupThreshold) !== undefined
        ? { dedupThreshold: r.dedupThreshold ?? d.dedupThreshold }
        : {}),
      ...((r.complexityThresholds ?? d.complexityThresholds)
        ? { complexity: { tiers: r.complexityThresholds ?? d.complexityThresholds } }
        : {}),
      ...(r.columns ? { columns: r.columns } : {}),
      ...datasetSettingsOf(r, d.dataset),
    });
  const spec: BuildSpec = {
    id: args.id,
    createdAt: args.createdAt,
    createdBy: args.createdBy,
    pipeline,
    history: { historyTurns: d.historyTurns, historyTokenBudget: d.historyTokens },
    config,
    judge: args.judge,
    source: withFormat(r.source ?? args.source, r.inputFormat),
    minJudgedShare: args.minJudgedShare,
    shardBytes: args.shardBytes,
    maxShards: args.maxShards,
    redact: args.redact ?? true,
  };
  if (r.window) spec.window = r.window;
  const waves =
    args.waves !== undefined
      ? WaveSettingsSchema.parse(args.waves)
      : waveSettingsOf(r.waves, d.waves);
  if (waves) spec.waves = waves;
  const probe = probeSpecOf(r.probe, args.probe);
  if (probe) spec.probe = probe;
  return spec;
}

// ---- queue messages: pointers only, far below the 64 KiB limit ----

export const PlanMessageSchema = z.object({ kind: z.literal('plan'), buildId: BuildIdSchema });
const WaveNumberSchema = z.number().int().min(1).max(MAX_WAVES);
/** A batch: the shard to read and, in a wave-judged build, the wave (absent = the scan round). */
export const ShardMessageSchema = z.object({
  kind: z.literal('shard'),
  buildId: BuildIdSchema,
  shardId: z.string().regex(/^s\d{5}$/),
  wave: WaveNumberSchema.optional(),
});
/** Fan-in: `wave` names the round that completed (informative; the fan-in reads storage). */
export const FaninMessageSchema = z.object({
  kind: z.literal('fanin'),
  buildId: BuildIdSchema,
  wave: WaveNumberSchema.optional(),
});

// ---- blob layout ----

/** A wave's name in blob paths: w001, w002, ... (0 is the first, or scan, round). */
export const waveTag = (wave: number) => `w${String(wave).padStart(3, '0')}`;

/** Every blob of a build, by name; all derive from the build id and shard id. */
export function buildPaths(buildId: string) {
  const b = `builds/${buildId}`;
  const d = `datasets/${buildId}`;
  return {
    spec: `${b}/build.json`,
    plan: `${b}/plan.json`,
    outcome: `${b}/outcome.json`,
    faninClaim: `${b}/fanin.claim`,
    /** A shard copied from a source that cannot be referenced (a Kusto query's rows). */
    shard: (shardId: string) => `${b}/shards/${shardId}.jsonl`,
    /** A shard's byte ranges of the source when they do not fit in plan.json (numbers only). */
    shardIndex: (shardId: string) => `${b}/plan/${shardId}.json`,
    rows: (shardId: string) => `${b}/results/${shardId}.jsonl`,
    quarantine: (shardId: string) => `${b}/results/${shardId}.quarantine.jsonl`,
    unlabeled: (shardId: string) => `${b}/results/${shardId}.unlabeled.jsonl`,
    markers: `${b}/status/`,
    done: (shardId: string) => `${b}/status/${shardId}.done.json`,
    failed: (shardId: string) => `${b}/status/${shardId}.failed.json`,
    /** Wave-judged builds: the scan round's planner items of a shard. */
    items: (shardId: string) => `${b}/items/${shardId}.jsonl`,
    wavePlans: `${b}/waves/`,
    wavePlan: (wave: number) => `${b}/waves/${waveTag(wave)}.json`,
    /** Written once every batch message of the wave is queued. */
    waveQueued: (wave: number) => `${b}/waves/${waveTag(wave)}.queued`,
    waveIds: (wave: number, shardId: string) => `${b}/waves/${waveTag(wave)}/${shardId}.json`,
    /** The result and marker blobs of one batch: round 0 (all, or the scan) or a wave. */
    batch: (shardId: string, wave = 0) => {
      const w = wave === 0 ? '' : `${waveTag(wave)}/`;
      return {
        rows: `${b}/results/${w}${shardId}.jsonl`,
        quarantine: `${b}/results/${w}${shardId}.quarantine.jsonl`,
        unlabeled: `${b}/results/${w}${shardId}.unlabeled.jsonl`,
        done: `${b}/status/${w}${shardId}.done.json`,
        failed: `${b}/status/${w}${shardId}.failed.json`,
      };
    },
    datasetPrefix: `${d}/`,
    train: `${d}/train.jsonl`,
    validation: `${d}/validation.jsonl`,
    test: `${d}/test.jsonl`,
    datasetQuarantine: `${d}/quarantine.jsonl`,
    manifest: `${d}/manifest.json`,
  };
}
export const LATEST_PATH = 'datasets/latest.json';

export interface Marker {
  shardId: string;
  kind: 'done' | 'failed';
  /** 0: the first round (every sample, or the scan); N: wave N. */
  wave: number;
}

/** Parses a marker blob name back into (shardId, kind, wave). */
export function parseMarkerName(name: string): Marker | null {
  const m = /\/status\/(?:w(\d{3})\/)?(s\d{5})\.(done|failed)\.json$/.exec(name);
  if (!m) return null;
  return { shardId: m[2]!, kind: m[3] as 'done' | 'failed', wave: m[1] ? Number(m[1]) : 0 };
}

// ---- planning ----

export const shardIdOf = (index: number) => `s${String(index).padStart(5, '0')}`;

/**
 * The longest telemetry line a build reads whole (1 MiB): longer lines are cut to one
 * byte over this at the plan step and quarantined as `line_too_long` by the batch, so
 * one runaway line (a missing newline, a pasted log) costs memory of its limit only.
 */
export const MAX_LINE_BYTES = 1 << 20;

/**
 * How far past its target a shard may grow (when the source needs more than the
 * maximum number of shards) before a build refuses the source: a judge batch reads
 * its whole shard, so an unbounded shard is a memory fault, not a slow batch.
 */
export const MAX_SHARD_OVERSIZE = 4;

/** Null when a source of `bytes` fits the shard limits; otherwise why a build refuses it. */
export function sourceTooLarge(
  bytes: number,
  shardBytes: number,
  maxShards: number,
): string | null {
  const limit = shardBytes * maxShards * MAX_SHARD_OVERSIZE;
  if (bytes <= limit) return null;
  return (
    `the source is ${bytes} bytes, more than ${maxShards} shard(s) of at most ` +
    `${MAX_SHARD_OVERSIZE} × ${shardBytes} bytes hold (${limit}); raise SFT_MAX_SHARDS or SFT_SHARD_BYTES`
  );
}

/** Shards for a source of `bytes`: about `target` bytes each, at least one, at most `max`. */
export function shardCount(bytes: number, target: number, max: number): number {
  return Math.min(max, Math.max(1, Math.ceil(bytes / target)));
}

const SHARD_SEED = 0x5bd1e995;

/**
 * The shard of a conversation: a hash of its id, so every turn of a conversation
 * lands in the same shard whatever the order of the source.
 */
export function shardIndexOf(conversationId: string, shards: number): number {
  return hash64(conversationId, SHARD_SEED)[0] % shards;
}

const ID_PREFIX = '{"conversationId":"';

/**
 * The conversationId of a telemetry line, for routing only (the batch validates the
 * row). A fast path reads it where exports put it (the first key, no escapes, named
 * once); otherwise the line is parsed. Null when the line has no string id: such a
 * line goes to a shard by its line number and is quarantined there.
 */
export function conversationIdOf(line: string, column = 'conversationId'): string | null {
  if (column === 'conversationId' && line.startsWith(ID_PREFIX)) {
    const end = line.indexOf('"', ID_PREFIX.length);
    if (end > ID_PREFIX.length) {
      const id = line.slice(ID_PREFIX.length, end);
      if (!id.includes('\\') && line.indexOf('"conversationId"', end) === -1) return id;
    }
  }
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const id = o[column] ?? o.conversationId;
      if (typeof id === 'string' && id.length > 0) return id;
      // A row known by its own id is a one-turn conversation of that id (shapeRow).
      if (id === undefined) {
        const own = o.sampleId ?? o.id;
        if (typeof own === 'string' && own.length > 0) return own;
        if (typeof own === 'number' && Number.isFinite(own)) return String(own);
      }
    }
  } catch {
    /* not JSON: the batch quarantines it */
  }
  return null;
}

/** The shard a source line goes to (by conversation, or by line number when it has none). */
export function routeLine(
  line: string,
  lineNo: number,
  shards: number,
  /** The column holding the conversation id when a mapping renames it. */
  column?: string,
): number {
  const id = conversationIdOf(line, column);
  return id === null ? lineNo % shards : shardIndexOf(id, shards);
}

/**
 * A shard line keeps the source line number: `LINENO<TAB>RAW`; a line cut at
 * MAX_LINE_BYTES + 1 by the plan step also keeps its whole size: `LINENO:BYTES<TAB>RAW`.
 */
export const shardLine = (lineNo: number, raw: string) => `${lineNo}\t${raw}`;

export function parseShardLine(text: string): { lineNo: number; raw: string; bytes?: number } {
  const tab = text.indexOf('\t');
  const head = text.slice(0, tab);
  const colon = head.indexOf(':');
  if (colon === -1) return { lineNo: Number(head), raw: text.slice(tab + 1) };
  return {
    lineNo: Number(head.slice(0, colon)),
    raw: text.slice(tab + 1),
    bytes: Number(head.slice(colon + 1)),
  };
}

const count = z.number().int().min(0);

/**
 * A run of a shard: `[offset, bytes, firstLine]`, consecutive source lines (with their
 * line ends) of the shard's conversations, `bytes` from `offset`, numbered from
 * `firstLine`; a line over MAX_LINE_BYTES is a run of its own, `[offset, bytes, line,
 * wholeBytes]`, of its first MAX_LINE_BYTES + 1 bytes (the batch quarantines it).
 */
export const ShardRunSchema = z.union([
  z.tuple([count, count, count]),
  z.tuple([count, count, count, count]),
]);
export type ShardRun = z.infer<typeof ShardRunSchema>;

/** A shard's runs when they are not inline in plan.json (`builds/ID/plan/SHARD.json`). */
export const ShardIndexSchema = z.object({ runs: z.array(ShardRunSchema) });

/** What the plan saw of a referenced source; every ranged read checks it still holds. */
export const SourceIdentitySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('blob'), size: count, etag: z.string() }),
  z.object({ kind: z.literal('file'), size: count, mtimeMs: z.number() }),
]);

/**
 * The plan. With `source` (a blob or file source), shards are references: each is
 * runs of byte ranges of the source, inline (`runs`) or in its index blob, read by
 * the batch directly; nothing of the telemetry is copied. Without it (a Kusto query),
 * each shard is a blob of `LINENO<TAB>RAW` lines under `shards/`.
 */
export const PlanRecordSchema = z.object({
  buildId: BuildIdSchema,
  sourceBytes: count,
  rows: count,
  source: SourceIdentitySchema.optional(),
  shards: z.array(
    z.object({
      id: z.string(),
      rows: count,
      bytes: count,
      runs: z.array(ShardRunSchema).optional(),
    }),
  ),
});
export type PlanRecord = z.infer<typeof PlanRecordSchema>;

// ---- batch results ----

const countMap = z.record(z.string(), z.number().int().min(0));

/** The done marker of a batch: what it read, set aside and judged. */
export const BatchSummarySchema = z.object({
  buildId: BuildIdSchema,
  shardId: z.string(),
  rows: z.number().int().min(0),
  turns: z.number().int().min(0),
  outsideWindow: z.number().int().min(0),
  quarantined: z.number().int().min(0),
  quarantineByReason: countMap,
  assembly: z.object({
    conversations: z.number().int().min(0),
    complete: z.number().int().min(0),
    incomplete: z.number().int().min(0),
    duplicateTurns: z.number().int().min(0),
  }),
  samples: z.number().int().min(0),
  labelled: z.number().int().min(0),
  unlabeled: z.number().int().min(0),
  unlabeledByCause: countMap,
  judgeCalls: z.number().int().min(0),
  /** Tokens and estimated cost of this batch's judge calls (LLM judges; absent otherwise). */
  usage: z
    .object({
      promptTokens: z.number().int().min(0),
      cachedTokens: z.number().int().min(0),
      completionTokens: z.number().int().min(0),
      estimatedCost: z.number().min(0),
    })
    .optional(),
  /** Redactions by kind at the source step (absent in markers written before redaction). */
  redactions: countMap.optional(),
  /**
   * The wave of a wave batch: it reads no new telemetry (its row counts are zero) and
   * `samples` are the ones it was sent to judge. Absent in the first round.
   */
  wave: WaveNumberSchema.optional(),
  /** Delivery that did the work: informative only, never part of the dataset. */
  attempt: z.number().int().min(1),
});
export type BatchSummary = z.infer<typeof BatchSummarySchema>;

/** The failed marker: a batch that exhausted its retries or could not be read. */
export const BatchFailureSchema = z.object({
  buildId: BuildIdSchema,
  shardId: z.string(),
  reason: z.string(),
  attempts: z.number().int().min(0),
  /** Samples the batch held and the dataset lost; null when the shard was unreadable. */
  samplesLost: z.number().int().min(0).nullable(),
  via: z.enum(['retries-exhausted', 'poison-queue', 'permanent']),
  wave: WaveNumberSchema.optional(),
});
export type BatchFailure = z.infer<typeof BatchFailureSchema>;

export interface Completion {
  planned: number;
  done: number;
  failed: number;
  pending: number;
  complete: boolean;
}

/**
 * The completion rule, the one place it is written: counts a round's batches from
 * their markers. Only the markers of `round` count (0: every batch of a build judging
 * all samples, or the scan round of a wave-judged one; N: wave N), and only for
 * planned shards. A shard with both markers (a duplicate delivery finished after
 * another gave up) counts as done: its results exist.
 */
export function completionOf(
  planned: readonly string[],
  markers: readonly { shardId: string; kind: 'done' | 'failed'; wave?: number | undefined }[],
  round = 0,
): Completion & { doneIds: string[]; failedIds: string[] } {
  const plannedSet = new Set(planned);
  const done = new Set<string>();
  const failed = new Set<string>();
  for (const m of markers) {
    if ((m.wave ?? 0) !== round || !plannedSet.has(m.shardId)) continue;
    (m.kind === 'done' ? done : failed).add(m.shardId);
  }
  for (const id of done) failed.delete(id);
  const pending = planned.length - done.size - failed.size;
  return {
    planned: planned.length,
    done: done.size,
    failed: failed.size,
    pending,
    complete: pending === 0,
    doneIds: [...done].sort(),
    failedIds: [...failed].sort(),
  };
}

/** The markers that marker bodies stand for: a summary is a done marker, a failure a failed one. */
export function markersOf(bodies: {
  summaries: readonly { shardId: string; wave?: number | undefined }[];
  failures: readonly { shardId: string; wave?: number | undefined }[];
}): Marker[] {
  return [
    ...bodies.summaries.map((s) => ({
      shardId: s.shardId,
      kind: 'done' as const,
      wave: s.wave ?? 0,
    })),
    ...bodies.failures.map((f) => ({
      shardId: f.shardId,
      kind: 'failed' as const,
      wave: f.wave ?? 0,
    })),
  ];
}

/** {@link completionOf} from marker bodies (what readMarkers returns) rather than names. */
export const roundCompletion = (
  planned: readonly string[],
  bodies: Parameters<typeof markersOf>[0],
  round = 0,
) => completionOf(planned, markersOf(bodies), round);

/** Sums of the batch summaries, in the manifest's terms. */
export function sumBatches(summaries: readonly BatchSummary[]) {
  const assembly: AssemblyStats = {
    conversations: 0,
    complete: 0,
    incomplete: 0,
    duplicateTurns: 0,
  };
  const quarantineByReason: Record<string, number> = {};
  const unlabeledByCause: Record<string, number> = {};
  const redactions: Record<string, number> = {};
  let rows = 0;
  let turns = 0;
  let outsideWindow = 0;
  let quarantined = 0;
  let samples = 0;
  let labelled = 0;
  let unlabeled = 0;
  let judgeCalls = 0;
  let usage: JudgeUsage | null = null;
  for (const s of summaries) {
    if (s.usage) usage = addUsage(usage ?? emptyUsage(), s.usage);
    rows += s.rows;
    turns += s.turns;
    outsideWindow += s.outsideWindow;
    quarantined += s.quarantined;
    samples += s.samples;
    labelled += s.labelled;
    unlabeled += s.unlabeled;
    judgeCalls += s.judgeCalls;
    assembly.conversations += s.assembly.conversations;
    assembly.complete += s.assembly.complete;
    assembly.incomplete += s.assembly.incomplete;
    assembly.duplicateTurns += s.assembly.duplicateTurns;
    for (const [k, v] of Object.entries(s.quarantineByReason))
      quarantineByReason[k] = (quarantineByReason[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.unlabeledByCause))
      unlabeledByCause[k] = (unlabeledByCause[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.redactions ?? {}))
      redactions[k] = (redactions[k] ?? 0) + v;
  }
  const sorted = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).sort());
  return {
    rows,
    turns,
    outsideWindow,
    quarantined,
    quarantineByReason: sorted(quarantineByReason) as Partial<Record<QuarantineReason, number>>,
    assembly,
    samples,
    labelled,
    unlabeled,
    unlabeledByCause: sorted(unlabeledByCause),
    judgeCalls,
    redactions: sorted(redactions),
    usage: usage ? roundUsage(usage) : null,
  };
}

/** Tokens and estimated cost (in the price table's currency) of judge calls. */
export interface JudgeUsage {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  estimatedCost: number;
}

export const emptyUsage = (): JudgeUsage => ({
  promptTokens: 0,
  cachedTokens: 0,
  completionTokens: 0,
  estimatedCost: 0,
});

export function addUsage(a: JudgeUsage, b: JudgeUsage): JudgeUsage {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    estimatedCost: a.estimatedCost + b.estimatedCost,
  };
}

/** Cost rounded once, to a millionth of the currency unit. */
export const roundUsage = (u: JudgeUsage): JudgeUsage => ({
  ...u,
  estimatedCost: Math.round(u.estimatedCost * 1e6) / 1e6,
});

export interface PublishDecision {
  publish: boolean;
  /** Labelled samples over all samples the build held (failed batches included). */
  judgedShare: number;
  samplesLost: number;
  /**
   * Failed batches whose sample count is unknown (their shard could not be read): any
   * such batch fails the build unless the minimum judged share is 0.
   */
  batchesWithUnknownLoss: number;
  reason?: string;
}

/**
 * Whether a complete build may publish: the judged share must reach the minimum.
 * Samples of failed batches and unlabeled samples count as not judged.
 */
export function decidePublish(
  summaries: readonly BatchSummary[],
  failures: readonly BatchFailure[],
  minJudgedShare: number,
): PublishDecision {
  let labelled = 0;
  let held = 0;
  let samplesLost = 0;
  let unknown = 0;
  for (const s of summaries) {
    labelled += s.labelled;
    held += s.samples;
  }
  for (const f of failures) {
    if (f.samplesLost === null) unknown++;
    else samplesLost += f.samplesLost;
  }
  held += samplesLost;
  const judgedShare = held === 0 ? 0 : labelled / held;
  const rounded = Math.round(judgedShare * 1e6) / 1e6;
  const base = { judgedShare: rounded, samplesLost, batchesWithUnknownLoss: unknown };
  if (labelled === 0) return { ...base, publish: false, reason: 'no sample was judged' };
  // A failed batch whose samples could not be counted may have held any number of them:
  // the share above is then an upper bound, and a bound proves nothing. Unknown is not 0.
  if (unknown > 0 && minJudgedShare > 0) {
    return {
      ...base,
      publish: false,
      reason:
        `${unknown} failed batch(es) held an unknown number of samples (their shard could not be ` +
        `read or counted): the judged share cannot be checked against the minimum ${minJudgedShare}`,
    };
  }
  if (judgedShare < minJudgedShare) {
    return {
      ...base,
      publish: false,
      reason:
        `judged share ${rounded} is below the minimum ${minJudgedShare}: ` +
        `${failures.length} batch(es) failed, ${samplesLost} sample(s) lost, ${held - labelled - samplesLost} unlabeled`,
    };
  }
  return { ...base, publish: true };
}

/** outcome.json: how a build ended (create-only: the first writer decides). */
export const OutcomeSchema = z.object({
  buildId: BuildIdSchema,
  state: z.enum(['succeeded', 'failed']),
  stage: z.enum(['plan', 'fanin']),
  reason: z.string().optional(),
  completedAt: isoTimestamp,
  judgedShare: z.number().optional(),
  samplesLost: z.number().int().optional(),
  selected: z.number().int().optional(),
});
export type Outcome = z.infer<typeof OutcomeSchema>;

export const LatestSchema = z.object({
  buildId: BuildIdSchema,
  completedAt: isoTimestamp,
  train: z.string(),
  manifest: z.string(),
});

// ---- status ----

export type BuildState = 'planning' | 'judging' | 'balancing' | 'succeeded' | 'failed';

export interface BuildStatus {
  id: string;
  state: BuildState;
  createdAt: string;
  createdBy: string;
  pipeline: string;
  progress: {
    planned: number | null;
    judged: number;
    failed: number;
    pending: number | null;
  };
  counts: {
    rows: number;
    turns: number;
    quarantined: number;
    samples: number;
    labelled: number;
    unlabeled: number;
    samplesLost: number;
  };
  errors: { shardId?: string; stage: string; reason: string }[];
  /**
   * A wave-judged build: the latest wave (0 while the scan round runs), its batches,
   * and the samples sent to the judge over all waves.
   */
  waves?: {
    wave: number;
    batches: { planned: number; done: number; failed: number; pending: number };
    judged: number;
  };
  /** Tokens and estimated cost of the judge so far (LLM judges), over all waves, and per wave. */
  cost?: JudgeUsage & { byWave?: (JudgeUsage & { wave: number })[] };
  outcome?: Outcome;
  outputs?: Record<string, string>;
}

/** The status of a build from what storage holds about it. */
export function reduceStatus(args: {
  spec: BuildSpec;
  plan: PlanRecord | null;
  summaries: readonly BatchSummary[];
  failures: readonly BatchFailure[];
  outcome: Outcome | null;
  /** Wave-judged builds: the latest wave, its planned shards, every wave's markers. */
  waves?: {
    wave: number;
    planned: readonly string[];
    summaries: readonly BatchSummary[];
    failures: readonly BatchFailure[];
  };
}): BuildStatus {
  const { spec, plan, summaries, failures, outcome, waves } = args;
  const planned = plan ? plan.shards.map((s) => s.id) : null;
  const c = planned ? roundCompletion(planned, { summaries, failures }) : null;
  const sums = sumBatches(summaries);
  const latest = waves ? roundCompletion(waves.planned, waves, waves.wave) : null;
  // A wave-judged build judges after its scan round: until its latest wave is complete.
  const judging = !c || !c.complete || (latest !== null && (waves!.wave === 0 || !latest.complete));
  let state: BuildState;
  if (outcome) state = outcome.state;
  else if (!c) state = 'planning';
  else state = judging ? 'judging' : 'balancing';
  const errors: BuildStatus['errors'] = [
    ...failures.filter((f) => !c || c.failedIds.includes(f.shardId)),
    ...(waves?.failures ?? []),
  ]
    .map((f) => ({
      shardId: f.shardId,
      stage: f.wave ? `judge wave ${f.wave}` : 'judge',
      reason: f.reason,
    }))
    .sort((a, b) =>
      a.shardId < b.shardId ? -1 : a.shardId > b.shardId ? 1 : a.stage < b.stage ? -1 : 1,
    );
  if (outcome?.state === 'failed' && outcome.reason)
    errors.push({ stage: outcome.stage, reason: outcome.reason });
  let samplesLost = 0;
  for (const f of failures) samplesLost += f.samplesLost ?? 0;
  for (const f of waves?.failures ?? []) samplesLost += f.samplesLost ?? 0;
  const waveSums = waves ? sumBatches(waves.summaries) : null;
  const status: BuildStatus = {
    id: spec.id,
    state,
    createdAt: spec.createdAt,
    createdBy: spec.createdBy,
    pipeline: spec.pipeline,
    progress: {
      planned: c ? c.planned : null,
      judged: c ? c.done : summaries.length,
      failed: c ? c.failed : failures.length,
      pending: c ? c.pending : null,
    },
    counts: {
      rows: sums.rows,
      turns: sums.turns,
      quarantined: sums.quarantined,
      samples: sums.samples,
      labelled: sums.labelled + (waveSums?.labelled ?? 0),
      unlabeled: sums.unlabeled + (waveSums?.unlabeled ?? 0),
      samplesLost,
    },
    errors,
  };
  if (waves && latest && waveSums) {
    status.waves = {
      wave: waves.wave,
      batches: {
        planned: latest.planned,
        done: latest.done,
        failed: latest.failed,
        pending: latest.pending,
      },
      judged: waveSums.samples + waves.failures.reduce((a, f) => a + (f.samplesLost ?? 0), 0),
    };
  }
  const total = [sums.usage, waveSums?.usage].filter(
    (u): u is JudgeUsage => u !== null && u !== undefined,
  );
  if (total.length > 0) {
    status.cost = roundUsage(total.reduce(addUsage, emptyUsage()));
    if (waves) status.cost.byWave = usageByWave(waves.summaries);
  }
  if (outcome) status.outcome = outcome;
  if (outcome) {
    const p = buildPaths(spec.id);
    status.outputs =
      outcome.state === 'succeeded'
        ? {
            train: p.train,
            manifest: p.manifest,
            quarantine: p.datasetQuarantine,
            ...(spec.config.validation > 0 ? { validation: p.validation } : {}),
            ...((spec.config.test ?? 0) > 0 ? { test: p.test } : {}),
          }
        : outcome.stage === 'fanin'
          ? { manifest: p.manifest }
          : {};
  }
  return status;
}

/** Judge usage per wave (wave 1, 2, ...) from wave batch summaries. */
export function usageByWave(summaries: readonly BatchSummary[]): (JudgeUsage & { wave: number })[] {
  const by = new Map<number, JudgeUsage>();
  for (const s of summaries)
    if (s.wave !== undefined && s.usage)
      by.set(s.wave, addUsage(by.get(s.wave) ?? emptyUsage(), s.usage));
  return [...by.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([wave, u]) => ({ wave, ...roundUsage(u) }));
}

/** A build id from a time and a random suffix: sortable, unique, blob-safe. */
export function newBuildId(now: Date, random: string): string {
  const t = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'z')
    .toLowerCase();
  return `b-${t}-${random
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(0, 8)}`;
}

/** The id of a scheduled build: one per schedule slot, so a repeated timer fires once. */
export function scheduledBuildId(slot: Date): string {
  const t = slot.toISOString().slice(0, 16).replace(/[-:]/g, '').toLowerCase();
  return `sched-${t}`;
}
