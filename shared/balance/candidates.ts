/**
 * Keeping the k smallest keys of a stream, cheaply: append to a buffer, and when it
 * holds 1.5k, select the k smallest in linear time (quickselect) and drop the rest.
 * Amortized O(1) a row, against O(log k) for a heap, and everything at or above the
 * smallest dropped key is turned away with a single comparison.
 */
export interface Candidate {
  key: number;
  tie: number;
  id: string;
  /** Set when the candidate no longer counts (deduplication replaced it). */
  dead: boolean;
}

type Ordered = Pick<Candidate, 'key' | 'tie' | 'id'>;

/** Total order of candidates: key, then tie-breaker, then id. */
export function before(a: Ordered, b: Ordered): boolean {
  return a.key < b.key || (a.key === b.key && (a.tie < b.tie || (a.tie === b.tie && a.id < b.id)));
}

const compare = (a: Ordered, b: Ordered) => (before(a, b) ? -1 : before(b, a) ? 1 : 0);

/** Rearranges `items` so its first k are the k smallest (in no particular order). */
export function selectSmallest<T extends Ordered>(items: T[], k: number): void {
  let lo = 0;
  let hi = items.length - 1;
  while (lo < hi) {
    // Median of three as pivot, then Hoare partition.
    const mid = (lo + hi) >>> 1;
    const a = items[lo]!;
    const b = items[mid]!;
    const c = items[hi]!;
    const pivot = before(a, b)
      ? before(b, c)
        ? b
        : before(a, c)
          ? c
          : a
      : before(a, c)
        ? a
        : before(b, c)
          ? c
          : b;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (before(items[i]!, pivot)) i++;
      while (before(pivot, items[j]!)) j--;
      if (i <= j) {
        const t = items[i]!;
        items[i] = items[j]!;
        items[j] = t;
        i++;
        j--;
      }
    }
    if (k - 1 <= j) hi = j;
    else if (k - 1 >= i) lo = i;
    else return;
  }
}

export class CandidateBuffer<T extends Candidate> {
  items: T[] = [];
  /** The smallest candidate ever dropped: nothing at or above it can be selected. */
  minDropped: Ordered | null = null;

  /** False when (key, tie, id) sorts at or after a dropped candidate: it can never be selected. */
  admits(key: number, tie: number, id: string): boolean {
    const d = this.minDropped;
    return (
      d === null || key < d.key || (key === d.key && (tie < d.tie || (tie === d.tie && id < d.id)))
    );
  }

  /** Records that a candidate at `c` was dropped elsewhere (a merged part's buffer). */
  noteDropped(c: Ordered | null): void {
    if (c !== null && (this.minDropped === null || before(c, this.minDropped))) {
      this.minDropped = { key: c.key, tie: c.tie, id: c.id };
    }
  }

  /** Adds a candidate; compacts to `cap` when the buffer reaches twice that. */
  add(c: T, cap: number, onDrop: (c: T) => void): void {
    this.items.push(c);
    if (this.items.length >= cap + (cap >> 1) + 16) this.compact(cap, onDrop);
  }

  /** Keeps the `cap` smallest live candidates, dropping the rest (in place: no new arrays). */
  compact(cap: number, onDrop: (c: T) => void): void {
    const items = this.items;
    let n = 0;
    for (let i = 0; i < items.length; i++) {
      const c = items[i]!;
      if (!c.dead) items[n++] = c;
    }
    items.length = n;
    if (n > cap) {
      selectSmallest(items, cap);
      for (let i = cap; i < n; i++) {
        const d = items[i]!;
        this.noteDropped(d);
        onDrop(d);
      }
      items.length = cap;
    }
  }

  /** The live candidates in ascending order. */
  sorted(): T[] {
    return this.items.filter((c) => !c.dead).sort(compare);
  }
}
