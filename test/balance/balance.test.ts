import { describe, expect, it } from 'vitest';
import {
  shrinkTargets,
  StreamingBalancer,
  type BalanceResult,
} from '../../shared/balance/balancer';
import { parseBalanceConfig, type BalanceConfigInput } from '../../shared/contracts/config';
import type { AnnotatedRow } from '../../shared/contracts/rows';
import {
  InexactSelectionError,
  NearDedupRefillError,
  NoValidRowsError,
  ShortfallError,
} from '../../shared/errors/index';
import { seed32, unitHash } from '../../shared/util/hash';
import { annotatedRows, row, shuffled } from '../support/rows';

function balance(rows: readonly AnnotatedRow[], cfg: BalanceConfigInput): BalanceResult {
  const b = new StreamingBalancer(parseBalanceConfig(cfg));
  for (const r of rows) b.offer(r);
  return b.finish();
}

/** Through addLine, as the CLI feeds it. */
function balanceLines(lines: readonly string[], cfg: BalanceConfigInput): BalanceResult {
  const b = new StreamingBalancer(parseBalanceConfig(cfg));
  lines.forEach((l, i) => b.addLine(l, i + 1));
  return b.finish();
}

const bytes = (r: BalanceResult) => r.train.map((l) => JSON.stringify(l)).join('\n');
const count = (r: BalanceResult, label: 0 | 1) => r.train.filter((l) => l.label === label).length;

// ~12k annotated rows with known labels; reasoning is the minority.
const ROWS = annotatedRows({ conversations: 2500, seed: 11 });

describe('exact class ratios', () => {
  it.each([
    [0.5, 1000, 500, 500],
    [0.7, 1000, 700, 300],
    [0.3, 999, 300, 699],
    ['70:30', 10, 7, 3],
  ] as const)('ratio %s of %i gives %i reasoning + %i non-reasoning', (ratio, total, n0, n1) => {
    const r = balance(ROWS, { total, ratio });
    expect(count(r, 0)).toBe(n0);
    expect(count(r, 1)).toBe(n1);
    expect(r.manifest.selected.total).toBe(total);
    expect(r.manifest.selected.byLabel).toEqual({ '0': n0, '1': n1 });
  });

  it('repeats no id', () => {
    const r = balance(ROWS, { total: 1500, ratio: 0.5 });
    expect(new Set(r.train.map((l) => l.id)).size).toBe(r.train.length);
  });

  it('spreads each class equally over the turn-count buckets when supply allows', () => {
    const r = balance(ROWS, { total: 600, ratio: 0.5 });
    for (const label of ['0', '1'] as const) {
      expect(r.manifest.selected.byLabelStratum[label]).toEqual({ A: 100, B: 100, C: 100 });
    }
    expect(r.manifest.shortfalls.strata).toEqual([]);
  });

  it('redistributes a short bucket and reports it', () => {
    // About the allocation's redistribution: near-dedup off, so supply is what is delivered.
    const supply = balance(ROWS, { total: 10 }).manifest.input.byLabelStratum['0']!;
    const [shortKey, shortCell] = Object.entries(supply).sort(
      (a, b) => a[1].unique - b[1].unique,
    )[0]!;
    const n0 = 3 * shortCell.unique + 300; // more than an equal share of the short bucket
    const r = balance(ROWS, { total: 2 * n0, ratio: 0.5, nearDedup: false });
    const sel = r.manifest.selected.byLabelStratum['0']!;
    expect(sel[shortKey]).toBe(shortCell.unique);
    const others = Object.entries(sel)
      .filter(([k]) => k !== shortKey)
      .map(([, v]) => v);
    expect(others.reduce((a, b) => a + b, 0)).toBe(n0 - shortCell.unique);
    expect(Math.max(...others) - Math.min(...others)).toBeLessThanOrEqual(1);
    expect(r.manifest.shortfalls.strata).toContainEqual(
      expect.objectContaining({
        label: 0,
        stratum: shortKey,
        available: shortCell.unique,
        action: 'redistributed',
      }),
    );
  });

  it('excludes and counts rows outside the buckets', () => {
    const r = balance(ROWS, { total: 100 });
    const outside = ROWS.filter((x) => x.turnCount < 3 || x.turnCount > 20).length;
    expect(outside).toBeGreaterThan(0);
    expect(r.manifest.input.outOfStrata).toBe(outside);
    expect(r.train.every((l) => l.turnCount >= 3 && l.turnCount <= 20)).toBe(true);
  });
});

