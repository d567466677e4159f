/**
 * The verdict cache's addressing: (judge model, rubric version, sample content hash).
 * A rebuild with the same model and rubric never pays twice for the same content;
 * changing either starts a fresh namespace instead of serving stale labels.
 */
import { z } from 'zod';
import { LabelSchema } from '../contracts/rows';

/** Characters safe in a blob name segment; anything else becomes "_". */
const segment = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

/** The blob name of a cached verdict: `verdicts/MODEL/RUBRIC/ab/abcdef...json`. */
export function judgeCacheKey(model: string, rubricVersion: string, contentSha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(contentSha256)) {
    throw new RangeError('content hash must be a sha256 in lowercase hex');
  }
  return `verdicts/${segment(model)}/${segment(rubricVersion)}/${contentSha256.slice(0, 2)}/${contentSha256}.json`;
}

/** What the cache stores per sample: only a real label, never a failure. */
export const CachedVerdictSchema = z.object({
  label: LabelSchema,
  rationale: z.string().optional(),
  confidence: z.number().min(0).max(1).optional(),
  model: z.string(),
  rubricVersion: z.string(),
});
export type CachedVerdict = z.infer<typeof CachedVerdictSchema>;

/** The cache as the judge sees it; the adapter puts it in blob storage. */
export interface VerdictCache {
  get(key: string): Promise<CachedVerdict | null>;
  put(key: string, verdict: CachedVerdict): Promise<void>;
}
