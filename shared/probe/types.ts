/**
 * The probe's inputs and settings. A probe line is the part of a dataset line
 * (shared/contracts/rows.ts DatasetLine) the probe reads; settings are parsed once at the edge.
 */
import { z } from 'zod';
import { DEFAULT_REASONING_MODELS } from '../contracts/config';
import type { DatasetLine } from '../contracts/rows';

/** What the probe reads from a dataset line (train/validation/test.jsonl). */
export type ProbeLine = Pick<
  DatasetLine,
  | 'id'
  | 'label'
  | 'messages'
  | 'strata'
  | 'conversationId'
  | 'turnIndex'
  | 'turnCount'
  | 'model'
  | 'numRequests'
  | 'turnDurationMs'
  | 'promptTokenDelta'
  | 'tools'
> & {
  upsampled?: boolean;
  metadata?: Record<string, unknown>;
  rationale?: unknown;
  judge?: unknown;
  confidence?: unknown;
};

/** A dataset's lines by split; validation and test are absent when the dataset has none. */
export interface ProbeSplits {
  train: readonly ProbeLine[];
  validation?: readonly ProbeLine[];
  test?: readonly ProbeLine[];
}

const range = z
  .tuple([z.number().int().min(1).max(8), z.number().int().min(1).max(8)])
  .refine(([a, b]) => a <= b, 'n-gram range must be ascending');

export const ProbeSettingsSchema = z.object({
  /** Seeds the sample order, the folds and the bootstrap. */
  seed: z.number().int().default(42),
  /** log2 of the hashed dimension. */
  bits: z.number().int().min(4).max(24).default(18),
  wordNgrams: range.default([1, 2]),
  charNgrams: range.default([3, 5]),
  weights: z
    .object({
      words: z.number().min(0),
      chars: z.number().min(0),
      historyWords: z.number().min(0),
      historyChars: z.number().min(0),
    })
    .default({ words: 1, chars: 1, historyWords: 0.5, historyChars: 0.5 }),
  /** Passes over the training rows. */
  epochs: z.number().int().min(1).max(100).default(3),
  /** AdaGrad step size. */
  learningRate: z.number().positive().default(0.5),
  /** Inverse L2 strength, as scikit-learn's C: λ = 1 / (C · n_train). */
  C: z.number().positive().default(1),
  folds: z.number().int().min(2).max(20).default(5),
  bootstrap: z.number().int().min(0).max(100_000).default(1000),
  /** Samples in the label review. */
  reviewSize: z.number().int().min(0).default(50),
  /** Below this many labelled samples the probe does not run. */
  minSamples: z.number().int().min(2).default(30),
  /** Below this many samples of either class the probe does not run. */
  minPerClass: z.number().int().min(1).default(5),
  /** Probability thresholds of the routing curve. */
  thresholds: z
    .array(z.number().min(0).max(1))
    .default([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
  reasoningModels: z.array(z.string().min(1)).default(DEFAULT_REASONING_MODELS),
});
export type ProbeSettings = z.infer<typeof ProbeSettingsSchema>;
export type ProbeSettingsInput = z.input<typeof ProbeSettingsSchema>;
