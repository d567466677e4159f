/**
 * Near-duplicate removal in the balancer's selection walk (docs/dedup.md "In the build"):
 * one global sampling-key walk, removal against selected samples only, refill passes
 * when a stratum runs out, the same bytes for any row order and any margin.
 */
import { describe, expect, it } from 'vitest';
import { StreamingBalancer, type BalanceResult } from '../../shared/balance/balancer';
import { parseBalanceConfig, type BalanceConfigInput } from '../../shared/contracts/config';
import type { AnnotatedRow } from '../../shared/contracts/rows';
import { NearDedupRefillError } from '../../shared/errors/index';
import { dedupTexts } from '../../shared/dedup/index';
import { unitHash, seed32 } from '../../shared/util/hash';
import { row, shuffled } from '../support/rows';

const WORDS = (
  'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november ' +
  'oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu parser ' +
  'lexer router judge shard queue blob table index cache token model ratio label stratum'
).split(' ');

/** Distinct prompts (no two near-duplicates), one conversation each. */
function distinct(n: number, label: 0 | 1, prefix: string, turnCount = 4): AnnotatedRow[] {
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from(
      { length: 9 },
      (_, k) => WORDS[Math.floor(unitHash(`${prefix}${i}/${k}`, 7) * WORDS.length)]!,
    );
    return row({
      conversationId: `${prefix}${i}`,
      label,
      turnCount,
      userMessage: words.join(' '),
    });
  });
}

/** Balances with refill passes, as the drivers do; the passes it took. */
function balance(
  rows: readonly AnnotatedRow[],
  cfg: BalanceConfigInput,
  margin?: number,
): { result: BalanceResult; passes: number } {
  let m = margin;
  for (let pass = 1; pass <= 8; pass++) {
    const b = new StreamingBalancer(parseBalanceConfig(cfg), {
      ...(m !== undefined ? { margin: m } : {}),
      pass,
    });
    for (const r of rows) b.offer(r);
    try {
      return { result: b.finish(), passes: pass };
    } catch (err) {
      if (!(err instanceof NearDedupRefillError)) throw err;
      m = err.margin;
    }
  }
  throw new Error('no pass gave a provable selection');
}

const bytes = (r: BalanceResult) =>
  [...r.train, ...r.validation, ...r.test].map((l) => JSON.stringify(l)).join('\n');

