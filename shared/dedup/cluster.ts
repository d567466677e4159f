/**
 * From signatures to removals: LSH buckets give candidate pairs, each is verified by
 * estimated Jaccard ≥ threshold, verified pairs are clustered, and one member per
 * cluster is kept by a rule that depends only on ids and the seed, never on row order
 * or sharding: the member with the smallest keep key hash(seed, sampleId) (id breaks
 * a tie). Every step walks items in keep-key order, so any permutation of the input
 * gives the same removals.
 */
import { hash64, seed32 } from '../util/hash';
import { bandKey32 } from './lsh';
import { fmix32 } from './shingles';
import { agreementsNeeded, agreesAtLeast, estimatedJaccard } from './minhash';
import { DedupInputError, permutationCount, type DedupOptions } from './options';

export interface Signed {
  id: string;
  signature: Int32Array;
}

export interface Removal {
  id: string;
  /** The member of its cluster that stays. */
  keptId: string;
  /** Estimated Jaccard of the removed and the kept sample (signature agreement). */
  similarity: number;
}

export interface DedupStats {
  items: number;
  /** Clusters of two or more members. */
  clusters: number;
  removed: number;
  /** Candidate pairs verified (pairs already in one cluster are not re-verified). */
  candidatePairs: number;
  /** Candidate pairs at or above the threshold. */
  verifiedPairs: number;
}

export interface DedupResult {
  /** One per removed sample, sorted by id. */
  removed: Removal[];
  /** Kept id of the cluster of every sample in a cluster of two or more (kept ones map to themselves). */
  clusterOf: Map<string, string>;
  stats: DedupStats;
}

/** Keep key of a sample: two 32-bit lanes of hash(seed, id). Smaller is kept. */
export function keepKey(id: string, seed: number | string): [number, number] {
  return hash64(id, seed32(seed));
}

/** Items sorted by keep key (id breaks a tie); throws on an id seen twice. */
export function inKeepOrder<T extends { id: string }>(
  items: readonly T[],
  seed: number | string,
): T[] {
  const s = seed32(seed);
  const keyed = items.map((item) => ({ item, k: hash64(item.id, s) }));
  keyed.sort(
    (a, b) =>
      a.k[0] - b.k[0] ||
      a.k[1] - b.k[1] ||
      (a.item.id < b.item.id ? -1 : a.item.id > b.item.id ? 1 : 0),
  );
  for (let i = 1; i < keyed.length; i++) {
    if (keyed[i]!.item.id === keyed[i - 1]!.item.id) {
      throw new DedupInputError(
        `dedup: sample id ${JSON.stringify(keyed[i]!.item.id)} appears twice`,
      );
    }
  }
  return keyed.map((k) => k.item);
}

/** Positions 0..n-1 sorted by 32-bit key, equal keys in position order (stable LSD radix sort, two 16-bit passes). */
function sortByKey(
  keys: Int32Array,
  a: Uint32Array,
  b: Uint32Array,
  count: Uint32Array,
): Uint32Array {
  const n = keys.length;
  for (let i = 0; i < n; i++) a[i] = i;
  // Small inputs: a comparison sort beats two passes over 65,536 counters.
  if (n < 2048) return a.sort((x, y) => keys[x]! - keys[y]! || x - y);
  for (let shift = 0; shift < 32; shift += 16) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[((keys[a[i]!]! >>> shift) & 0xffff) + 1]!++;
    for (let d = 1; d < count.length; d++) count[d]! += count[d - 1]!;
    for (let i = 0; i < n; i++) b[count[(keys[a[i]!]! >>> shift) & 0xffff]!++] = a[i]!;
    const t = a;
    a = b;
    b = t;
  }
  return a;
}

/** A 53-bit hash of a whole signature (two 32-bit lanes). */
function signatureKey(sig: Int32Array): number {
  let h1 = 0x243f6a88;
  let h2 = 0x85a308d3;
  for (let i = 0; i < sig.length; i++) {
    h1 = Math.imul(h1 ^ sig[i]!, 0x9e3779b1);
    h2 = Math.imul(h2 ^ sig[i]!, 0x85ebca77);
    h1 = (h1 << 13) | (h1 >>> 19);
  }
  return (fmix32(h1) >>> 11) * 2 ** 32 + (fmix32(h2 ^ h1) >>> 0);
}

