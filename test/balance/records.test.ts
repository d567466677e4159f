/**
 * Recording rows and resolving them at once (shared/balance/records.ts,
 * StreamingBalancer.absorb) must leave exactly what offering the rows one by one leaves:
 * the same dataset bytes, manifest and quarantine, for any cut of the input into chunks
 * recorded by any number of threads, whatever the rows (repeated sampleIds across chunks,
 * duplicate messages whose later copy takes over, escaped ids, lines only the exact path
 * reads, invalid lines, rows outside the strata) and the config (ratios, allocations,
 * dedup off, shortfall policies, splits).
 */
import { describe, expect, it } from 'vitest';
import {
  StreamingBalancer,
  type BalanceResult,
  type QuarantineRecord,
} from '../../shared/balance/balancer';
import { RowRecords, type RecordedChunk } from '../../shared/balance/records';
import { parseBalanceConfig, type BalanceConfigInput } from '../../shared/contracts/config';
import type { AnnotatedRow } from '../../shared/contracts/rows';
import { annotatedRows, row, shuffled } from '../support/rows';

const base = annotatedRows({ conversations: 1500, seed: 5 }).map((r) => JSON.stringify(r));

/** The base rows with the kinds of lines that take other paths, spread through the input. */
function trickyLines(): string[] {
  const out = [...base];
  const at = (i: number, ...lines: string[]) => out.splice(i, 0, ...lines);
  // Repeated sampleIds (conversationId:turnIndex): a copy of an early row, late; one early.
  at(out.length - 10, base[3]!, base[4]!);
  at(200, base[150]!);
  // Explicit sampleIds: escaped (kept aside, not in the arena), non-ASCII, and repeated.
  at(500, JSON.stringify(row({ sampleId: 'q"uote\\d', label: 0, turnCount: 7 })));
  at(
    900,
    '{' +
      JSON.stringify(row({ label: 0, turnCount: 4 }))
        .slice(1)
        .replace('"conversationId"', '"sampleId":"\\u00e9t\\u00e9","conversationId"'),
  );
  at(1300, JSON.stringify(row({ sampleId: 'naïve-é', label: 1, turnCount: 12 })));
  at(1700, JSON.stringify(row({ sampleId: 'naïve-é', label: 0, turnCount: 12 })));
  // Lines only the exact path reads: an escaped key, a deep value.
  at(
    2100,
    JSON.stringify(row({ conversationId: 'esc-key', label: 1, turnCount: 6 })).replace(
      '"userMessage"',
      '"\\u0075serMessage"',
    ),
  );
  at(
    2500,
    JSON.stringify({
      ...row({ conversationId: 'deep', label: 0, turnCount: 9 }),
      x: JSON.parse('['.repeat(40) + ']'.repeat(40)),
    }),
  );
  // Duplicate messages: the same text with different ids (keys), spread out.
  for (let k = 0; k < 40; k++) {
    at(
      300 + k * 97,
      JSON.stringify(
        row({
          conversationId: `dup-${k}`,
          label: (k % 2) as 0 | 1,
          turnCount: 3 + (k % 15),
          userMessage: 'same text everywhere',
        }),
      ),
    );
  }
  // Invalid lines and blank lines; rows outside the strata.
  at(777, '{"not": "a row"}', 'not json', '', '   ');
  at(1500, JSON.stringify(row({ conversationId: 'short', turnCount: 1, turnIndex: 1 })));
  at(3000, JSON.stringify(row({ conversationId: 'long', turnCount: 40, turnIndex: 2 })));
  return out;
}

const LINES = trickyLines();
const bytes = (r: BalanceResult) =>
  ['train', 'validation', 'test'].map((s) =>
    (r[s as 'train'] ?? []).map((l) => JSON.stringify(l)).join('\n'),
  );

/** One by one, as the streaming path offers them. */
function streamed(lines: readonly string[], cfg: BalanceConfigInput) {
  const b = new StreamingBalancer(parseBalanceConfig(cfg));
  const quarantine: QuarantineRecord[] = [];
  lines.forEach((l, i) => {
    const q = b.addLine(l, i + 1);
    if (q) quarantine.push(q);
  });
  return { result: b.finish(), quarantine };
}

/**
 * Recorded by `parts` balancers (chunk k by part k % parts), resolved by the first. A
 * row's "byte range" is its line's index, read back from `lines`.
 */
async function recorded(lines: readonly string[], cfg: BalanceConfigInput, parts: number) {
  const config = parseBalanceConfig(cfg);
  const balancers = Array.from({ length: parts }, () => new StreamingBalancer(config));
  const records = balancers.map(() => new RowRecords(16));
  const quarantine: QuarantineRecord[] = [];
  const chunks: RecordedChunk[] = [];
  const count = parts * 3 + 1;
  const size = Math.ceil(lines.length / count);
  for (let k = 0, from = 0; from < lines.length; k++, from += size) {
    const part = k % parts;
    const b = balancers[part]!;
    const out = records[part]!;
    const start = out.size;
    lines.slice(from, from + size).forEach((line, j) => {
      const buf = Buffer.from(line);
      const s = b.scanLine(buf, 0, buf.length);
      if (s === 0) return;
      const q =
        s < 0
          ? b.recordLine(line, j + 1, from + j, 1, out)
          : (b.recordScanned(buf, from + j, 1, j + 1, out), null);
      if (q) quarantine.push({ ...q, line: from + q.line });
    });
    chunks.push({ chunk: k, part, start, end: out.size, lineBase: from });
  }
  const [main, ...rest] = balancers;
  for (const b of rest) main!.addQuarantineTally(b.quarantineTally());
  for (const r of main!.absorb(records, chunks))
    quarantine.push(main!.duplicateRecord(lines[r.at]!, r.line));
  quarantine.sort((a, b) => a.line - b.line);
  const result = await main!.finishWith((ranges) =>
    Promise.resolve(ranges.map((r) => lines[r.at]!)),
  );
  return { result, quarantine };
}

