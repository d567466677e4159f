/**
 * Settings of the serverless build, parsed once from the environment (app settings
 * in Azure, local.settings.json under Core Tools, process.env for the local runner).
 * Every setting has a default except storage, and README lists them all.
 */
import { z } from 'zod';
import { ALLOCATIONS, SHORTFALL_MODES, STRATIFIERS } from '../contracts/config';
import { PIPELINES } from '../samples/assemble';
import { parseSourceRef, SourceRefSchema, storageName, type SourceRef } from '../source/ref';
import type { BuildDefaults } from './spec';
import { parseFormats } from '../dataset/formats';
import { parseShares } from '../split/shares';
import {
  ChatMaxTokensSchema,
  LabelWordsSchema,
  LicenseSchema,
  SystemPromptSchema,
  type DatasetSettings,
} from '../contracts/dataset-settings';
import type { ProbeStepSettings } from '../probe/dataset';
import { PermanentError } from '../errors';

const intFrom = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().pipe(z.number().int().min(min).max(max));

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean),
);

const sourceRef = z
  .string()
  .min(1)
  .transform((s, ctx) => {
    const parsed = SourceRefSchema.safeParse(parseSourceRef(s));
    if (parsed.success) return parsed.data;
    ctx.addIssue({ code: 'custom', message: parsed.error.issues[0]?.message ?? 'bad source' });
    return z.NEVER;
  });

/**
 * A setting read by a core parser (one that names its flag or variable in its message):
 * its error becomes the setting's issue, the variable's name left to the settings error.
 */
const parsedBy = <T>(parse: (text: string) => T) =>
  z.string().transform((text, ctx): T => {
    try {
      return parse(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^SFT_\w+: /, '') });
      return z.NEVER;
    }
  });

const onOff = z
  .enum(['true', 'false', '1', '0', 'on', 'off'])
  .transform((v) => v === 'true' || v === '1' || v === 'on');

/** SFT_PROBE and SFT_PROBE_MIN_AUC alone: the in-process build reads them without storage. */
const ProbeEnvSchema = z.object({
  SFT_PROBE: onOff.default(true),
  SFT_PROBE_MIN_AUC: z.coerce.number().min(0).max(1).optional(),
});

