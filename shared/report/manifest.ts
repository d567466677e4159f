/**
 * The part of a manifest the report reads: the balancer's manifest (shared/balance/balancer.ts)
 * plus what the CLI jobs and the fan-in add (pipeline, judge, waves, profile, outputs, build).
 * Loose objects: a manifest may carry more, and older manifests lack the optional parts.
 */
import { z } from 'zod';
import { ProfileSchema } from './profile';

const count = z.number().int().min(0);
const counts = z.record(z.string(), count);

export const JudgeStatsSchema = z.looseObject({
  calls: count,
  retries: count.default(0),
  samplesJudged: count.default(0),
  labelled: count.default(0),
  unlabeled: count.default(0),
  cacheHits: count.default(0),
  reasked: count.default(0),
  promptTokens: count.default(0),
  cachedTokens: count.default(0),
  completionTokens: count.default(0),
  estimatedCost: z.number().min(0).default(0),
  batchCalls: count.default(0),
});

export const ReportManifestSchema = z.looseObject({
  command: z.string().optional(),
  source: z.unknown().optional(),
  status: z.string().optional(),
  build: z.looseObject({ id: z.string() }).optional(),
  config: z.looseObject({
    total: count,
    ratio: z.number(),
    stratify: z.array(z.string()),
    allocation: z.string().optional(),
    onShortfall: z.string().optional(),
  }),
  seed: z.union([z.number(), z.string()]),
  input: z.looseObject({
    rows: count,
    valid: count,
    quarantined: count,
    outOfStrata: count,
    duplicatesRemoved: count,
    byLabel: counts,
    byLabelStratum: z.record(
      z.string(),
      z.record(z.string(), z.object({ rows: count, unique: count })),
    ),
  }),
  quarantine: z.looseObject({ total: count, byReason: counts }),
  targets: z.looseObject({ total: count, byLabel: counts }),
  selected: z.looseObject({
    total: count,
    byLabel: counts,
    byLabelStratum: z.record(z.string(), counts),
    upsampled: count,
  }),
  shortfalls: z.looseObject({
    classes: z.array(
      z.looseObject({
        label: z.number(),
        target: count,
        available: count,
        delivered: count,
        action: z.string(),
      }),
    ),
    strata: z.array(
      z.looseObject({
        label: z.number(),
        stratum: z.string(),
        /** A share of the class target: not a whole number. */
        nominal: z.number().min(0),
        available: count,
        selected: count,
      }),
    ),
  }),
  split: z.looseObject({ train: count, validation: count }),
  /** Near-duplicates removed by the selection walk (absent when switched off, and in older manifests). */
  nearDuplicates: z
    .looseObject({
      threshold: z.number(),
      removed: count,
      byLabelStratum: z.record(z.string(), counts),
      passes: count.optional(),
    })
    .optional(),
  pipeline: z
    .looseObject({
      name: z.string(),
      assembly: z.looseObject({ conversations: count, complete: count }).optional(),
    })
    .optional(),
  judge: z
    .looseObject({
      name: z.string(),
      calls: count,
      batchSize: count.optional(),
      samplesJudged: count,
      labelled: count,
      unlabeled: count,
      unlabeledByCause: counts.optional(),
      stats: JudgeStatsSchema.optional(),
      /** Which judge labelled the data (shared/judge/types.ts JudgeDescription). */
      labelledBy: z
        .looseObject({
          name: z.string(),
          kind: z.string(),
          provider: z.string().optional(),
          model: z.string().optional(),
          rubricVersion: z.string().nullable(),
        })
        .optional(),
      /** Tokens and estimated cost (shared/judge/prices.ts CostSection). */
      cost: z
        .looseObject({
          promptTokens: count,
          cachedTokens: count,
          completionTokens: count,
          estimatedCost: z.number().min(0),
          currency: z.string(),
          pricing: z
            .looseObject({
              source: z.string().nullable(),
              asOf: z.string().nullable(),
              note: z.string(),
            })
            .nullable(),
        })
        .optional(),
    })
    .optional(),
  /** Yield-aware judging (shared/waves/planner.ts `WavePlanner.report`): absent when every sample was judged. */
  waves: z
    .looseObject({
      /** quotas-met | supply-exhausted | budget-exhausted | wave-limit */
      outcome: z.string(),
      /** Samples offered to the planner (after dedup), judged or not. */
      samples: count.optional(),
      /** Samples sent to the judge over all waves. */
      judged: count,
      waves: z.array(
        z.looseObject({
          wave: count,
          kind: z.string(),
          judged: count,
          /** Labels returned per class; the rest of the wave came back unlabeled. */
          found: z.looseObject({ '0': count, '1': count }),
          /** Judge requests (batches) of the wave, when the caller reported them. */
          requests: count.optional(),
        }),
      ),
      /** Per class × stratum: estimated full-judging target, planner quota, delivered rows. */
      strata: z
        .array(
          z.looseObject({
            label: z.union([z.literal(0), z.literal(1)]),
            stratum: z.string(),
            target: count,
            quota: count,
            delivered: count,
          }),
        )
        .optional(),
    })
    .optional(),
  profile: z.object({ before: ProfileSchema.optional(), after: ProfileSchema }).optional(),
  outputs: z.record(z.string(), z.looseObject({ sha256: z.string() })).optional(),
});
export type ReportManifest = z.infer<typeof ReportManifestSchema>;