describe('shortfalls', () => {
  // 30 reasoning rows, 300 non-reasoning, all distinct messages, all in bucket A.
  const small = [
    ...Array.from({ length: 30 }, (_, i) =>
      row({ conversationId: `r${i}`, label: 0, userMessage: `hard ${i}` }),
    ),
    ...Array.from({ length: 300 }, (_, i) =>
      row({ conversationId: `f${i}`, label: 1, userMessage: `easy ${i}` }),
    ),
  ];

  it('shrink (default) keeps the ratio exact and delivers fewer, reported', () => {
    const r = balance(small, { total: 100, ratio: 0.5 });
    expect(count(r, 0)).toBe(30);
    expect(count(r, 1)).toBe(30);
    expect(r.manifest.shortfalls.classes).toEqual([
      expect.objectContaining({
        label: 0,
        target: 50,
        available: 30,
        delivered: 30,
        action: 'shrunk',
      }),
      expect.objectContaining({
        label: 1,
        target: 50,
        available: 300,
        delivered: 30,
        action: 'shrunk',
      }),
    ]);
  });

  it('shrink at 70:30 keeps 70:30', () => {
    const r = balance(small, { total: 100, ratio: 0.7 });
    expect(count(r, 0) / r.train.length).toBeCloseTo(0.7, 2);
    expect(count(r, 0)).toBeLessThanOrEqual(30);
  });

  it('upsample fills the target with marked copies of the short class', () => {
    const r = balance(small, { total: 100, ratio: 0.5, onShortfall: 'upsample' });
    expect(count(r, 0)).toBe(50);
    expect(count(r, 1)).toBe(50);
    const copies = r.train.filter((l) => l.upsampled);
    expect(copies).toHaveLength(20);
    for (const c of copies) {
      expect(c.label).toBe(0);
      expect(c.id).toMatch(/#dup\d+$/);
      expect(r.train.some((l) => l.id === c.duplicateOf)).toBe(true);
    }
    expect(new Set(r.train.map((l) => l.id)).size).toBe(100);
    expect(r.manifest.selected.upsampled).toBe(20);
  });

  it('fail throws a ShortfallError naming both classes', () => {
    expect(() => balance(small, { total: 100, onShortfall: 'fail' })).toThrow(ShortfallError);
    expect(() => balance(small, { total: 100, onShortfall: 'fail' })).toThrow(/reasoning 30 of 50/);
  });

  it.each([
    [100, 0.5, [30, 300], [30, 30]],
    [100, 0.7, [30, 300], [30, 13]],
    [100, 0.5, [300, 300], [50, 50]],
    [10, 0.5, [0, 5], [0, 0]],
  ] as const)('shrinkTargets(%i, %f, %j) = %j', (total, ratio, avail, expected) => {
    expect(shrinkTargets(total, ratio, avail)).toEqual(expected);
  });
});

describe('deduplication', () => {
  it('removes exact-duplicate user messages before sampling, keeping one per message', () => {
    const rows = Array.from({ length: 200 }, (_, i) =>
      row({ conversationId: `c${i}`, label: 1, userMessage: `msg ${i % 50}` }),
    );
    const r = balance(rows, { total: 100, ratio: 0 });
    expect(r.train).toHaveLength(50);
    expect(new Set(r.train.map((l) => l.messages.at(-1)!.content)).size).toBe(50);
    expect(r.manifest.input.duplicatesRemoved).toBe(150);
  });

  it('keeps the same representative whatever the order', () => {
    const rows = Array.from({ length: 400 }, (_, i) =>
      row({
        conversationId: `c${i}`,
        turnCount: 3 + (i % 15),
        label: i % 3 === 0 ? 0 : 1,
        userMessage: `m${i % 37}`,
      }),
    );
    const a = balance(rows, { total: 60, ratio: 0.5 });
    const b = balance(shuffled(rows, 3), { total: 60, ratio: 0.5 });
    expect(bytes(b)).toBe(bytes(a));
  });

  it('can be turned off', () => {
    const rows = Array.from({ length: 20 }, (_, i) =>
      row({ conversationId: `c${i}`, userMessage: 'same' }),
    );
    // Exact dedup alone (20 identical messages are also near-duplicates).
    expect(
      balance(rows, { total: 20, ratio: 0, dedup: false, nearDedup: false }).train,
    ).toHaveLength(20);
    expect(balance(rows, { total: 20, ratio: 0 }).train).toHaveLength(1);
  });
});

describe('validation split by conversation', () => {
  it('puts no conversation in both files and keeps the total', () => {
    const b = new StreamingBalancer(
      parseBalanceConfig({ total: 2000, validation: 0.2, stratify: ['position'] }),
    );
    for (const r of ROWS) b.offer(r);
    const r = b.finish();
    const train = new Set(r.train.map((l) => l.conversationId));
    const val = new Set(r.validation.map((l) => l.conversationId));
    expect([...val].filter((c) => train.has(c))).toEqual([]);
    expect(r.train.length + r.validation.length).toBe(2000);
    // The share and the class ratio hold in each split (shared/split assignSplits).
    expect(r.validation).toHaveLength(400);
    expect(r.validation.filter((l) => l.label === 0)).toHaveLength(200);
    expect(r.manifest.split).toMatchObject({
      train: 1600,
      validation: 400,
      validationConversations: val.size,
      byLabel: { train: { '0': 800, '1': 800 }, validation: { '0': 200, '1': 200 } },
    });
  });

  it('writes a test split too, and splits a shuffled input the same way', () => {
    const config = parseBalanceConfig({ total: 1000, validation: 0.1, test: 0.1, stratify: [] });
    const run = (rows: typeof ROWS) => {
      const b = new StreamingBalancer(config);
      for (const r of rows) b.offer(r);
      return b.finish();
    };
    const a = run(ROWS);
    const b = run([...ROWS].reverse());
    expect(a.test).toHaveLength(100);
    expect(a.manifest.split).toMatchObject({ train: 800, validation: 100, test: 100 });
    expect(b.test.map((l) => l.id)).toEqual(a.test.map((l) => l.id));
    expect(b.validation.map((l) => l.id)).toEqual(a.validation.map((l) => l.id));
    const test = new Set(a.test.map((l) => l.conversationId));
    expect(a.train.filter((l) => test.has(l.conversationId))).toEqual([]);
  });
});

describe('quarantine', () => {
  it('sets bad lines aside with line number and reason, counts them, and goes on', () => {
    const good = ROWS.slice(0, 300).map((r) => JSON.stringify(r));
    const lines = [
      ...good.slice(0, 100),
      '{not json',
      JSON.stringify({ ...ROWS[0], sampleId: 'x1', label: 2 }),
      JSON.stringify({ ...ROWS[0], sampleId: 'x2', turnIndex: 99, turnCount: 3 }),
      JSON.stringify({ ...ROWS[0], sampleId: 'x3', numRequests: -1 }),
      '',
      good[5]!, // same sampleId again
      ...good.slice(100),
    ];
    const b = new StreamingBalancer(parseBalanceConfig({ total: 50 }));
    const records = lines.map((l, i) => b.addLine(l, i + 1)).filter((q) => q !== null);
    expect(records.map((q) => [q.line, q.reason])).toEqual([
      [101, 'invalid_json'],
      [102, 'invalid_label'],
      [103, 'turn_index_exceeds_turn_count'],
      [104, 'out_of_range'],
      [106, 'duplicate_sample_id'],
    ]);
    expect(records[1]!.detail).toMatch(/label/);
    const r = b.finish();
    expect(r.manifest.quarantine).toEqual({
      total: 5,
      byReason: {
        duplicate_sample_id: 1,
        invalid_json: 1,
        invalid_label: 1,
        out_of_range: 1,
        turn_index_exceeds_turn_count: 1,
      },
    });
    expect(r.manifest.input.valid).toBe(300);
  });

  it('fails clearly when nothing valid is left', () => {
    expect(() => balanceLines(['{', '[]', 'null'], { total: 10 })).toThrow(NoValidRowsError);
    expect(() => balanceLines([JSON.stringify(row({ turnCount: 1 }))], { total: 10 })).toThrow(
      /outside the strata/,
    );
  });
});

describe('determinism and order independence', () => {
  it('gives byte-identical output for the same rows, config and seed', () => {
    expect(bytes(balance(ROWS, { total: 1000, seed: 5 }))).toBe(
      bytes(balance(ROWS, { total: 1000, seed: 5 })),
    );
  });

  it('gives a different sample for a different seed', () => {
    expect(bytes(balance(ROWS, { total: 1000, seed: 5 }))).not.toBe(
      bytes(balance(ROWS, { total: 1000, seed: 6 })),
    );
  });

  it.each([1, 2, 3])('gives the same bytes for a shuffled copy (shuffle %i)', (s) => {
    const cfg: BalanceConfigInput = {
      total: 1200,
      ratio: 0.7,
      stratify: ['turnBucket', 'complexity'],
    };
    expect(bytes(balance(shuffled(ROWS, s), cfg))).toBe(bytes(balance(ROWS, cfg)));
  });

  it('gives the same manifest counts for a shuffled copy', () => {
    const a = balance(ROWS, { total: 800 }).manifest;
    const b = balance(shuffled(ROWS, 9), { total: 800 }).manifest;
    expect(b.input).toEqual(a.input);
    expect(b.selected).toEqual(a.selected);
    expect(b.weights).toEqual(a.weights);
  });
});

describe('merging parts (what worker threads and a distributed fan-in do)', () => {
  it.each([2, 3, 5])('%i parts merged give the bytes of one pass', (parts) => {
    const cfg = parseBalanceConfig({
      total: 1500,
      ratio: 0.5,
      stratify: ['turnBucket', 'modelFamily'],
    });
    const mixed = shuffled(ROWS, parts);
    const balancers = Array.from({ length: parts }, () => new StreamingBalancer(cfg));
    mixed.forEach((r, i) => balancers[i % parts]!.offer(r));
    const [first, ...rest] = balancers;
    for (const b of rest) first!.merge(b.snapshot());
    expect(bytes(first!.finish())).toBe(bytes(balance(ROWS, cfg)));
  });

  it('refuses to merge parts that share a sampleId', () => {
    const cfg = parseBalanceConfig({ total: 10 });
    const a = new StreamingBalancer(cfg);
    const b = new StreamingBalancer(cfg);
    a.offer(ROWS[0]!);
    b.offer(ROWS[0]!);
    expect(() => a.merge(b.snapshot())).toThrow(/sampleId/);
  });
});

describe('streaming the dataset out', () => {
  it('finishInto hands the sink exactly the lines finish returns, split alike', async () => {
    const cfg = parseBalanceConfig({ total: 900, validation: 0.2 });
    const a = new StreamingBalancer(cfg);
    const b = new StreamingBalancer(cfg);
    for (const r of ROWS) {
      a.offer(r);
      b.offer(r);
    }
    const whole = a.finish();
    const got: Record<string, string[]> = { train: [], validation: [] };
    const streamed = await b.finishInto((line, split) => got[split]!.push(JSON.stringify(line)));
    expect(got.train).toEqual(whole.train.map((l) => JSON.stringify(l)));
    expect(got.validation).toEqual(whole.validation.map((l) => JSON.stringify(l)));
    expect(streamed.train).toEqual([]);
    expect(streamed.manifest).toEqual(whole.manifest);
  });
});

describe('memory bound', () => {
  it('keeps candidates in proportion to the target, not the input', () => {
    const big = annotatedRows({ rows: 40_000, seed: 3 });
    const b = new StreamingBalancer(parseBalanceConfig({ total: 400 }));
    for (const r of big) b.offer(r);
    // 2 classes × 3 buckets, each cell ≤ 1.5 × (its bound + margin) + 16.
    expect(b.candidateCount).toBeLessThan(2 * 3 * Math.ceil(1.5 * (200 + 64) + 16));
    expect(b.finish().train).toHaveLength(400);
  });
});

describe('weights (Strategy 4)', () => {
  it('are 1 / share of each stratum in the distinct input, written on every line', () => {
    const r = balance(ROWS, { total: 600 });
    const w = r.manifest.weights;
    const inA =
      r.manifest.input.byLabelStratum['0']!.A!.unique +
      r.manifest.input.byLabelStratum['1']!.A!.unique;
    const total = r.manifest.input.byLabel['0']! + r.manifest.input.byLabel['1']!;
    expect(w.A!.weight).toBeCloseTo(total / inA, 4);
    expect(w.C!.weight).toBeGreaterThan(w.A!.weight); // rarer bucket, larger weight
    for (const l of r.train) expect(l.weight).toBe(w[l.strata.turnBucket!]!.weight);
  });
});

describe('inexact selection is loud, never silent', () => {
  it('throws when deduplication took more retained samples from a stratum than its margin', () => {
    const seed = seed32(42);
    const key = (id: string) => unitHash(id, seed);
    // Bucket A: 2000 distinct messages. Its candidates are the smallest keys.
    const a = Array.from({ length: 2000 }, (_, i) =>
      row({ conversationId: `a${i}`, turnCount: 3, label: 1, userMessage: `m${i}` }),
    );
    // Later, in bucket C, a copy of each of A's 300 smallest-key messages, under an id
    // whose key is smaller still: each copy becomes its message's representative.
    const smallest = a
      .map((r) => ({ r, k: key(`${r.conversationId}:1`) }))
      .sort((x, y) => x.k - y.k)
      .slice(0, 300);
    const copies = smallest.map(({ r, k }, i) => {
      let j = 0;
      while (key(`b${i}-${j}:1`) >= k) j++;
      return row({
        conversationId: `b${i}-${j}`,
        turnCount: 12,
        label: 1,
        userMessage: r.userMessage,
      });
    });
    expect(() => balance([...a, ...copies], { total: 2, ratio: 0, nearDedup: false })).toThrow(
      InexactSelectionError,
    );
    // With near-dedup (the default) the walk asks for a wider margin instead (growing
    // geometrically), and a scan with a wide enough margin selects exactly.
    const margins: number[] = [];
    let done: BalanceResult | null = null;
    for (let pass = 1; done === null && pass <= 8; pass++) {
      const b = new StreamingBalancer(parseBalanceConfig({ total: 2, ratio: 0 }), {
        margin: margins.at(-1) ?? 64,
      });
      for (const r of [...a, ...copies]) b.offer(r);
      try {
        done = b.finish();
      } catch (err) {
        expect(err).toBeInstanceOf(NearDedupRefillError);
        margins.push((err as NearDedupRefillError).margin);
      }
    }
    expect(margins.length).toBeGreaterThan(0);
    expect(margins).toEqual([...margins].sort((x, y) => x - y));
    const huge = new StreamingBalancer(parseBalanceConfig({ total: 2, ratio: 0 }), {
      margin: 100_000,
    });
    for (const r of [...a, ...copies]) huge.offer(r);
    expect(done!.train).toHaveLength(2);
    expect(bytes(done!)).toBe(bytes(huge.finish()));
    // Without deduplication nothing is taken away, and the selection is exact.
    expect(balance([...a, ...copies], { total: 2, ratio: 0, dedup: false }).train).toHaveLength(2);
  });
});
