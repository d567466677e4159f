import { describe, expect, it } from 'vitest';
import {
  before,
  CandidateBuffer,
  selectSmallest,
  type Candidate,
} from '../../shared/balance/candidates';
import { FingerprintTable } from '../../shared/util/fptable';
import { hash64 } from '../../shared/util/hash';
import { nthSmallest } from '../../shared/balance/balancer';

const cand = (key: number, id = `id${key}`, tie = 0): Candidate => ({ key, tie, id, dead: false });

describe('selectSmallest', () => {
  it('puts the k smallest first, for many random arrays and every k', () => {
    let s = 7;
    const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let t = 0; t < 60; t++) {
      const items = Array.from({ length: 1 + Math.floor(rand() * 200) }, (_, i) =>
        cand(Math.floor(rand() * 50), `x${i}`),
      );
      const sorted = items.slice().sort((a, b) => (before(a, b) ? -1 : 1));
      const k = Math.floor(rand() * items.length) + 1;
      const copy = items.slice();
      selectSmallest(copy, k);
      const firstK = copy.slice(0, k).sort((a, b) => (before(a, b) ? -1 : 1));
      expect(firstK.map((c) => c.id)).toEqual(sorted.slice(0, k).map((c) => c.id));
    }
  });

  it('orders by key, then tie, then id', () => {
    expect(before(cand(1, 'b'), cand(2, 'a'))).toBe(true);
    expect(before({ key: 1, tie: 1, id: 'a' }, { key: 1, tie: 2, id: 'a' })).toBe(true);
    expect(before(cand(1, 'a'), cand(1, 'b'))).toBe(true);
    expect(before(cand(1, 'a'), cand(1, 'a'))).toBe(false);
  });
});

describe('CandidateBuffer', () => {
  it('keeps the smallest keys of a stream and turns away what can no longer be selected', () => {
    const buf = new CandidateBuffer<Candidate>();
    const dropped: Candidate[] = [];
    for (let i = 999; i >= 0; i--) {
      const c = cand((i * 7919) % 1000, `k${i}`);
      if (buf.admits(c.key, c.tie, c.id)) buf.add(c, 10, (d) => dropped.push(d));
    }
    buf.compact(10, (d) => dropped.push(d));
    expect(buf.sorted().map((c) => c.key)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(buf.minDropped!.key).toBeGreaterThanOrEqual(10);
    expect(buf.admits(10_000, 0, 'z')).toBe(false);
    expect(dropped.every((d) => d.key >= 10)).toBe(true);
  });

  it('leaves dead candidates out', () => {
    const buf = new CandidateBuffer<Candidate>();
    const a = cand(1);
    buf.add(a, 5, () => undefined);
    buf.add(cand(2), 5, () => undefined);
    a.dead = true;
    expect(buf.sorted().map((c) => c.key)).toEqual([2]);
  });
});

describe('FingerprintTable', () => {
  it('gives dense ids, tells new from seen, and survives growth', () => {
    const t = new FingerprintTable(4);
    const ids: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const [hi, lo] = hash64(`s${i}`);
      const r = t.intern(hi, lo);
      expect(r).toBeLessThan(0);
      ids.push(-r - 1);
    }
    expect(ids).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    for (let i = 0; i < 5000; i += 97) {
      const [hi, lo] = hash64(`s${i}`);
      expect(t.intern(hi, lo)).toBe(i);
    }
    const { hi, lo } = t.export();
    expect([hi[42], lo[42]]).toEqual(hash64('s42'));
    expect(t.size).toBe(5000);
  });
});

describe('nthSmallest (select: the q-th smallest key of a cell)', () => {
  it('gives the k-th smallest, for random arrays with many equal keys and every k', () => {
    let s = 11;
    const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let t = 0; t < 80; t++) {
      const n = 1 + Math.floor(rand() * 150);
      const spread = t % 2 === 0 ? 5 : 1e6;
      const keys = Float64Array.from({ length: n }, () => Math.floor(rand() * spread) / spread);
      const sorted = keys.slice().sort();
      for (let k = 0; k < n; k++) expect(nthSmallest(keys.slice(), k)).toBe(sorted[k]);
    }
  });
});