const EnvSchema = z
  .object({
    /** A connection string (local, Azurite). In Azure use the identity settings below instead. */
    AzureWebJobsStorage: z.string().min(1).optional(),
    AzureWebJobsStorage__blobServiceUri: z.url().optional(),
    AzureWebJobsStorage__queueServiceUri: z.url().optional(),
    AzureWebJobsStorage__credential: z.enum(['managedidentity']).optional(),
    AzureWebJobsStorage__clientId: z.string().min(1).optional(),

    SFT_CONTAINER: storageName(63).default('sft-balancer'),
    SFT_PLAN_QUEUE: storageName(56).default('sft-plan'),
    SFT_SHARD_QUEUE: storageName(56).default('sft-shards'),
    SFT_FANIN_QUEUE: storageName(56).default('sft-fanin'),

    /** NCRONTAB (six fields, seconds first): Mondays 03:00 UTC by default. */
    SFT_SCHEDULE: z.string().min(1).default('0 0 3 * * 1'),
    SFT_SOURCE: sourceRef.default(parseSourceRef('blob:telemetry/telemetry.jsonl')),

    SFT_PIPELINE: z.enum(PIPELINES).default('session'),
    SFT_TOTAL: intFrom(1).default(100_000),
    SFT_RATIO: z.coerce.number().gt(0).lt(1).default(0.5),
    SFT_STRATIFY: list.pipe(z.array(z.enum(STRATIFIERS))).optional(),
    SFT_ALLOCATION: z.enum(ALLOCATIONS).default('equal'),
    SFT_ON_SHORTFALL: z.enum(SHORTFALL_MODES).default('shrink'),
    SFT_SEED: z.string().min(1).default('42'),
    SFT_VALIDATION: z.coerce.number().min(0).lt(1).default(0),
    SFT_SPLIT: parsedBy((text) => {
      const shares = parseShares(text, 'SFT_SPLIT');
      if (shares[0] > 0) return shares;
      throw new Error('the train share must be above 0');
    }).optional(),
    SFT_FORMATS: parsedBy((text) => parseFormats(text, 'SFT_FORMATS')).optional(),
    /** Near-duplicate removal in the selection (docs/dedup.md): on unless `false`. */
    SFT_NEAR_DEDUP: onOff.optional(),
    SFT_DEDUP_THRESHOLD: z.coerce
      .number()
      .gt(0, 'a Jaccard similarity in (0, 1]')
      .lte(1, 'a Jaccard similarity in (0, 1]')
      .optional(),
    /** Complexity tier cut points "LOW,HIGH" on the score in [0, 1]. */
    SFT_COMPLEXITY_THRESHOLDS: list
      .transform((a) => a.map(Number))
      .pipe(z.array(z.number().min(0).max(1)).length(2, 'expected LOW,HIGH'))
      .refine(([lo, hi]) => lo! <= hi!, 'LOW must not exceed HIGH')
      .transform((a) => a as [number, number])
      .optional(),
    SFT_HISTORY_TURNS: intFrom(0).default(3),
    SFT_HISTORY_TOKENS: intFrom(0).default(1_500),

    /** Target bytes of telemetry per shard (one queue message, one judge batch). */
    SFT_SHARD_BYTES: intFrom(1_024).default(4 * 1024 * 1024),
    SFT_MAX_SHARDS: intFrom(1, 10_000).default(1_000),

    /** Which judge labels samples; `signals` is the offline one. */
    SFT_JUDGE: z.string().min(1).default('signals'),
    SFT_JUDGE_BATCH_SIZE: intFrom(1, 1_000).default(20),
    /** Below this share of samples judged (failed batches and unlabeled count against it) a build fails. */
    SFT_MIN_JUDGED_SHARE: z.coerce.number().min(0).max(1).default(0.95),
    /** Must equal host.json extensions.queues.maxDequeueCount (a test checks). */
    SFT_MAX_DEQUEUE_COUNT: intFrom(1, 100).default(5),
    SFT_MAX_BODY_BYTES: intFrom(256, 1024 * 1024).default(16 * 1024),
    /** Redaction of secrets and personal data at the source step: on unless `false`. */
    SFT_REDACT: z
      .enum(['true', 'false', '1', '0', 'on', 'off'])
      .default('true')
      .transform((v) => v === 'true' || v === '1' || v === 'on'),
    /** The router probe at the end of every build (docs/probe.md): on unless `false`. */
    SFT_PROBE: onOff.default(true),
    /** Fail a build whose probe text AUC is below this; unset = the probe only advises. */
    SFT_PROBE_MIN_AUC: z.coerce.number().min(0).max(1).optional(),
    /** Lease on the fan-in claim blob; a crashed fan-in is taken over after it lapses (15-60). */
    SFT_FANIN_LEASE_SECONDS: intFrom(15, 60).default(15),

    /** Yield-aware judging (shared/waves/planner.ts) by default: off unless `true`. */
    SFT_WAVES: z
      .enum(['true', 'false', '1', '0', 'on', 'off'])
      .default('false')
      .transform((v) => v === 'true' || v === '1' || v === 'on'),
    /** Waves: samples judged at most per build (the judge budget); unset = no limit. */
    SFT_JUDGE_BUDGET: intFrom(1).optional(),
    /** Waves: the judge budget in currency (USD at the price table's prices); unset = no limit. */
    SFT_JUDGE_BUDGET_USD: z.coerce.number().positive().optional(),
    /** Waves: exploration floor in [0, 1] (0.3; 1 = no signal bias). */
    SFT_WAVE_EXPLORE: z.coerce.number().min(0).max(1).optional(),
    /** Waves: at most this many waves (20; at most 100). */
    SFT_MAX_WAVES: intFrom(1, 100).optional(),

    // Dataset settings (issue 16; shared/contracts/dataset-settings.ts): the chat format and the card.
    SFT_SYSTEM_PROMPT: SystemPromptSchema.optional(),
    SFT_LABEL_WORDS: z
      .string()
      .transform((s) => s.split(',').map((w) => w.trim()))
      .pipe(LabelWordsSchema)
      .optional(),
    SFT_CHAT_MAX_TOKENS: z.coerce.number().pipe(ChatMaxTokensSchema).optional(),
    SFT_LICENSE: LicenseSchema.optional(),
  })
  .refine(
    (e) =>
      e.AzureWebJobsStorage !== undefined ||
      (e.AzureWebJobsStorage__blobServiceUri !== undefined &&
        e.AzureWebJobsStorage__queueServiceUri !== undefined),
    {
      message:
        'set AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__blobServiceUri and __queueServiceUri (identity)',
      path: ['AzureWebJobsStorage'],
    },
  );

