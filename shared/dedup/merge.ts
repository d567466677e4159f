/**
 * The pieces that let batches sign in parallel and a fan-in decide across them.
 *
 * - A batch ships its samples as a SignatureBatch: ids and one flat Int32Array of
 *   signatures (bands × rows × 4 bytes per sample). Dedup results do not depend on
 *   the order of items, so the fan-in's answer over the concatenated batches equals
 *   the in-process answer over the same rows, whatever the sharding.
 * - A BandKeyTable holds compact band keys (one 53-bit integer in a float64 per band
 *   per sample) sorted, and merges by a linear sorted merge: a two-phase fan-in can
 *   find the samples that collide in some band from keys alone (8 bytes × bands per
 *   sample), then fetch signatures only for those.
 */
import type { Signed } from './cluster';
import { bandKeys53 } from './lsh';
import { DedupInputError } from './options';

export interface SignatureBatch {
  ids: string[];
  /** Signatures back to back: ids.length × permutations values. */
  signatures: Int32Array;
  permutations: number;
}

/** Packs signed samples for shipping (one typed array, no per-sample objects). */
export function packBatch(items: readonly Signed[], permutations: number): SignatureBatch {
  const signatures = new Int32Array(items.length * permutations);
  items.forEach((it, i) => {
    if (it.signature.length !== permutations) {
      throw new DedupInputError(
        `dedup: signature of ${JSON.stringify(it.id)} has ${it.signature.length} values, expected ${permutations}`,
      );
    }
    signatures.set(it.signature, i * permutations);
  });
  return { ids: items.map((it) => it.id), signatures, permutations };
}

/** The signed samples of several batches (views into their arrays, not copies). */
export function unpackBatches(batches: readonly SignatureBatch[]): Signed[] {
  const out: Signed[] = [];
  for (const b of batches) {
    const p = b.permutations;
    if (b.signatures.length !== b.ids.length * p) {
      throw new DedupInputError(
        `dedup: a batch of ${b.ids.length} ids carries ${b.signatures.length} signature values, expected ${b.ids.length * p}`,
      );
    }
    b.ids.forEach((id, i) =>
      out.push({ id, signature: b.signatures.subarray(i * p, (i + 1) * p) }),
    );
  }
  return out;
}

/** Sorted compact band keys with their owners; merging two tables is linear. */
export class BandKeyTable {
  private constructor(
    readonly ids: string[],
    /** Band keys, ascending. */
    readonly keys: Float64Array,
    /** Owner of each key: an index into ids. */
    readonly owners: Int32Array,
  ) {}

  static fromSignatures(items: readonly Signed[], bands: number, rows: number): BandKeyTable {
    const n = items.length;
    const raw = new Float64Array(n * bands);
    items.forEach((it, i) => raw.set(bandKeys53(it.signature, bands, rows), i * bands));
    const order = Array.from({ length: n * bands }, (_, i) => i);
    order.sort((x, y) => raw[x]! - raw[y]! || x - y);
    const keys = new Float64Array(order.length);
    const owners = new Int32Array(order.length);
    order.forEach((pos, i) => {
      keys[i] = raw[pos]!;
      owners[i] = Math.floor(pos / bands);
    });
    return new BandKeyTable(
      items.map((it) => it.id),
      keys,
      owners,
    );
  }

  /** The union of two tables (ids of `other` renumbered after this table's). */
  merge(other: BandKeyTable): BandKeyTable {
    const off = this.ids.length;
    const n = this.keys.length + other.keys.length;
    const keys = new Float64Array(n);
    const owners = new Int32Array(n);
    let i = 0;
    let j = 0;
    for (let k = 0; k < n; k++) {
      if (j >= other.keys.length || (i < this.keys.length && this.keys[i]! <= other.keys[j]!)) {
        keys[k] = this.keys[i]!;
        owners[k] = this.owners[i++]!;
      } else {
        keys[k] = other.keys[j]!;
        owners[k] = other.owners[j++]! + off;
      }
    }
    return new BandKeyTable([...this.ids, ...other.ids], keys, owners);
  }

  /** Bytes the keys and owners take (ids aside): 12 per band per sample. */
  get bytes(): number {
    return this.keys.byteLength + this.owners.byteLength;
  }

  /** Ids that share at least one band key with another id: the only ones whose signatures verification needs. */
  collidingIds(): Set<string> {
    const out = new Set<string>();
    const n = this.keys.length;
    for (let s = 0; s < n;) {
      let e = s + 1;
      while (e < n && this.keys[e] === this.keys[s]) e++;
      if (e - s > 1) {
        const first = this.owners[s]!;
        let distinct = false;
        for (let k = s + 1; k < e; k++) if (this.owners[k] !== first) distinct = true;
        if (distinct) for (let k = s; k < e; k++) out.add(this.ids[this.owners[k]!]!);
      }
      s = e;
    }
    return out;
  }
}
