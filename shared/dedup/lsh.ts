/**
 * Locality-sensitive hashing by bands: a signature of bands × rows values is cut in
 * `bands` slices of `rows`; two texts become a candidate pair when any slice matches
 * exactly. At Jaccard s a slice matches with probability sʳ, so a pair is found with
 * probability 1 − (1 − sʳ)ᵇ: an S-curve whose steep part sits near (1/b)^(1/r).
 */
import { fmix32 } from './shingles';

/** Probability that LSH with `bands` × `rows` makes a pair of Jaccard `s` a candidate. */
export function detectionProbability(s: number, bands: number, rows: number): number {
  return 1 - (1 - s ** rows) ** bands;
}

/** The Jaccard where the S-curve is steepest, (1/b)^(1/r): the approximate LSH threshold. */
export function lshThreshold(bands: number, rows: number): number {
  return (1 / bands) ** (1 / rows);
}

/** 32-bit key of band `band` of a signature (band index and lane mixed in; lanes are independent hashes). */
export function bandKey32(signature: Int32Array, band: number, rows: number, lane = 0): number {
  let h = fmix32((band + 0x5bd1e995 + Math.imul(lane, 0x9e3779b9)) >>> 0);
  const from = band * rows;
  for (let i = from; i < from + rows; i++) {
    h = Math.imul(h ^ signature[i]!, 0x9e3779b1);
    h = (h << 15) | (h >>> 17);
  }
  return fmix32(h);
}

/**
 * Compact band keys for shipping between batches: one float64 per band holding a
 * 53-bit integer (21 bits of one 32-bit lane, 32 of another), band index mixed in,
 * so keys of different bands never meet and chance collisions among a billion keys
 * stay rare (n²/2⁵⁴). 8 bytes per band per sample.
 */
export function bandKeys53(signature: Int32Array, bands: number, rows: number): Float64Array {
  const keys = new Float64Array(bands);
  for (let b = 0; b < bands; b++) {
    const lo = bandKey32(signature, b, rows);
    const hi = bandKey32(signature, b, rows, 1) >>> 11;
    keys[b] = hi * 2 ** 32 + (lo >>> 0);
  }
  return keys;
}
