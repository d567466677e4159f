/**
 * Token and cost accounting for a judge: what a build paid, for the manifest.
 */
import { z } from 'zod';

/** Prices in currency units per million tokens; the Batch API discount applies to all three. */
export const PricesSchema = z.object({
  inputPerMTok: z.number().min(0).default(0),
  cachedInputPerMTok: z.number().min(0).default(0),
  outputPerMTok: z.number().min(0).default(0),
  /** Multiplier on Batch API requests (0.5 = 50% cheaper). */
  batchMultiplier: z.number().min(0).max(1).default(0.5),
});
export type Prices = z.infer<typeof PricesSchema>;

export interface TokenUsage {
  promptTokens: number;
  /** Prompt tokens served from the provider's prompt cache (a subset of promptTokens). */
  cachedTokens: number;
  completionTokens: number;
}

/** What a judge reports for the manifest's `judge` section. */
export interface JudgeStats {
  calls: number;
  /** Requests that failed and were retried (429s, 5xx, timeouts). */
  retries: number;
  samplesJudged: number;
  labelled: number;
  unlabeled: number;
  /** Samples answered from the verdict cache without a call. */
  cacheHits: number;
  /** Samples re-asked alone after a bad or missing verdict. */
  reasked: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  estimatedCost: number;
  batchCalls: number;
  /** Verdicts that could not be written to the cache (they were still returned). */
  cacheWriteErrors: number;
}

export function emptyStats(): JudgeStats {
  return {
    calls: 0,
    retries: 0,
    samplesJudged: 0,
    labelled: 0,
    unlabeled: 0,
    cacheHits: 0,
    reasked: 0,
    promptTokens: 0,
    cachedTokens: 0,
    completionTokens: 0,
    estimatedCost: 0,
    batchCalls: 0,
    cacheWriteErrors: 0,
  };
}

/** The cost of one call's usage at `prices`. */
export function costOf(usage: TokenUsage, prices: Prices, batch = false): number {
  const uncached = Math.max(0, usage.promptTokens - usage.cachedTokens);
  const cost =
    (uncached * prices.inputPerMTok +
      usage.cachedTokens * prices.cachedInputPerMTok +
      usage.completionTokens * prices.outputPerMTok) /
    1_000_000;
  return batch ? cost * prices.batchMultiplier : cost;
}

/** Accumulates stats; rounding happens once, in `snapshot`. */
export class UsageMeter {
  private readonly s = emptyStats();

  constructor(private readonly prices: Prices) {}

  call(usage: TokenUsage | null, batch = false): void {
    this.s.calls++;
    if (batch) this.s.batchCalls++;
    if (!usage) return;
    this.s.promptTokens += usage.promptTokens;
    this.s.cachedTokens += usage.cachedTokens;
    this.s.completionTokens += usage.completionTokens;
    this.s.estimatedCost += costOf(usage, this.prices, batch);
  }

  retry(): void {
    this.s.retries++;
  }

  cacheWriteError(): void {
    this.s.cacheWriteErrors++;
  }

  samples(judged: number, labelled: number, cacheHits: number, reasked: number): void {
    this.s.samplesJudged += judged;
    this.s.labelled += labelled;
    this.s.unlabeled += judged - labelled;
    this.s.cacheHits += cacheHits;
    this.s.reasked += reasked;
  }

  snapshot(): JudgeStats {
    return { ...this.s, estimatedCost: Math.round(this.s.estimatedCost * 1e6) / 1e6 };
  }
}
