/**
 * MinHash signatures: for each of `permutations` seeded 32-bit mixing functions, the
 * minimum over a text's shingle hashes. Two signatures agree in a position with
 * probability equal to the Jaccard similarity of the shingle sets, so the share of
 * agreeing positions estimates it (standard error √(J(1−J)/permutations)).
 *
 * Hashing is Math.imul only: no BigInt, no per-shingle string, one typed array per
 * signature; deterministic for a seed on every machine.
 */
import { seed32 } from '../util/hash';
import { fmix32, shingleHashes, type ShingleOptions } from './shingles';
import { normalizeText } from './normalize';

/** The per-permutation seeds, derived from one seed (same seed, same permutations). */
export function permutationSeeds(seed: number | string, permutations: number): Int32Array {
  const seeds = new Int32Array(permutations);
  let s = seed32(seed);
  for (let i = 0; i < permutations; i++) {
    s = (s + 0x9e3779b9) >>> 0;
    seeds[i] = fmix32(s);
  }
  return seeds;
}

/**
 * The MinHash signature of `count` shingle hashes under the permutation `seeds`,
 * written into `out`. Each permutation is x ↦ mix(x ⊕ seedᵢ), a bijection of 32-bit
 * values (two multiply-xorshift rounds), ordered as signed integers (any fixed order of
 * the values serves MinHash; signed ones stay unboxed). No shingle → every position 2³¹−1.
 */
export function minhash(
  hashes: Int32Array,
  count: number,
  seeds: Int32Array,
  out: Int32Array = new Int32Array(seeds.length),
): Int32Array {
  const p = seeds.length;
  out.fill(0x7fffffff);
  for (let j = 0; j < count; j++) {
    const x = hashes[j]!;
    for (let i = 0; i < p; i++) {
      let v = Math.imul(x ^ seeds[i]!, 0x85ebca6b);
      v ^= v >>> 13;
      v = Math.imul(v, 0xc2b2ae35);
      v ^= v >>> 16;
      if (v < out[i]!) out[i] = v;
    }
  }
  return out;
}

/** Share of positions where two signatures agree: the estimated Jaccard similarity. */
export function estimatedJaccard(a: Int32Array, b: Int32Array, from = 0, to = a.length): number {
  let same = 0;
  for (let i = from; i < to; i++) if (a[i] === b[i]) same++;
  return same / (to - from);
}

/** The least number of agreeing positions (of p) for an estimated Jaccard ≥ threshold. */
export function agreementsNeeded(threshold: number, p: number): number {
  let k = Math.ceil(threshold * p);
  while (k > 0 && (k - 1) / p >= threshold) k--;
  while (k <= p && k / p < threshold) k++;
  return k;
}

/**
 * Whether two signatures agree in at least `needed` positions: the verification step,
 * stopping as soon as too many positions disagree (most candidates are rejected early).
 */
export function agreesAtLeast(a: Int32Array, b: Int32Array, needed: number): boolean {
  const p = a.length;
  let misses = p - needed;
  for (let i = 0; i < p; i++) {
    if (a[i] !== b[i] && --misses < 0) return false;
  }
  return true;
}

/**
 * A reusable signer: normalises, shingles and signs texts with fixed options,
 * reusing one shingle buffer (the hot loop allocates only the returned signature).
 */
export class Signer {
  private buffer: Int32Array = new Int32Array(256);
  readonly seeds: Int32Array;

  constructor(
    readonly shingles: ShingleOptions,
    permutations: number,
    private readonly shingleSeed: number,
    seed: number | string,
  ) {
    this.seeds = permutationSeeds(seed, permutations);
  }

  /** The signature of a raw (not yet normalised) text. */
  sign(text: string, out?: Int32Array): Int32Array {
    const { hashes, count } = shingleHashes(
      normalizeText(text),
      this.shingles,
      this.shingleSeed,
      this.buffer,
    );
    this.buffer = hashes;
    return minhash(hashes, count, this.seeds, out);
  }
}
