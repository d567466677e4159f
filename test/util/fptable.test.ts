/**
 * FingerprintTable (shared/util/fptable.ts): dense ids in insertion order, colliding
 * fingerprints kept apart, growth and reserve() keep every id, export() gives the
 * fingerprints by id.
 */
import { describe, expect, it } from 'vitest';
import { FingerprintTable } from '../../shared/util/fptable';
import { hash64 } from '../../shared/util/hash';

/** Fingerprints that all hash to the same slot: the same lo, hi differing above the mask. */
const colliding = (n: number) => Array.from({ length: n }, (_, i) => [(i << 20) >>> 0, 7] as const);

describe('FingerprintTable', () => {
  it('keeps colliding fingerprints apart, with their own ids', () => {
    const t = new FingerprintTable(64);
    const keys = colliding(40);
    keys.forEach(([hi, lo], i) => expect(t.intern(hi, lo)).toBe(-(i + 1)));
    keys.forEach(([hi, lo], i) => expect(t.intern(hi, lo)).toBe(i));
    // Same hi, other lo; and the all-ones and zero fingerprints are keys like any other.
    expect(t.intern(0, 8)).toBe(-41);
    expect(t.intern(0xffffffff, 0xffffffff)).toBe(-42);
    expect(t.intern(0, 0)).toBe(-43);
    expect(t.intern(0xffffffff, 0xffffffff)).toBe(41);
    expect(t.size).toBe(43);
  });

  it('grows from a tiny table and keeps every id; export gives the fingerprints by id', () => {
    const t = new FingerprintTable(1);
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const [hi, lo] = hash64(`k${i}`);
      expect(t.intern(hi, lo)).toBe(-(i + 1));
    }
    expect(t.capacity).toBeGreaterThanOrEqual(2 * n);
    for (let i = 0; i < n; i += 7) expect(t.intern(...hash64(`k${i}`))).toBe(i);
    const { hi, lo } = t.export();
    expect(hi.length).toBe(n);
    for (let i = 0; i < n; i += 13) expect([hi[i], lo[i]]).toEqual(hash64(`k${i}`));
    expect(t.size).toBe(n);
  });

  it('reserve() makes room up front: no growth while interning that many', () => {
    const t = new FingerprintTable(4);
    t.intern(1, 2);
    t.intern(3, 4);
    t.reserve(50_000);
    const cap = t.capacity;
    expect(cap).toBeGreaterThanOrEqual(100_000);
    expect(t.intern(1, 2)).toBe(0);
    expect(t.intern(3, 4)).toBe(1);
    for (let i = 2; i < 50_000; i++) expect(t.intern(...hash64(`r${i}`))).toBe(-(i + 1));
    expect(t.capacity).toBe(cap);
    t.reserve(10); // never shrinks
    expect(t.capacity).toBe(cap);
    expect(t.intern(...hash64('r49999'))).toBe(49_999);
    // It grows only past half full.
    for (let i = 50_000; t.size < cap / 2; i++) t.intern(...hash64(`r${i}`));
    expect(t.capacity).toBe(cap);
    t.intern(9, 9);
    expect(t.capacity).toBe(2 * cap);
  });

  it('exports an empty table as empty arrays', () => {
    const { hi, lo } = new FingerprintTable().export();
    expect([hi.length, lo.length]).toEqual([0, 0]);
  });
});