const CONFIGS: [string, BalanceConfigInput][] = [
  ['50:50', { total: 1200, ratio: 0.5 }],
  [
    '70:30 over three strata, proportional',
    {
      total: 1500,
      ratio: 0.7,
      stratify: ['turnBucket', 'modelFamily', 'complexity'],
      allocation: 'proportional',
    },
  ],
  ['dedup off', { total: 1000, ratio: 0.4, dedup: false }],
  ['upsampling a short class', { total: 9000, ratio: 0.5, onShortfall: 'upsample' }],
  ['shrinking to the supply', { total: 9000, ratio: 0.6, onShortfall: 'shrink' }],
  ['three splits', { total: 1200, validation: 0.2, test: 0.1 }],
  ['no strata', { total: 800, stratify: [] }],
];

describe('recorded rows resolved at once', () => {
  it('the input holds what it should (repeated ids, exact-path lines, bad lines)', () => {
    const { quarantine } = streamed(LINES, { total: 10, nearDedup: false });
    const reasons = quarantine.map((q) => q.reason);
    expect(reasons.filter((r) => r === 'duplicate_sample_id')).toHaveLength(4);
    expect(reasons.length).toBeGreaterThan(5);
  });

  for (const [name, cfg] of CONFIGS) {
    it.each([1, 2, 3])(
      `${name}: the bytes, manifest and quarantine of one pass (%i parts)`,
      async (parts) => {
        const c = { ...cfg, nearDedup: false };
        const want = streamed(LINES, c);
        const got = await recorded(LINES, c, parts);
        expect(bytes(got.result)).toEqual(bytes(want.result));
        expect(got.result.manifest).toEqual(want.result.manifest);
        expect(got.quarantine).toEqual(want.quarantine);
      },
    );
  }

  it('gives the same dataset for a shuffled copy', async () => {
    const c = { total: 1200, ratio: 0.5, nearDedup: false };
    const a = await recorded(base, c, 2);
    const b = await recorded(
      shuffled(
        base.map((l) => JSON.parse(l) as AnnotatedRow),
        3,
      ).map((r) => JSON.stringify(r)),
      c,
      3,
    );
    expect(bytes(b.result)).toEqual(bytes(a.result));
  });

  it('fails as one pass fails: a class short of its target, or no valid row', async () => {
    const c = { total: 9000, ratio: 0.5, onShortfall: 'fail', nearDedup: false } as const;
    expect(() => streamed(LINES, c)).toThrow(/not enough samples/);
    await expect(recorded(LINES, c, 2)).rejects.toThrow(/not enough samples/);
    const bad = ['not json', '{"a":1}'];
    expect(() => streamed(bad, { total: 10 })).toThrow(/no valid rows/);
    await expect(recorded(bad, { total: 10, nearDedup: false }, 2)).rejects.toThrow(
      /no valid rows/,
    );
  });

  it('keeps as candidates only what each cell selects, not every row', () => {
    const config = parseBalanceConfig({ total: 600, nearDedup: false });
    const b = new StreamingBalancer(config);
    const out = new RowRecords(16);
    base.forEach((line, i) => {
      const buf = Buffer.from(line);
      if (b.scanLine(buf, 0, buf.length) === 1) b.recordScanned(buf, i, 1, i + 1, out);
    });
    b.absorb([out], [{ chunk: 0, part: 0, start: 0, end: out.size, lineBase: 0 }]);
    expect(out.size).toBeGreaterThan(5000);
    expect(b.candidateCount).toBe(600);
  });
});

describe('RowRecords', () => {
  it('grows its columns and arena, and gives every id back', () => {
    const r = new RowRecords(16);
    const ids: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const id = i % 7 === 0 ? `kept "${i}"` : `conv-${i}-é`;
      r.push(i, i + 1, 0, 0, i % 5, i * 10, 9, i + 1);
      if (i % 7 === 0) r.idText(id);
      else if (i % 2 === 0) {
        const b = Buffer.from(id);
        r.idBytes(b, 0, b.length, -1);
      } else {
        const b = Buffer.from(`xx${id.slice(0, -2)}yy`);
        r.idBytes(b, 2, b.length - 2, -1);
        ids.push(id.slice(0, -2));
        continue;
      }
      ids.push(id);
    }
    const conv = Buffer.from('abc');
    r.push(1, 2, 3, 4, 0, 0, 1, 1);
    r.idBytes(conv, 0, 3, 12);
    ids.push('abc:12');
    const copy = RowRecords.from(structuredClone(r.columns));
    expect(copy.size).toBe(5001);
    ids.forEach((id, i) => expect(copy.idOf(i)).toBe(id));
    expect(copy.columns.at[4999]).toBe(49990);
  });
});
