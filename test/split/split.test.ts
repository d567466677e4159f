import { describe, expect, it } from 'vitest';
import {
  SplitInputError,
  SplitSharesError,
  apportion,
  assignSplits,
  checkShares,
  parseShares,
  type SplitInput,
} from '../../shared/split';
import { Rng } from '../../shared/util/prng';

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const r = new Rng(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Conversations of 1-6 samples, mixed labels, some near-duplicate clusters across conversations. */
function selection(conversations: number, seed = 1): SplitInput[] {
  const r = new Rng(seed);
  const out: SplitInput[] = [];
  for (let c = 0; c < conversations; c++) {
    const size = r.weighted([0.6, 0.2, 0.1, 0.05, 0.03, 0.02]) + 1;
    for (let k = 0; k < size; k++) {
      const s: SplitInput = {
        id: `c${c}-${k}`,
        conversationId: `c${c}`,
        label: r.chance(0.5) ? 0 : 1,
      };
      if (r.chance(0.05)) s.clusterId = `dup${r.int(0, 40)}`;
      out.push(s);
    }
  }
  return out;
}

describe('parseShares', () => {
  it('reads three shares', () => {
    expect(parseShares('0.9,0.05,0.05')).toEqual([0.9, 0.05, 0.05]);
    expect(parseShares(' 0.8 , 0.1 ,0.1')).toEqual([0.8, 0.1, 0.1]);
    expect(parseShares('1,0,0')).toEqual([1, 0, 0]);
    // 0.7 + 0.2 + 0.1 is 0.9999999999999999 in floating point: within 1e-9.
    expect(parseShares('0.7,0.2,0.1')).toEqual([0.7, 0.2, 0.1]);
  });

  it.each([
    ['0.9,0.1', /--split: expected 3 shares, got 2/],
    ['0.9,0.05,0.04', /--split: shares sum to 0\.99/],
    ['1.1,-0.05,-0.05', /--split: -0\.05 is negative/],
    ['0.9,abc,0.05', /--split: "abc" is not a number/],
    ['0.9,,0.1', /--split: "" is not a number/],
    ['0x1,0,0', /--split: "0x1" is not a number/],
  ])('rejects %j naming the flag', (text, message) => {
    expect(() => parseShares(text)).toThrow(SplitSharesError);
    expect(() => parseShares(text)).toThrow(message);
  });

  it('names the field it was given', () => {
    expect(() => checkShares([0.5, 0.5, 0.5], 'split')).toThrow(/^split: shares sum to 1\.5/);
    try {
      parseShares('1', 'body.split');
    } catch (e) {
      expect((e as SplitSharesError).flag).toBe('body.split');
    }
  });
});

describe('apportion', () => {
  it.each([
    [100, [0.9, 0.05, 0.05], [90, 5, 5]],
    [10, [0.9, 0.05, 0.05], [9, 1, 0]],
    [7, [0.5, 0.25, 0.25], [3, 2, 2]], // remainders .5 .75 .75: the two largest win
    [3, [1 / 3, 1 / 3, 1 / 3], [1, 1, 1]],
    [0, [0.8, 0.1, 0.1], [0, 0, 0]],
  ])('%i over %j → %j', (n, shares, expected) => {
    expect(apportion(n, shares)).toEqual(expected);
  });
});

describe('assignSplits', () => {
  it('holds the exact class ratio in every split on a balanced input of singletons', () => {
    const samples: SplitInput[] = Array.from({ length: 1000 }, (_, i) => ({
      id: `s${i}`,
      conversationId: `c${i}`,
      label: i % 2,
    }));
    const r = assignSplits(samples, [0.9, 0.05, 0.05], 7);
    expect(r.counts).toEqual({
      train: { '0': 450, '1': 450 },
      validation: { '0': 25, '1': 25 },
      test: { '0': 25, '1': 25 },
    });
    expect(r.deviation.total).toBe(0);
  });

  it('never puts one conversation or one near-duplicate cluster in two splits', () => {
    const samples = selection(3000);
    const r = assignSplits(samples, [0.8, 0.1, 0.1], 3);
    const seen = new Map<string, string>();
    for (const s of samples) {
      const split = r.assignment.get(s.id)!;
      for (const key of [`conv:${s.conversationId}`, s.clusterId ? `dup:${s.clusterId}` : '']) {
        if (!key) continue;
        expect(seen.get(key) ?? split).toBe(split);
        seen.set(key, split);
      }
    }
    // Clusters join conversations: fewer groups than conversations.
    expect(r.groups).toBeLessThan(3000);
  });

  it('meets the per-split class targets exactly when singletons can fill the gaps', () => {
    const r = assignSplits(selection(3000), [0.8, 0.1, 0.1], 3);
    expect(r.deviation.total).toBe(0);
    expect(r.counts).toEqual(r.targets);
  });

  it('reports the deviation when groups cannot meet the targets', () => {
    // One conversation of 10 and nothing else: it lands whole in one split.
    const samples = Array.from({ length: 10 }, (_, i) => ({
      id: `s${i}`,
      conversationId: 'c',
      label: 0,
    }));
    const r = assignSplits(samples, [0.8, 0.1, 0.1]);
    expect(r.counts).toEqual({ train: { '0': 10 }, validation: { '0': 0 }, test: { '0': 0 } });
    expect(r.targets).toEqual({ train: { '0': 8 }, validation: { '0': 1 }, test: { '0': 1 } });
    expect(r.deviation.total).toBe(4);
    expect(r.deviation.bySplit.train).toEqual({ '0': 2 });
  });

  it('gives the same assignment for any row order; another seed gives another', () => {
    const samples = selection(2000, 5);
    const ref = assignSplits(samples, [0.9, 0.05, 0.05], 11);
    const sorted = (m: Map<string, string>) => JSON.stringify([...m].sort());
    for (const seed of [1, 2]) {
      const r = assignSplits(shuffled(samples, seed), [0.9, 0.05, 0.05], 11);
      expect(sorted(r.assignment)).toBe(sorted(ref.assignment));
      expect(r.counts).toEqual(ref.counts);
    }
    expect(sorted(assignSplits(samples, [0.9, 0.05, 0.05], 12).assignment)).not.toBe(
      sorted(ref.assignment),
    );
  });

  it('rejects bad shares and an id seen twice', () => {
    expect(() => assignSplits([], [0.5, 0.6, 0])).toThrow(SplitSharesError);
    const dup = [
      { id: 'a', conversationId: 'c', label: 0 },
      { id: 'a', conversationId: 'd', label: 1 },
    ];
    expect(() => assignSplits(dup, [0.8, 0.1, 0.1])).toThrow(SplitInputError);
  });
});