export type StorageSettings =
  | { kind: 'connectionString'; connectionString: string }
  | {
      kind: 'identity';
      blobServiceUri: string;
      queueServiceUri: string;
      /** A user-assigned identity's client id; absent means the default credential chain. */
      clientId?: string;
    };

export interface Settings {
  storage: StorageSettings;
  container: string;
  queues: { plan: string; shards: string; fanin: string };
  schedule: string;
  source: SourceRef;
  defaults: BuildDefaults;
  shardBytes: number;
  maxShards: number;
  judge: { name: string; batchSize: number };
  minJudgedShare: number;
  maxDequeueCount: number;
  maxBodyBytes: number;
  faninLeaseSeconds: number;
  /** Redact secrets and personal data before judging and writing (shared/samples/redact.ts). */
  redact: boolean;
  /** The router probe at the end of every build (SFT_PROBE, SFT_PROBE_MIN_AUC). */
  probe: ProbeStepSettings;
}

export class SettingsError extends PermanentError {}

/** Poison queue of a queue, as the Functions host names it. */
export const poisonQueueOf = (queue: string) => `${queue}-poison`;

const probeOf = (e: { SFT_PROBE: boolean; SFT_PROBE_MIN_AUC?: number | undefined }) => ({
  enabled: e.SFT_PROBE,
  ...(e.SFT_PROBE_MIN_AUC !== undefined ? { minAuc: e.SFT_PROBE_MIN_AUC } : {}),
});

