/**
 * The balance configuration: what a dataset is made of. Parsed once at the edge
 * (CLI flags, HTTP body, settings); the core takes the parsed value.
 */
import { z } from 'zod';
import {
  ChatMaxTokensSchema,
  LabelWordsSchema,
  LicenseSchema,
  SystemPromptSchema,
} from './dataset-settings';

export const STRATIFIERS = ['turnBucket', 'complexity', 'modelFamily', 'position'] as const;
export type StratifierName = (typeof STRATIFIERS)[number];

export const ALLOCATIONS = ['equal', 'proportional', 'inverse-frequency'] as const;
export type Allocation = (typeof ALLOCATIONS)[number];

export const SHORTFALL_MODES = ['shrink', 'upsample', 'fail'] as const;

export const BucketSchema = z
  .object({ name: z.string().min(1), min: z.number().int().min(1), max: z.number().int().min(1) })
  .refine((b) => b.min <= b.max, 'bucket min must not exceed max');
export type Bucket = z.infer<typeof BucketSchema>;

/** The seed's Strategy 1 buckets. */
export const DEFAULT_BUCKETS: Bucket[] = [
  { name: 'A', min: 3, max: 5 },
  { name: 'B', min: 6, max: 10 },
  { name: 'C', min: 11, max: 20 },
];

/**
 * Model names (prefixes, case-insensitive) that count as reasoning models for
 * Strategy 3; every other model is "fast".
 */
export const DEFAULT_REASONING_MODELS = [
  'o1',
  'o3',
  'o4',
  'gpt-5',
  'claude-opus',
  'claude-3.7-sonnet-thinking',
  'claude-sonnet-4-thinking',
  'gemini-2.5-pro',
  'gemini-3-pro',
  'deepseek-r1',
];

/**
 * Strategy 2 thresholds: each signal maps to [0, 1] between its `low` (the seed's
 * non-reasoning proxy) and `high` (its reasoning proxy), then is capped, so no
 * single signal can push a turn into the top tier on its own.
 */
export const ComplexitySchema = z.object({
  numRequests: z.tuple([z.number(), z.number()]).default([2, 10]),
  turnDurationMs: z.tuple([z.number(), z.number()]).default([10_000, 60_000]),
  toolDiversity: z.tuple([z.number(), z.number()]).default([1, 4]),
  promptTokenDelta: z.tuple([z.number(), z.number()]).default([500, 8_000]),
  /** Tier cut points on the mean score: below the first is low, from the second up high. */
  tiers: z
    .tuple([z.number().min(0).max(1), z.number().min(0).max(1)])
    .refine(([lo, hi]) => lo <= hi, 'the low threshold must not exceed the high one')
    .default([0.25, 0.6]),
  /**
   * Set when `tiers` were fitted to the data (the 1/3 and 2/3 quantiles of the score
   * over `rows` rows of `source`) rather than given: the manifest and report say so.
   */
  fitted: z
    .object({ method: z.literal('quantiles'), rows: z.number().int().min(0), source: z.string() })
    .optional(),
});
export type ComplexityConfig = z.infer<typeof ComplexitySchema>;

const ratio = z.union([
  z.number().min(0).max(1),
  z
    .string()
    .regex(/^\d+(\.\d+)?:\d+(\.\d+)?$/, 'ratio must be a number in [0, 1] or "A:B" such as "70:30"')
    .transform((s) => {
      const [a, b] = s.split(':').map(Number) as [number, number];
      return a / (a + b);
    })
    .refine((r) => Number.isFinite(r), 'ratio "0:0" is not a ratio'),
]);

export const BalanceConfigSchema = z
  .object({
    /** Samples in the dataset (train + validation). */
    total: z.number().int().positive().default(100_000),
    /** Share of label 0 (reasoning): 0.5 for 50:50, 0.7 for 70:30. */
    ratio: ratio.default(0.5),
    stratify: z.array(z.enum(STRATIFIERS)).default(['turnBucket']),
    allocation: z.enum(ALLOCATIONS).default('equal'),
    onShortfall: z.enum(SHORTFALL_MODES).default('shrink'),
    seed: z.union([z.number().int(), z.string().min(1)]).default(42),
    /** Remove exact-duplicate user messages before sampling. */
    dedup: z.boolean().default(true),
    /**
     * Remove near-duplicate user messages from the selection (MinHash char-5-gram
     * signatures, 16 × 7 LSH, verified at `dedupThreshold`; docs/dedup.md).
     */
    nearDedup: z.boolean().default(true),
    /** Estimated Jaccard at or above which two user messages are near-duplicates. */
    dedupThreshold: z.number().gt(0).lte(1).default(0.8),
    /** Share of the dataset in validation.jsonl (0 = none); grouped by conversation. */
    validation: z.number().min(0).lt(1).default(0),
    /** Share of the dataset in test.jsonl (absent or 0 = none); grouped by conversation. */
    test: z.number().min(0).lt(1).optional(),
    /**
     * Output formats beside the JSONL record (docs/formats.md): chat, classifier, parquet;
     * absent = the record alone (no card either).
     */
    formats: z.array(z.enum(['jsonl', 'chat', 'classifier', 'parquet'])).optional(),
    buckets: z.array(BucketSchema).min(1).default(DEFAULT_BUCKETS),
    reasoningModels: z.array(z.string().min(1)).default(DEFAULT_REASONING_MODELS),
    complexity: ComplexitySchema.default(ComplexitySchema.parse({})),
    /** Longer user messages are quarantined (characters). */
    maxMessageChars: z.number().int().positive().default(32_000),
    /**
     * Column mapping: contract field → the input's column (`{ label: 'reasoning_label' }`).
     * Validated by checkColumnMap in shared/contracts.ts.
     */
    columns: z.record(z.string(), z.string().min(1)).optional(),
    // Dataset settings (shared/contracts/dataset-settings.ts, docs/formats.md); absent = the default.
    /** The chat format's system message (default: defaultSystemPrompt of the label words). */
    systemPrompt: SystemPromptSchema.optional(),
    /** The chat assistant's words for label 0 and label 1 (default reasoning, fast). */
    labelWords: LabelWordsSchema.optional(),
    /** Chat examples over this many tokens are left out (default 65,536). */
    chatMaxTokens: ChatMaxTokensSchema.optional(),
    /** The dataset card's license id (default other). */
    license: LicenseSchema.optional(),
  })
  .refine((c) => c.validation + (c.test ?? 0) < 1, {
    message: 'validation and test shares must leave a share for train (sum below 1)',
    path: ['test'],
  });
export type BalanceConfig = z.infer<typeof BalanceConfigSchema>;

/** train / validation / test shares of a config: [1 − v − t, v, t]. */
export function splitShares(config: BalanceConfig): [number, number, number] {
  const v = config.validation;
  const t = config.test ?? 0;
  return [1 - v - t, v, t];
}
export type BalanceConfigInput = z.input<typeof BalanceConfigSchema>;

/** Parses a (partial) config, filling defaults; throws a ZodError naming the bad field. */
export function parseBalanceConfig(input: BalanceConfigInput = {}): BalanceConfig {
  return BalanceConfigSchema.parse(input);
}

/** Class targets: n0 = round(total × ratio), n1 = total − n0. */
export function classTargets(total: number, ratioOfReasoning: number): [number, number] {
  const n0 = Math.round(total * ratioOfReasoning);
  return [n0, total - n0];
}