function sameSignature(x: Int32Array, y: Int32Array): boolean {
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function checkSignatures(items: readonly Signed[], p: number): void {
  for (const it of items) {
    if (it.signature.length !== p) {
      throw new DedupInputError(
        `dedup: signature of ${JSON.stringify(it.id)} has ${it.signature.length} values, expected ${p} (bands × rows)`,
      );
    }
  }
}

/** Near-duplicate removal over signed samples (see the module note); order-independent. */
export function dedupSignatures(items: readonly Signed[], o: DedupOptions): DedupResult {
  checkSignatures(items, permutationCount(o));
  const sorted = inKeepOrder(items, o.seed);
  return o.mode === 'greedy' ? greedy(sorted, o) : cluster(sorted, o);
}

function cluster(sorted: readonly Signed[], o: DedupOptions): DedupResult {
  const n = sorted.length;
  // Union-find whose root is always the smallest rank: the member kept.
  const parent = new Uint32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  // Identical signatures (re-sent prompts) join their earliest copy at once and only
  // that copy enters the bands: a copy would meet exactly the candidates it meets.
  const firstBySignature = new Map<number, number>();
  const distinct: number[] = [];
  for (let i = 0; i < n; i++) {
    const sig = sorted[i]!.signature;
    const key = signatureKey(sig);
    const first = firstBySignature.get(key);
    if (first !== undefined && sameSignature(sorted[first]!.signature, sig)) {
      parent[i] = first;
      continue;
    }
    if (first === undefined) firstBySignature.set(key, i);
    distinct.push(i);
  }
  const m = distinct.length;
  const keys = new Int32Array(m);
  const sortedKeys = new Int32Array(m);
  const a = new Uint32Array(m);
  const b = new Uint32Array(m);
  const count = new Uint32Array(65537);
  let candidatePairs = 0;
  let verifiedPairs = 0;
  const needed = agreementsNeeded(o.threshold, permutationCount(o));
  const reps: number[] = [];
  for (let band = 0; band < o.bands; band++) {
    for (let i = 0; i < m; i++) keys[i] = bandKey32(sorted[distinct[i]!]!.signature, band, o.rows);
    const order = sortByKey(keys, a, b, count);
    for (let i = 0; i < m; i++) {
      sortedKeys[i] = keys[order[i]!]!;
      order[i] = distinct[order[i]!]!;
    }
    for (let s = 0; s < m;) {
      const k = sortedKeys[s]!;
      let e = s + 1;
      while (e < m && sortedKeys[e] === k) e++;
      // A bucket [s, e), its members in rank order (the radix sort is stable). Each
      // member is verified against one representative per cluster already in the
      // bucket (its earliest member), at most bucketCap of them: a bucket of m
      // re-sent copies costs m checks, not m².
      if (e - s > 1) {
        reps.length = 0;
        for (let j = s; j < e; j++) {
          const x = order[j]!;
          let rx = find(x);
          let joined = false;
          for (const y of reps) {
            const ry = find(y);
            if (ry === rx) {
              joined = true;
              continue;
            }
            candidatePairs++;
            if (agreesAtLeast(sorted[x]!.signature, sorted[y]!.signature, needed)) {
              verifiedPairs++;
              joined = true;
              if (rx < ry) parent[ry] = rx;
              else {
                parent[rx] = ry;
                rx = ry;
              }
            }
          }
          if (!joined && reps.length < o.bucketCap) reps.push(x);
        }
      }
      s = e;
    }
  }
  const removed: Removal[] = [];
  const clusterOf = new Map<string, string>();
  let clusters = 0;
  for (let i = 0; i < n; i++) {
    const r = find(i);
    if (r === i) continue;
    const item = sorted[i]!;
    const kept = sorted[r]!;
    if (!clusterOf.has(kept.id)) {
      clusters++;
      clusterOf.set(kept.id, kept.id);
    }
    clusterOf.set(item.id, kept.id);
    removed.push({
      id: item.id,
      keptId: kept.id,
      similarity: estimatedJaccard(item.signature, kept.signature),
    });
  }
  removed.sort((p, q) => (p.id < q.id ? -1 : p.id > q.id ? 1 : 0));
  return {
    removed,
    clusterOf,
    stats: { items: n, clusters, removed: removed.length, candidatePairs, verifiedPairs },
  };
}

/**
 * Greedy in keep order: a sample is removed when some already kept sample sharing a
 * band is a near-duplicate (the first verified in band order, or the most similar with `firstMatch: false`, is its keptId).
 * Only kept samples are indexed, so memory grows with what is kept.
 */
function greedy(sorted: readonly Signed[], o: DedupOptions): DedupResult {
  const g = new GreedyDeduper(o);
  for (const it of sorted) g.offer(it.id, it.signature);
  return g.result();
}

/**
 * The greedy detector fed one sample at a time, in ascending keep key (checked):
 * a fan-in merging the batches' key-sorted streams feeds it and may stop once its
 * targets are met, holding only the kept samples (see docs/dedup.md).
 */
export class GreedyDeduper {
  private readonly buckets: Map<number, number[]>[] = [];
  private readonly kept: Signed[] = [];
  private readonly removed: Removal[] = [];
  private readonly clusterOf = new Map<string, string>();
  private lastKey: [number, number, string] | undefined;
  private readonly seed: number;
  private candidatePairs = 0;
  private verifiedPairs = 0;
  private items = 0;
  /** Estimated Jaccard of the last sample {@link offer} removed and its keptId. */
  lastSimilarity = 0;
  private stamps = new Uint32Array(1024);
  private stampNow = 0;
  private readonly needed: number;

  constructor(private readonly o: DedupOptions) {
    for (let b = 0; b < o.bands; b++) this.buckets.push(new Map());
    this.seed = seed32(o.seed);
    this.needed = agreementsNeeded(o.threshold, permutationCount(o));
  }

  /** Offers the next sample in keep order; returns the kept id it duplicates, or undefined when kept. */
  offer(id: string, signature: Int32Array): string | undefined {
    const k = hash64(id, this.seed);
    const last = this.lastKey;
    if (
      last &&
      (k[0] < last[0] ||
        (k[0] === last[0] && (k[1] < last[1] || (k[1] === last[1] && id <= last[2]))))
    ) {
      throw new DedupInputError(
        `dedup: ${JSON.stringify(id)} offered out of keep order (or twice)`,
      );
    }
    this.lastKey = [k[0], k[1], id];
    checkSignatures([{ id, signature }], permutationCount(this.o));
    this.items++;
    let best = -1;
    let bestSim = -1;
    // Kept samples already checked for this offer carry its stamp (no Set per offer).
    const stamp = ++this.stampNow;
    const keys: number[] = [];
    for (let b = 0; b < this.o.bands; b++) {
      const key = bandKey32(signature, b, this.o.rows);
      keys.push(key);
      const members = this.buckets[b]!.get(key);
      if (!members) continue;
      // At most bucketCap kept samples sit in a bucket (the earliest ones): a sample costs
      // at most bands × bucketCap checks, however crowded its buckets (docs/dedup.md).
      for (const m of members) {
        if (this.stamps[m] === stamp) continue;
        this.stamps[m] = stamp;
        this.candidatePairs++;
        // The early-exit check first: most candidates are rejected in a few positions.
        if (!agreesAtLeast(signature, this.kept[m]!.signature, this.needed)) continue;
        const sim = estimatedJaccard(signature, this.kept[m]!.signature);
        this.verifiedPairs++;
        if (sim > bestSim || (sim === bestSim && m < best)) {
          best = m;
          bestSim = sim;
        }
        if (this.o.firstMatch) break;
      }
      if (this.o.firstMatch && best >= 0) break;
    }
    if (best >= 0) {
      const keptId = this.kept[best]!.id;
      this.removed.push({ id, keptId, similarity: bestSim });
      this.clusterOf.set(keptId, keptId);
      this.clusterOf.set(id, keptId);
      this.lastSimilarity = bestSim;
      return keptId;
    }
    const index = this.kept.length;
    this.kept.push({ id, signature });
    if (index >= this.stamps.length) {
      const grown = new Uint32Array(Math.max(1024, this.stamps.length * 2));
      grown.set(this.stamps);
      this.stamps = grown;
    }
    keys.forEach((key, b) => {
      const map = this.buckets[b]!;
      const members = map.get(key);
      if (!members) map.set(key, [index]);
      else if (members.length < this.o.bucketCap) members.push(index);
    });
    return undefined;
  }

  /**
   * The kept sample `signature` is a near-duplicate of (the most similar, earliest on a
   * tie) with the estimated Jaccard, without offering it: nothing is indexed or checked.
   */
  duplicateOf(signature: Int32Array): { keptId: string; similarity: number } | undefined {
    const tried = new Set<number>();
    let best = -1;
    let bestSim = -1;
    for (let b = 0; b < this.o.bands; b++) {
      const members = this.buckets[b]!.get(bandKey32(signature, b, this.o.rows));
      for (const m of members ?? []) {
        if (tried.has(m)) continue;
        tried.add(m);
        const sim = estimatedJaccard(signature, this.kept[m]!.signature);
        if (sim >= this.o.threshold && (sim > bestSim || (sim === bestSim && m < best))) {
          best = m;
          bestSim = sim;
        }
      }
    }
    return best < 0 ? undefined : { keptId: this.kept[best]!.id, similarity: bestSim };
  }

  /** Samples kept so far. */
  get keptCount(): number {
    return this.kept.length;
  }

  result(): DedupResult {
    const removed = [...this.removed].sort((p, q) => (p.id < q.id ? -1 : p.id > q.id ? 1 : 0));
    const clusters = new Set(removed.map((r) => r.keptId)).size;
    return {
      removed,
      clusterOf: new Map(this.clusterOf),
      stats: {
        items: this.items,
        clusters,
        removed: removed.length,
        candidatePairs: this.candidatePairs,
        verifiedPairs: this.verifiedPairs,
      },
    };
  }
}