/** The probe settings of the environment (SFT_PROBE, SFT_PROBE_MIN_AUC); a SettingsError names a bad one. */
export function probeSettingsOfEnv(
  env: Record<string, string | undefined> = process.env,
): ProbeStepSettings {
  const parsed = ProbeEnvSchema.safeParse(
    Object.fromEntries(
      Object.entries(env).filter(
        ([k, v]) => (k === 'SFT_PROBE' || k === 'SFT_PROBE_MIN_AUC') && v !== undefined && v !== '',
      ),
    ),
  );
  if (!parsed.success)
    throw new SettingsError(
      `invalid settings: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      { cause: parsed.error },
    );
  return probeOf(parsed.data);
}

/** SFT_SYSTEM_PROMPT, SFT_LABEL_WORDS, SFT_CHAT_MAX_TOKENS, SFT_LICENSE as build defaults. */
function datasetDefaultsOf(e: {
  SFT_SYSTEM_PROMPT?: string | undefined;
  SFT_LABEL_WORDS?: [string, string] | undefined;
  SFT_CHAT_MAX_TOKENS?: number | undefined;
  SFT_LICENSE?: string | undefined;
}): { dataset?: DatasetSettings } {
  const d: DatasetSettings = {
    ...(e.SFT_SYSTEM_PROMPT !== undefined ? { systemPrompt: e.SFT_SYSTEM_PROMPT } : {}),
    ...(e.SFT_LABEL_WORDS !== undefined ? { labelWords: e.SFT_LABEL_WORDS } : {}),
    ...(e.SFT_CHAT_MAX_TOKENS !== undefined ? { chatMaxTokens: e.SFT_CHAT_MAX_TOKENS } : {}),
    ...(e.SFT_LICENSE !== undefined ? { license: e.SFT_LICENSE } : {}),
  };
  return Object.keys(d).length > 0 ? { dataset: d } : {};
}

/** What every app-made build spec takes from the settings (the HTTP and the timer trigger alike). */
export function specDefaultsOf(s: Settings) {
  return {
    defaults: s.defaults,
    source: s.source,
    judge: s.judge,
    minJudgedShare: s.minJudgedShare,
    shardBytes: s.shardBytes,
    maxShards: s.maxShards,
    redact: s.redact,
    probe: s.probe,
  };
}

/** Reads and validates the settings; throws a SettingsError naming every bad variable. */
export function loadSettings(env: Record<string, string | undefined> = process.env): Settings {
  const parsed = EnvSchema.safeParse(
    Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== '')),
  );
  if (!parsed.success) {
    throw new SettingsError(
      `invalid settings: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      { cause: parsed.error },
    );
  }
  const e = parsed.data;
  const seed = /^-?\d+$/.test(e.SFT_SEED) ? Number(e.SFT_SEED) : e.SFT_SEED;
  const storage: StorageSettings =
    e.AzureWebJobsStorage !== undefined
      ? { kind: 'connectionString', connectionString: e.AzureWebJobsStorage }
      : {
          kind: 'identity',
          blobServiceUri: e.AzureWebJobsStorage__blobServiceUri!,
          queueServiceUri: e.AzureWebJobsStorage__queueServiceUri!,
          ...(e.AzureWebJobsStorage__clientId !== undefined
            ? { clientId: e.AzureWebJobsStorage__clientId }
            : {}),
        };
  return {
    storage,
    container: e.SFT_CONTAINER,
    queues: { plan: e.SFT_PLAN_QUEUE, shards: e.SFT_SHARD_QUEUE, fanin: e.SFT_FANIN_QUEUE },
    schedule: e.SFT_SCHEDULE,
    source: e.SFT_SOURCE,
    defaults: {
      pipeline: e.SFT_PIPELINE,
      total: e.SFT_TOTAL,
      ratio: e.SFT_RATIO,
      ...(e.SFT_STRATIFY !== undefined ? { stratify: e.SFT_STRATIFY } : {}),
      allocation: e.SFT_ALLOCATION,
      onShortfall: e.SFT_ON_SHORTFALL,
      seed,
      validation: e.SFT_VALIDATION,
      ...(e.SFT_SPLIT !== undefined ? { split: e.SFT_SPLIT } : {}),
      ...(e.SFT_FORMATS !== undefined ? { formats: e.SFT_FORMATS } : {}),
      ...(e.SFT_NEAR_DEDUP !== undefined ? { nearDedup: e.SFT_NEAR_DEDUP } : {}),
      ...(e.SFT_DEDUP_THRESHOLD !== undefined ? { dedupThreshold: e.SFT_DEDUP_THRESHOLD } : {}),
      ...(e.SFT_COMPLEXITY_THRESHOLDS !== undefined
        ? { complexityThresholds: e.SFT_COMPLEXITY_THRESHOLDS }
        : {}),
      historyTurns: e.SFT_HISTORY_TURNS,
      historyTokens: e.SFT_HISTORY_TOKENS,
      ...(e.SFT_WAVES
        ? {
            waves: {
              ...(e.SFT_JUDGE_BUDGET !== undefined ? { maxJudged: e.SFT_JUDGE_BUDGET } : {}),
              ...(e.SFT_JUDGE_BUDGET_USD !== undefined ? { maxCost: e.SFT_JUDGE_BUDGET_USD } : {}),
              ...(e.SFT_WAVE_EXPLORE !== undefined ? { explore: e.SFT_WAVE_EXPLORE } : {}),
              ...(e.SFT_MAX_WAVES !== undefined ? { maxWaves: e.SFT_MAX_WAVES } : {}),
            },
          }
        : {}),
      ...datasetDefaultsOf(e),
    },
    shardBytes: e.SFT_SHARD_BYTES,
    maxShards: e.SFT_MAX_SHARDS,
    judge: { name: e.SFT_JUDGE, batchSize: e.SFT_JUDGE_BATCH_SIZE },
    minJudgedShare: e.SFT_MIN_JUDGED_SHARE,
    maxDequeueCount: e.SFT_MAX_DEQUEUE_COUNT,
    maxBodyBytes: e.SFT_MAX_BODY_BYTES,
    redact: e.SFT_REDACT,
    faninLeaseSeconds: e.SFT_FANIN_LEASE_SECONDS,
    probe: probeOf(e),
  };
}

