import { describe, expect, it } from 'vitest';
import {
  BandKeyTable,
  DedupConfigError,
  DedupInputError,
  GreedyDeduper,
  dedupSignatures,
  dedupTexts,
  detectionProbability,
  detectionTable,
  estimatedJaccard,
  jaccard,
  keepKey,
  normalizeText,
  packBatch,
  parseDedupOptions,
  agreementsNeeded,
  permutationCount,
  signatureBytes,
  normalizeTextUnicode,
  shingleSet,
  signSamples,
  unpackBatches,
  type DedupOptionsInput,
} from '../../shared/dedup';
import { generateTelemetry } from '../../shared/source/generate';
import { Rng } from '../../shared/util/prng';

const DISTINCT = [
  'Why does parseConfig in src/config.ts leak memory when traffic spikes above 4000 rps?',
  'Rename handleRequest to processRequest in server/app.py.',
  'What is the syntax for a list comprehension in Python?',
  'Add a docstring to computeTotals in billing/invoice.go.',
  'Plan the migration of the job scheduler from Redis to Kafka with zero downtime.',
  'Fix the typo in the README on line 40.',
  'Bump react to 18.2.',
  'continue',
  'ok',
  'thanks, now run the tests',
  'Convert this YAML snippet to JSON: 12 keys.',
  'Review the security of /api/login: could a user escalate privileges through a crafted JWT?',
];

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const r = new Rng(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Generated prompts plus planted near-duplicates (digit, whitespace, punctuation edits). */
function corpus(n: number, seed = 3): { id: string; text: string }[] {
  const rows: { id: string; text: string }[] = [];
  let i = 0;
  for (const t of generateTelemetry({ rows: n, seed })) {
    rows.push({ id: `s${i++}`, text: t.userMessage });
    if (i % 10 === 0) rows.push({ id: `s${i++}`, text: `${t.userMessage.replace(/ /g, '  ')}!` });
  }
  return rows;
}

describe('normalizeText', () => {
  it.each([
    ['Fix  the\ttest\n in FOO.ts', 'fix the test in foo ts'],
    ['ﬁx the ｔｅｓｔ', 'fix the test'],
    ['  line 12?!  ', 'line 12'],
    ['a—b', 'a b'],
  ])('%j → %j', (input, expected) => {
    expect(normalizeText(input)).toBe(expected);
  });
});

describe('normalizeText ASCII fast path', () => {
  it('equals the Unicode definition on random ASCII', () => {
    const r = new Rng(17);
    for (let k = 0; k < 2000; k++) {
      const text = String.fromCharCode(
        ...Array.from({ length: r.int(0, 40) }, () => r.int(0, 127)),
      );
      expect(normalizeText(text)).toBe(normalizeTextUnicode(text));
    }
  });
});

describe('shingles', () => {
  const char5 = { kind: 'char', size: 5 } as const;
  const word5 = { kind: 'word', size: 5 } as const;
  it('one text shorter than a shingle is one shingle; the empty text none', () => {
    expect(shingleSet('ok', char5, 1).size).toBe(1);
    expect(shingleSet('', char5, 1).size).toBe(0);
    expect(shingleSet('abcdefg', char5, 1).size).toBe(3);
    expect(shingleSet('a b c d e f g', word5, 1).size).toBe(3);
  });

  it('one word changed in a 25-word prompt: word 5-grams fall to ≈0.6, character 5-grams stay above 0.8', () => {
    const words = Array.from({ length: 25 }, (_, i) => `word${i}`);
    const a = words.join(' ');
    const b = [...words.slice(0, 12), 'other', ...words.slice(13)].join(' ');
    const w = jaccard(shingleSet(a, word5, 1), shingleSet(b, word5, 1));
    expect(w).toBeCloseTo(16 / 26, 10); // 5 of 21 shingles replaced
    expect(jaccard(shingleSet(a, char5, 1), shingleSet(b, char5, 1))).toBeGreaterThan(0.85);
  });
});

describe('MinHash', () => {
  it('estimates Jaccard without bias: mean error under 0.01, each within 5 standard errors', () => {
    const o = parseDedupOptions({});
    const texts = [...generateTelemetry({ rows: 300, seed: 5 })].map((t) => t.userMessage);
    const signed = signSamples(
      texts.map((text, i) => ({ id: String(i), text })),
      o,
    );
    let bias = 0;
    let pairs = 0;
    for (let i = 0; i + 1 < texts.length; i++) {
      const exact = jaccard(
        shingleSet(normalizeText(texts[i]!), o.shingles, 0x2545f491),
        shingleSet(normalizeText(texts[i + 1]!), o.shingles, 0x2545f491),
      );
      const est = estimatedJaccard(signed[i]!.signature, signed[i + 1]!.signature);
      const se = Math.sqrt(Math.max(exact * (1 - exact), 0.01) / 112);
      expect(Math.abs(est - exact)).toBeLessThan(5 * se);
      bias += est - exact;
      pairs++;
    }
    expect(Math.abs(bias / pairs)).toBeLessThan(0.01);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = signSamples([{ id: 'x', text: 'sort the imports' }], parseDedupOptions({ seed: 1 }));
    const b = signSamples([{ id: 'x', text: 'sort the imports' }], parseDedupOptions({ seed: 1 }));
    const c = signSamples([{ id: 'x', text: 'sort the imports' }], parseDedupOptions({ seed: 2 }));
    expect([...a[0]!.signature]).toEqual([...b[0]!.signature]);
    expect([...a[0]!.signature]).not.toEqual([...c[0]!.signature]);
  });
});

describe('detection probability', () => {
  it('is 1 − (1 − s^r)^b: datatrove 14 × 8 gives 92.4% at 0.8', () => {
    expect(detectionProbability(0.8, 14, 8)).toBeCloseTo(0.924, 3);
    expect(detectionProbability(1, 14, 8)).toBe(1);
    expect(detectionProbability(0, 14, 8)).toBe(0);
  });

  it('the default shape (16 bands × 7 rows = 112 permutations) catches 97.7% at 0.8', () => {
    const o = parseDedupOptions({});
    expect([o.bands, o.rows, permutationCount(o), signatureBytes(o)]).toEqual([16, 7, 112, 448]);
    const [p7, p8, p9] = detectionTable(o).map((r) => r.probability);
    expect(p7!).toBeCloseTo(0.7472, 4);
    expect(p8!).toBeCloseTo(0.9769, 4);
    expect(p9!).toBeGreaterThan(0.9999);
    expect(p7!).toBeLessThan(p8!);
    expect(detectionTable(o).map((r) => r.jaccard)).toEqual([0.7, 0.8, 0.9]);
  });
});

describe('options', () => {
  it.each([0, -0.1, 1.5, Number.NaN])('rejects threshold %s naming the field', (t) => {
    expect(() => parseDedupOptions({ threshold: t })).toThrow(DedupConfigError);
    expect(() => parseDedupOptions({ threshold: t })).toThrow(
      /^dedup threshold: .*0 < threshold ≤ 1/,
    );
  });

  it('accepts threshold 1 (exact-signature duplicates only)', () => {
    expect(parseDedupOptions({ threshold: 1 }).threshold).toBe(1);
  });
});

describe.each<DedupOptionsInput['mode']>(['cluster', 'greedy'])('dedupTexts (%s)', (mode) => {
  it('catches "line 12" / "line 13" and a re-sent prompt with other spacing and punctuation', () => {
    const r = dedupTexts(
      [
        { id: 'a', text: 'fix the test in foo.ts line 12' },
        { id: 'b', text: 'fix the test in foo.ts line 13' },
        { id: 'c', text: '  Fix the test in foo.ts,\n line 12! ' },
        { id: 'd', text: 'Why does the cache deadlock when traffic spikes above 900 rps?' },
        { id: 'e', text: 'why does the cache deadlock   when traffic spikes above 900 rps' },
      ],
      { mode },
    );
    const removedIds = r.removed.map((x) => x.id);
    expect(removedIds).toHaveLength(3);
    const groups = [new Set(['a', 'b', 'c']), new Set(['d', 'e'])];
    for (const x of r.removed) {
      expect(groups.some((g) => g.has(x.id) && g.has(x.keptId))).toBe(true);
      expect(x.similarity).toBeGreaterThanOrEqual(0.8);
    }
  });

  it('does not merge distinct prompts', () => {
    const r = dedupTexts(
      DISTINCT.map((text, i) => ({ id: `d${i}`, text })),
      { mode },
    );
    expect(r.removed).toEqual([]);
  });

  it('keeps the member with the smallest keep key hash(seed, id)', () => {
    const ids = ['p', 'q', 'r', 's'];
    const r = dedupTexts(
      ids.map((id) => ({ id, text: 'Format src/app.ts with the formatter.' })),
      { mode, seed: 9 },
    );
    const byKey = [...ids].sort((x, y) => {
      const [a, b] = [keepKey(x, 9), keepKey(y, 9)];
      return a[0] - b[0] || a[1] - b[1];
    });
    expect(r.removed.map((x) => x.keptId)).toEqual([byKey[0], byKey[0], byKey[0]]);
    expect(r.removed.map((x) => x.id)).toEqual(byKey.slice(1).sort());
  });

  it('gives the same removals for any row order and any batching', () => {
    const rows = corpus(3000);
    const o = parseDedupOptions({ mode });
    const reference = JSON.stringify(dedupTexts(rows, { mode }).removed);
    expect(JSON.parse(reference).length).toBeGreaterThan(300); // the planted pairs at least
    for (const seed of [1, 2, 3]) {
      expect(JSON.stringify(dedupTexts(shuffled(rows, seed), { mode }).removed)).toBe(reference);
    }
    // Batches signed apart, shipped packed, merged in reverse order.
    const signed = signSamples(shuffled(rows, 4), o);
    const batches = [0, 1, 2, 3].map((b) =>
      packBatch(
        signed.filter((_, i) => i % 4 === b),
        112,
      ),
    );
    expect(JSON.stringify(dedupSignatures(unpackBatches(batches.reverse()), o).removed)).toBe(
      reference,
    );
  });

  it('rejects an id seen twice', () => {
    expect(() =>
      dedupTexts(
        [
          { id: 'a', text: 'x' },
          { id: 'a', text: 'y' },
        ],
        { mode },
      ),
    ).toThrow(DedupInputError);
  });
});

describe('greedy removals on generated prompts', () => {
  it('every removed sample is close to its kept one: exact char-5 Jaccard ≥ 0.7', () => {
    const rows = corpus(2000, 13);
    const text = new Map(rows.map((r) => [r.id, r.text]));
    const r = dedupTexts(rows, { mode: 'greedy' });
    expect(r.removed.length).toBeGreaterThan(200);
    const set = (id: string) =>
      shingleSet(normalizeText(text.get(id)!), { kind: 'char', size: 5 }, 0x2545f491);
    for (const x of r.removed)
      expect(jaccard(set(x.id), set(x.keptId))).toBeGreaterThanOrEqual(0.7);
  });
});

describe('cluster vs greedy', () => {
  it('greedy never keeps two verified near-duplicates; cluster may remove more through chains', () => {
    const rows = corpus(2000, 8);
    const c = dedupTexts(rows, { mode: 'cluster' });
    const g = dedupTexts(rows, { mode: 'greedy' });
    expect(c.removed.length).toBeGreaterThanOrEqual(g.removed.length);
    const kept = new Set(rows.map((r) => r.id));
    for (const x of g.removed) kept.delete(x.id);
    const again = dedupTexts(
      rows.filter((r) => kept.has(r.id)),
      { mode: 'greedy' },
    );
    expect(again.removed).toEqual([]);
  });

  it('the greedy feed refuses samples out of keep order', () => {
    const o = parseDedupOptions({ mode: 'greedy' });
    const [x, y] = signSamples(
      [
        { id: 'a', text: 'one' },
        { id: 'b', text: 'two' },
      ],
      o,
    );
    const [ka, kb] = [keepKey('a', 0), keepKey('b', 0)];
    const aFirst = ka[0] < kb[0] || (ka[0] === kb[0] && ka[1] < kb[1]);
    const [first, second] = aFirst ? [x!, y!] : [y!, x!];
    const g = new GreedyDeduper(o);
    g.offer(second.id, second.signature);
    expect(() => g.offer(first.id, first.signature)).toThrow(/out of keep order/);
  });
});

describe('BandKeyTable', () => {
  it('merging batch tables equals the table of all, and collisions include every near-duplicate', () => {
    const o = parseDedupOptions({});
    const rows = corpus(1000, 11);
    const signed = signSamples(rows, o);
    const whole = BandKeyTable.fromSignatures(signed, o.bands, o.rows);
    const merged = BandKeyTable.fromSignatures(signed.slice(0, 400), o.bands, o.rows).merge(
      BandKeyTable.fromSignatures(signed.slice(400), o.bands, o.rows),
    );
    expect([...merged.keys]).toEqual([...whole.keys]);
    expect(merged.bytes).toBe(signed.length * o.bands * 12);
    const colliding = merged.collidingIds();
    for (const x of dedupSignatures(signed, o).removed) {
      expect(colliding.has(x.id)).toBe(true);
      expect(colliding.has(x.keptId)).toBe(true);
    }
  });
});

describe('agreementsNeeded', () => {
  it.each([0.5, 0.7, 0.8, 0.85, 0.9, 1, 0.001])('is the least k with k/112 ≥ %s', (t) => {
    const k = agreementsNeeded(t, 112);
    expect(k / 112).toBeGreaterThanOrEqual(t);
    expect((k - 1) / 112).toBeLessThan(t);
  });
});
