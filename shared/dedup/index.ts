/**
 * Near-duplicate detection (MinHash + LSH), pure: no I/O. docs/dedup.md has the
 * design, the measured choices and the bounded-memory plan for the Functions fan-in.
 *
 * Exports:
 * - normalizeText (normalizeTextUnicode: its definition): the canonical text shingles are cut from;
 * - shingleHashes / shingleSet / jaccard: 32-bit shingle hashes, exact Jaccard (for checks);
 * - Signer, minhash, permutationSeeds, estimatedJaccard, agreementsNeeded, agreesAtLeast: signatures;
 * - detectionProbability, lshThreshold, bandKey32, bandKeys53: LSH banding;
 * - dedupOptionsSchema, parseDedupOptions, detectionTable, permutationCount,
 *   signatureBytes, DedupConfigError, DedupInputError: settings;
 * - dedupSignatures, GreedyDeduper, keepKey, inKeepOrder: candidates → verified pairs
 *   → clusters → removals ({id, keptId, similarity});
 * - packBatch, unpackBatches, BandKeyTable: what batches ship and a fan-in merges;
 * - signerFor, signSamples, dedupTexts: the whole path from {id, text}.
 */
import { dedupSignatures, type DedupResult, type Signed } from './cluster';
import { Signer } from './minhash';
import {
  parseDedupOptions,
  permutationCount,
  type DedupOptions,
  type DedupOptionsInput,
} from './options';

export { normalizeText, normalizeTextUnicode } from './normalize';
export { shingleHashes, shingleSet, jaccard, shingleSchema, type ShingleOptions } from './shingles';
export {
  Signer,
  minhash,
  permutationSeeds,
  estimatedJaccard,
  agreementsNeeded,
  agreesAtLeast,
} from './minhash';
export { detectionProbability, lshThreshold, bandKey32, bandKeys53 } from './lsh';
export {
  dedupOptionsSchema,
  parseDedupOptions,
  detectionTable,
  permutationCount,
  signatureBytes,
  DedupConfigError,
  DedupInputError,
  DEFAULT_BANDS,
  DEFAULT_ROWS,
  type DedupOptions,
  type DedupOptionsInput,
} from './options';
export {
  dedupSignatures,
  GreedyDeduper,
  keepKey,
  inKeepOrder,
  type Signed,
  type Removal,
  type DedupResult,
  type DedupStats,
} from './cluster';
export { packBatch, unpackBatches, BandKeyTable, type SignatureBatch } from './merge';

// The shingle hash seed is fixed: shingles are a property of the text, the
// permutations carry the run's seed.
const SHINGLE_SEED = 0x2545f491;

/** A signer for these options (shingles and permutations from the seed). */
export function signerFor(o: DedupOptions): Signer {
  return new Signer(o.shingles, permutationCount(o), SHINGLE_SEED, o.seed);
}

/** Signatures of samples' texts. */
export function signSamples(
  samples: readonly { id: string; text: string }[],
  o: DedupOptions,
): Signed[] {
  const signer = signerFor(o);
  return samples.map((s) => ({ id: s.id, signature: signer.sign(s.text) }));
}

/** Near-duplicate removal over texts: validates the options, signs, dedups. */
export function dedupTexts(
  samples: readonly { id: string; text: string }[],
  options: DedupOptionsInput = {},
): DedupResult {
  const o = parseDedupOptions(options);
  return dedupSignatures(signSamples(samples, o), o);
}
