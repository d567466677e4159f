/**
 * An open-addressing hash table from 64-bit fingerprints to dense ids (0, 1, 2, ...),
 * in typed arrays: about 16 bytes a distinct key, where a Map of strings costs ~100.
 * Deduplication over millions of rows needs one entry per distinct message.
 */
export class FingerprintTable {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private ids: Int32Array;
  private mask: number;
  private count = 0;

  constructor(initialCapacity = 1 << 12) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.ids = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  /**
   * The id of a fingerprint, inserting it if new. Returns the id when it was already
   * present, and -(id + 1) when this call inserted it (no object allocated per call).
   */
  intern(hi: number, lo: number): number {
    if (this.count * 2 >= this.ids.length) this.grow();
    let i = (hi ^ Math.imul(lo, 0x9e3779b1)) & this.mask;
    for (;;) {
      const id = this.ids[i]!;
      if (id < 0) {
        this.hi[i] = hi;
        this.lo[i] = lo;
        this.ids[i] = this.count;
        return -++this.count;
      }
      if (this.hi[i] === hi && this.lo[i] === lo) return id;
      i = (i + 1) & this.mask;
    }
  }

  /** The fingerprints by id: hi[id], lo[id] (for merging tables across workers). */
  export(): { hi: Uint32Array; lo: Uint32Array } {
    const hi = new Uint32Array(this.count);
    const lo = new Uint32Array(this.count);
    for (let j = 0; j < this.ids.length; j++) {
      const id = this.ids[j]!;
      if (id < 0) continue;
      hi[id] = this.hi[j]!;
      lo[id] = this.lo[j]!;
    }
    return { hi, lo };
  }

  private grow(): void {
    const { hi, lo, ids } = this;
    const cap = ids.length * 2;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.ids = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    for (let j = 0; j < ids.length; j++) {
      const id = ids[j]!;
      if (id < 0) continue;
      let i = (hi[j]! ^ Math.imul(lo[j]!, 0x9e3779b1)) & this.mask;
      while (this.ids[i]! >= 0) i = (i + 1) & this.mask;
      this.hi[i] = hi[j]!;
      this.lo[i] = lo[j]!;
      this.ids[i] = id;
    }
  }
}

/** A growable Float64Array / Int32Array pair indexed by dense id. */
export class GrowableColumns {
  keys = new Float64Array(1024);
  ties = new Uint32Array(1024);
  cells = new Int32Array(1024);

  ensure(id: number): void {
    if (id < this.keys.length) return;
    let cap = this.keys.length;
    while (cap <= id) cap *= 2;
    const k = new Float64Array(cap);
    k.set(this.keys);
    const t = new Uint32Array(cap);
    t.set(this.ties);
    const c = new Int32Array(cap);
    c.set(this.cells);
    this.keys = k;
    this.ties = t;
    this.cells = c;
  }
}