/** Every setting with its meaning, for README and `--help` (kept next to the schema). */
export const SETTINGS_DOC: Record<string, string> = {
  AzureWebJobsStorage: 'storage connection string (local/Azurite only; no keys in Azure)',
  AzureWebJobsStorage__blobServiceUri: 'blob endpoint, with a managed identity (Azure)',
  AzureWebJobsStorage__queueServiceUri: 'queue endpoint, with a managed identity (Azure)',
  AzureWebJobsStorage__credential: '`managedidentity` in Azure',
  AzureWebJobsStorage__clientId: 'client id of the user-assigned identity',
  SFT_CONTAINER: 'container for sources, build state and datasets (default sft-balancer)',
  SFT_PLAN_QUEUE: 'plan queue (default sft-plan)',
  SFT_SHARD_QUEUE: 'shard queue, one message per batch (default sft-shards)',
  SFT_FANIN_QUEUE: 'fan-in queue (default sft-fanin)',
  SFT_SCHEDULE: 'NCRONTAB of the scheduled build (default `0 0 3 * * 1`, Mondays 03:00 UTC)',
  SFT_SOURCE:
    'telemetry source of scheduled builds: `blob:PATH`, `file:PATH` or `kusto:QUERY` (queries/QUERY.kql, SFT_KUSTO_* settings)',
  SFT_PIPELINE: 'default pipeline: session | conversation',
  SFT_TOTAL: 'default dataset size (100000)',
  SFT_RATIO: 'default share of reasoning, in (0, 1) (0.5)',
  SFT_STRATIFY: 'default strata, comma list (turnBucket; conversation adds position)',
  SFT_ALLOCATION: 'default allocation: equal | proportional | inverse-frequency',
  SFT_ON_SHORTFALL: 'default shortfall mode: shrink | upsample | fail',
  SFT_SEED: 'default sampling seed (42)',
  SFT_VALIDATION: 'default validation share (0)',
  SFT_SPLIT: 'default train,validation,test shares, e.g. 0.9,0.05,0.05 (overrides SFT_VALIDATION)',
  SFT_FORMATS: 'more output formats: chat, classifier, parquet (comma list), with the dataset card',
  SFT_NEAR_DEDUP:
    'remove near-duplicate user messages from the selection (duplicates.jsonl): true (default) | false; body field nearDedup',
  SFT_DEDUP_THRESHOLD:
    'estimated Jaccard at or above which two user messages are near-duplicates, 0 < T <= 1 (0.8); body field dedupThreshold',
  SFT_COMPLEXITY_THRESHOLDS:
    'default complexity tier cut points LOW,HIGH on the score in [0, 1] (0.25,0.6; docs/strata.md)',
  SFT_HISTORY_TURNS: 'previous turns carried as history, conversation pipeline (3)',
  SFT_HISTORY_TOKENS: 'token budget of that history (1500)',
  SFT_SHARD_BYTES: 'target telemetry bytes per shard (4194304)',
  SFT_MAX_SHARDS: 'upper bound on shards per build (1000)',
  SFT_JUDGE:
    'judge: signals (default locally; an offline heuristic, not for training a production router) | openai (JUDGE_*, AZURE_OPENAI_*; the deployed default) | replay | panel (JUDGE_SETTINGS)',
  SFT_JUDGE_BATCH_SIZE: 'samples per judge call (20)',
  SFT_MIN_JUDGED_SHARE: 'minimum share of samples judged for a build to publish (0.95)',
  SFT_MAX_DEQUEUE_COUNT:
    'deliveries before a batch is recorded failed; = host.json maxDequeueCount (5)',
  SFT_MAX_BODY_BYTES: 'largest accepted POST /api/builds body (16384)',
  SFT_REDACT:
    'redact e-mails, phones, IPs, keys and tokens before judging and writing: true (default) | false',
  SFT_PROBE:
    'the router probe (probe.json, label-review.jsonl, manifest.probe) at the end of every build: true (default) | false; a request may override',
  SFT_PROBE_MIN_AUC:
    'fail a build whose probe text AUC is below this, in [0, 1] (unset: the probe only advises)',
  SFT_FANIN_LEASE_SECONDS: 'lease on the fan-in claim, 15-60 (15)',
  SFT_WAVES:
    'judge in waves only what the balance needs (yield-aware judging): false (default) | true; a request may override',
  SFT_JUDGE_BUDGET: 'with waves: samples judged at most per build (no limit)',
  SFT_JUDGE_BUDGET_USD:
    'with waves: the judge budget in USD at the price table (SFT_JUDGE_PRICES); judging stops once spent (no limit)',
  SFT_JUDGE_PRICES:
    'judge prices by model over the built-in table, JSON {"MODEL":{"inputPerMTok":..,"cachedInputPerMTok":..,"outputPerMTok":..}}',
  SFT_WAVE_EXPLORE: 'with waves: exploration floor in [0, 1] (0.3; 1 = no signal bias)',
  SFT_MAX_WAVES: 'with waves: at most this many waves, 1-100 (20)',
  SFT_SYSTEM_PROMPT:
    "the chat format's system message, at most 32768 bytes (default: a router instruction naming the label words)",
  SFT_LABEL_WORDS:
    "the chat assistant's words for label 0 and label 1, two distinct words (reasoning,fast)",
  SFT_CHAT_MAX_TOKENS:
    'chat examples over this many tokens (o200k_base) are left out, a positive integer (65536)',
  SFT_LICENSE:
    "the dataset card's license: an SPDX-like id such as mit or cc-by-4.0, or other (other)",
};