describe('near-duplicate removal in the selection walk', () => {
  const planted = [
    row({ conversationId: 'p1', label: 0, userMessage: 'fix the test in foo.ts line 12' }),
    row({ conversationId: 'p2', label: 0, userMessage: 'fix the test in foo.ts line 13' }),
  ];
  const rows = [...distinct(200, 0, 'r'), ...distinct(200, 1, 'n'), ...planted];

  it('removes one of a planted near-duplicate pair and names the kept one', () => {
    const { result } = balance(rows, { total: 402, onShortfall: 'shrink', ratio: 0.5 });
    const ids = new Set(result.train.map((l) => l.id));
    const d = result.duplicates.filter((x) => x.id.startsWith('p') || x.keptId.startsWith('p'));
    expect(d).toHaveLength(1);
    const seed = seed32(42);
    const [first, second] = ['p1:1', 'p2:1'].sort((a, b) => unitHash(a, seed) - unitHash(b, seed));
    // The smaller sampling key is kept.
    expect(d[0]).toMatchObject({ id: second, keptId: first });
    expect(d[0]!.similarity).toBeGreaterThanOrEqual(0.8);
    expect(ids.has(first!)).toBe(true);
    expect(ids.has(second!)).toBe(false);
    const m = result.manifest.nearDuplicates!;
    expect(m.removed).toBe(result.duplicates.length);
    expect(m.threshold).toBe(0.8);
    expect(m.note).toMatch(/not a census/);
    expect(m.byLabelStratum['0']!.A).toBe(1);
  });

  it('keeps both with the off switch, and a higher threshold than the pair keeps both too', () => {
    const off = balance(rows, { total: 402, nearDedup: false }).result;
    expect(off.duplicates).toEqual([]);
    expect(off.manifest.nearDuplicates).toBeUndefined();
    expect(off.train.filter((l) => l.id.startsWith('p'))).toHaveLength(2);
    const sim = dedupTexts(
      planted.map((r, i) => ({ id: String(i), text: r.userMessage })),
      { threshold: 0.5, seed: 42 },
    ).removed[0]!.similarity;
    const strict = balance(rows, { total: 402, dedupThreshold: Math.min(1, sim + 0.02) }).result;
    expect(strict.train.filter((l) => l.id.startsWith('p'))).toHaveLength(2);
  });

  it('leaves no verified near-duplicate pair in the selection', () => {
    const templated = Array.from({ length: 600 }, (_, i) =>
      row({
        conversationId: `t${i}`,
        label: (i % 2) as 0 | 1,
        turnCount: 3 + (i % 15),
        userMessage: `fix the failing test in ${WORDS[i % 4]}.ts at line ${i % 40}`,
      }),
    );
    const { result } = balance(templated, { total: 200 });
    expect(result.duplicates.length).toBeGreaterThan(0);
    const left = dedupTexts(
      result.train.map((l) => ({ id: l.id, text: l.messages.at(-1)!.content })),
      { seed: 42, threshold: 0.8 },
    );
    expect(left.removed).toEqual([]);
    // Every removed sample's kept one is in the selection.
    const ids = new Set(result.train.map((l) => l.id));
    for (const d of result.duplicates) expect(ids.has(d.keptId)).toBe(true);
  });

  it('gives the same bytes and removals for a shuffled input', () => {
    const a = balance(rows, { total: 300, validation: 0.2 }).result;
    const b = balance(shuffled(rows, 3), { total: 300, validation: 0.2 }).result;
    expect(bytes(b)).toBe(bytes(a));
    expect(b.duplicates).toEqual(a.duplicates);
  });

  it('runs out, scans again with a wider margin, and gives the bytes of a huge margin', () => {
    // One stratum whose smallest keys are mostly copies of one prompt: removals eat the margin.
    const copies = Array.from({ length: 3000 }, (_, i) =>
      row({
        conversationId: `k${i}`,
        label: 1,
        turnCount: 7,
        userMessage: `please fix the test in foo.ts line ${i}`,
      }),
    );
    const all = [...copies, ...distinct(300, 1, 'u', 7), ...distinct(300, 0, 'v', 7)];
    const small = balance(all, { total: 400 }, 64);
    expect(small.passes).toBeGreaterThan(1);
    expect(small.result.manifest.nearDuplicates!.passes).toBe(small.passes);
    const huge = balance(all, { total: 400 }, 1_000_000);
    expect(huge.passes).toBe(1);
    expect(bytes(small.result)).toBe(bytes(huge.result));
    expect(small.result.duplicates).toEqual(huge.result.duplicates);
    expect(small.result.manifest.selected.byLabel).toEqual({ '0': 200, '1': 200 });
  });

  it('lowers a stratum that delivered less than its supply and reallocates (deterministic)', () => {
    // Bucket A of label 1: 100 copies of one prompt (one survives); B and C: distinct.
    const a = Array.from({ length: 100 }, (_, i) =>
      row({
        conversationId: `x${i}`,
        label: 1,
        turnCount: 4,
        userMessage: `run the build again please, attempt ${i}`,
      }),
    );
    const all = [
      ...a,
      ...distinct(100, 1, 'b', 7),
      ...distinct(100, 1, 'c', 12),
      ...distinct(300, 0, 'z', 4),
    ];
    const r = balance(all, { total: 180, ratio: 0 }).result;
    const sel = r.manifest.selected.byLabelStratum['1']!;
    expect(sel.A).toBe(1);
    expect(sel.B! + sel.C!).toBe(179);
    expect(r.manifest.selected.total).toBe(180);
    expect(r.manifest.nearDuplicates!.byLabelStratum['1']!.A).toBe(99);
    expect(bytes(balance(shuffled(all, 5), { total: 180, ratio: 0 }).result)).toBe(bytes(r));
  });

  it('with near-dedup off, keeps each near-duplicate pair in one split (clusters to assignSplits)', () => {
    const stems = distinct(40, 0, 'stem', 4);
    const pairs = stems.flatMap((r, i) => [
      row({ ...r, conversationId: `pa${i}`, userMessage: `${r.userMessage} line 12` }),
      row({ ...r, conversationId: `pb${i}`, userMessage: `${r.userMessage} line 13` }),
    ]);
    const all = [...pairs, ...distinct(80, 1, 'o', 4)];
    const r = balance(all, { total: 160, nearDedup: false, validation: 0.5 }).result;
    expect(r.duplicates).toEqual([]);
    const where = new Map<string, string>();
    for (const split of ['train', 'validation'] as const)
      for (const l of r[split]) where.set(l.id, split);
    expect(where.size).toBe(160);
    for (let i = 0; i < 40; i++)
      expect(where.get(`pa${i}:1`), `pair ${i}`).toBe(where.get(`pb${i}:1`));
    expect(r.validation.length).toBeGreaterThan(0);
  });

  it('does not near-dedup upsampled copies', () => {
    const r = balance(distinct(30, 0, 'q'), {
      total: 100,
      ratio: 0.5,
      onShortfall: 'upsample',
    }).result;
    expect(r.manifest.selected.upsampled).toBeGreaterThan(0);
    expect(r.duplicates).toEqual([]);
    expect(r.train.filter((l) => l.label === 0)).toHaveLength(50);
  });
});
