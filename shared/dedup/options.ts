/**
 * Near-dedup settings, validated once: threshold 0 < t ≤ 1 (Jaccard), the LSH shape
 * and the shingles. Defaults are the measured choice of docs/dedup.md.
 */
import { z } from 'zod';
import { detectionProbability } from './lsh';
import { shingleSchema } from './shingles';
import { PermanentError } from '../errors';

/** Bad dedup settings: permanent, and names the offending field. */
export class DedupConfigError extends PermanentError {
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Input the detector cannot take (e.g. one id twice): permanent. */
export class DedupInputError extends PermanentError {}

export const DEFAULT_BANDS = 16;
export const DEFAULT_ROWS = 7;

export const dedupOptionsSchema = z.object({
  /** Estimated Jaccard at or above which a candidate pair is a near-duplicate. */
  threshold: z.number().gt(0).lte(1).default(0.8),
  bands: z.number().int().min(1).max(1024).default(DEFAULT_BANDS),
  rows: z.number().int().min(1).max(64).default(DEFAULT_ROWS),
  shingles: shingleSchema.default({ kind: 'char', size: 5 }),
  /** Seed of the permutations and of the keep rule. */
  seed: z.union([z.number(), z.string()]).default(0),
  /**
   * In an LSH bucket, each member is verified against one representative (the
   * earliest member in keep order) of each cluster already in the bucket, at most
   * this many: a bucket of m members costs at most m × cap checks (a re-sent prompt
   * pasted 10,000 times is one bucket and costs 10,000).
   */
  bucketCap: z.number().int().min(1).default(64),
  /**
   * `cluster`: union-find over verified pairs, one kept per connected component.
   * `greedy`: in keep order, a sample is removed when it is a near-duplicate of an
   * already kept one (what a bounded-memory fan-in can reproduce, docs/dedup.md).
   */
  mode: z.enum(['cluster', 'greedy']).default('cluster'),
  /**
   * `greedy` only: a sample is removed at the first verified kept sample (band order,
   * then earliest kept), not the most similar of all its candidates: the same removals,
   * a cheaper check, and keptId is "a" near-duplicate rather than the closest.
   */
  firstMatch: z.boolean().default(true),
});
export type DedupOptions = z.infer<typeof dedupOptionsSchema>;
export type DedupOptionsInput = z.input<typeof dedupOptionsSchema>;

/** Parses dedup settings; a bad one throws DedupConfigError naming the field, in one line. */
export function parseDedupOptions(input: DedupOptionsInput = {}): DedupOptions {
  const r = dedupOptionsSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.') || 'dedup';
  const hint = field === 'threshold' ? ' (a Jaccard similarity, 0 < threshold ≤ 1)' : '';
  throw new DedupConfigError(field, `dedup ${field}: ${issue.message}${hint}`, { cause: r.error });
}

/** Number of MinHash permutations (signature length): bands × rows. */
export const permutationCount = (o: Pick<DedupOptions, 'bands' | 'rows'>): number =>
  o.bands * o.rows;

/** Bytes of one signature: 4 per permutation. */
export const signatureBytes = (o: Pick<DedupOptions, 'bands' | 'rows'>): number =>
  4 * permutationCount(o);

/** LSH detection probability at Jaccard 0.7, 0.8 and 0.9 for these settings. */
export function detectionTable(
  o: Pick<DedupOptions, 'bands' | 'rows'>,
  at: readonly number[] = [0.7, 0.8, 0.9],
): { jaccard: number; probability: number }[] {
  return at.map((s) => ({ jaccard: s, probability: detectionProbability(s, o.bands, o.rows) }));
}
