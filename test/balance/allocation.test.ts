import { describe, expect, it } from 'vitest';
import {
  allocate,
  allocationWeights,
  nominalShares,
  waterLevel,
} from '../../shared/balance/allocation';
import type { Allocation } from '../../shared/contracts/config';

/** [mode, n, supply, expected quotas] */
const CASES: [Allocation, number, number[], number[]][] = [
  ['equal', 9, [10, 10, 10], [3, 3, 3]],
  ['equal', 10, [10, 10, 10], [4, 3, 3]],
  ['equal', 30, [100, 2, 100], [14, 2, 14]],
  ['equal', 12, [1, 2, 100], [1, 2, 9]],
  ['equal', 50, [10, 10, 10], [10, 10, 10]],
  ['equal', 0, [5, 5], [0, 0]],
  ['equal', 7, [7], [7]],
  ['proportional', 10, [60, 30, 10], [6, 3, 1]],
  ['proportional', 5, [50, 30, 20], [3, 1, 1]],
  ['proportional', 100, [60, 30, 10], [60, 30, 10]],
  ['inverse-frequency', 10, [100, 50, 25], [1, 3, 6]],
  ['inverse-frequency', 20, [100, 50, 2], [6, 12, 2]],
];

describe('allocate', () => {
  it.each(CASES)('%s: n=%i over %j → %j', (mode, n, supply, expected) => {
    const q = allocate(n, supply, allocationWeights(mode, supply));
    expect(q).toEqual(expected);
  });

  it.each(CASES)('%s: n=%i over %j sums exactly and never exceeds supply', (mode, n, supply) => {
    const q = allocate(n, supply, allocationWeights(mode, supply));
    const total = supply.reduce((a, b) => a + b, 0);
    expect(q.reduce((a, b) => a + b, 0)).toBe(Math.min(n, total));
    q.forEach((x, i) => {
      expect(Number.isInteger(x)).toBe(true);
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThanOrEqual(supply[i]!);
    });
  });

  it('redistributes a short stratum to the others, equally', () => {
    const q = allocate(300, [1000, 40, 1000, 1000], [1, 1, 1, 1]);
    expect(q[1]).toBe(40);
    expect(q[0]! + q[2]! + q[3]!).toBe(260);
    expect(Math.max(q[0]!, q[2]!, q[3]!) - Math.min(q[0]!, q[2]!, q[3]!)).toBeLessThanOrEqual(1);
  });

  it('is exact and balanced on random cases', () => {
    let s = 12345;
    const rand = (k: number) => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % k;
    for (let t = 0; t < 300; t++) {
      const supply = Array.from({ length: 1 + rand(8) }, () => rand(200));
      const n = rand(600);
      const q = allocate(n, supply, allocationWeights('equal', supply));
      const total = supply.reduce((a, b) => a + b, 0);
      expect(q.reduce((a, b) => a + b, 0)).toBe(Math.min(n, total));
      // Equal allocation: every stratum not fully taken gets within one of the largest quota.
      const top = Math.max(...q);
      q.forEach((x, i) => {
        if (x < supply[i]!) expect(top - x).toBeLessThanOrEqual(1);
      });
    }
  });
});

describe('waterLevel', () => {
  it('is Infinity when supply cannot fill n', () => {
    expect(waterLevel(10, [3, 3], [1, 1]).level).toBe(Infinity);
  });
  it('falls as supply grows (what bounds the streaming balancer)', () => {
    const a = waterLevel(100, [50, 50, 50], [1, 1, 1]).level;
    const b = waterLevel(100, [50, 80, 50], [1, 1, 1]).level;
    const c = waterLevel(100, [90, 80, 70], [1, 1, 1]).level;
    expect(b).toBeLessThanOrEqual(a);
    expect(c).toBeLessThanOrEqual(b);
  });
});

describe('nominalShares', () => {
  it('splits n by weight', () => {
    expect(nominalShares(90, [1, 1, 1])).toEqual([30, 30, 30]);
    expect(nominalShares(10, [3, 1])).toEqual([7.5, 2.5]);
  });
});
