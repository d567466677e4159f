/**
 * An open-addressing hash table from 64-bit fingerprints to dense ids (0, 1, 2, ...),
 * in one typed array of (hi, lo, id + 1) slots, so a probe touches one cache line, not
 * three arrays: about 24 bytes a distinct key at the lowest load, where a Map of strings
 * costs ~100. Deduplication over millions of rows needs one entry per distinct message.
 */
export class FingerprintTable {
  /** Slot i is t[3i] = hi, t[3i + 1] = lo, t[3i + 2] = id + 1 (0: empty). */
  private t: Uint32Array;
  private mask: number;
  private count = 0;

  constructor(initialCapacity = 1 << 12) {
    this.t = new Uint32Array(3 * FingerprintTable.slotsFor(initialCapacity));
    this.mask = this.t.length / 3 - 1;
  }

  /** Slots for n keys at a load of at most one half (a power of two). */
  private static slotsFor(n: number): number {
    let cap = 16;
    while (cap < n * 2) cap *= 2;
    return cap;
  }

  get size(): number {
    return this.count;
  }

  /** Slots in the table (keys it holds before growing: half of them). */
  get capacity(): number {
    return this.mask + 1;
  }

  /** Makes room for `n` keys in all, so that inserting up to that many never grows the table. */
  reserve(n: number): void {
    const slots = FingerprintTable.slotsFor(n);
    if (slots > this.mask + 1) this.rehash(slots);
  }

  /**
   * The id of a fingerprint, inserting it if new. Returns the id when it was already
   * present, and -(id + 1) when this call inserted it (no object allocated per call).
   */
  intern(hi: number, lo: number): number {
    if (this.count * 2 >= this.mask + 1) this.rehash((this.mask + 1) * 2);
    const t = this.t;
    const mask = this.mask;
    let i = (hi ^ Math.imul(lo, 0x9e3779b1)) & mask;
    for (;;) {
      const j = i * 3;
      const id = t[j + 2]!;
      if (id === 0) {
        t[j] = hi;
        t[j + 1] = lo;
        t[j + 2] = ++this.count;
        return -this.count;
      }
      if (t[j] === hi && t[j + 1] === lo) return id - 1;
      i = (i + 1) & mask;
    }
  }

  /** The fingerprints by id: hi[id], lo[id] (for merging tables across workers). */
  export(): { hi: Uint32Array; lo: Uint32Array } {
    const hi = new Uint32Array(this.count);
    const lo = new Uint32Array(this.count);
    const t = this.t;
    for (let j = 0; j < t.length; j += 3) {
      const id = t[j + 2]!;
      if (id === 0) continue;
      hi[id - 1] = t[j]!;
      lo[id - 1] = t[j + 1]!;
    }
    return { hi, lo };
  }

  private rehash(slots: number): void {
    const old = this.t;
    const t = touched(new Uint32Array(3 * slots));
    const mask = slots - 1;
    for (let j = 0; j < old.length; j += 3) {
      const id = old[j + 2]!;
      if (id === 0) continue;
      const hi = old[j]!;
      const lo = old[j + 1]!;
      let i = (hi ^ Math.imul(lo, 0x9e3779b1)) & mask;
      while (t[i * 3 + 2] !== 0) i = (i + 1) & mask;
      t[i * 3] = hi;
      t[i * 3 + 1] = lo;
      t[i * 3 + 2] = id;
    }
    this.t = t;
    this.mask = mask;
  }
}

/**
 * `a`, its pages written once in order. A fresh large typed array is zero pages the
 * kernel maps on first write; a hash table's random first writes fault them in at random,
 * and two threads of one process faulting at once run ~3× slower each (measured: a
 * 48 MB table, 3M random writes, 122 ms on one worker thread, ~400 ms each on two;
 * touched first, ~100 ms each). Faulting them in order is cheap on any number of threads.
 */
export function touched<T extends Uint32Array | Int32Array | Float64Array>(a: T): T {
  const step = 4096 / a.BYTES_PER_ELEMENT;
  for (let i = 0; i < a.length; i += step) a[i] = 0;
  return a;
}

/** A growable Float64Array / Int32Array pair indexed by dense id. */
export class GrowableColumns {
  keys = new Float64Array(1024);
  ties = new Uint32Array(1024);
  cells = new Int32Array(1024);
  /** A row index per id, for a caller that keeps one (StreamingBalancer.absorbChunk). */
  rows = new Int32Array(1024);

  ensure(id: number): void {
    if (id < this.keys.length) return;
    let cap = this.keys.length;
    while (cap <= id) cap *= 2;
    this.resize(cap);
  }

  /** Room for ids up to n - 1 without growing (exactly n, not the next power of two). */
  reserve(n: number): void {
    if (n > this.keys.length) this.resize(n);
  }

  private resize(cap: number): void {
    const k = new Float64Array(cap);
    k.set(this.keys);
    const t = new Uint32Array(cap);
    t.set(this.ties);
    const c = new Int32Array(cap);
    c.set(this.cells);
    const r = new Int32Array(cap);
    r.set(this.rows);
    this.keys = k;
    this.ties = t;
    this.cells = c;
    this.rows = r;
  }
}
