/**
 * Near-duplicate removal through `balance` (docs/dedup.md "Near-duplicates in the build"):
 * on by default with duplicates.jsonl beside train.jsonl, the off switch, a bad threshold
 * as a usage error, the same bytes for a shuffled input, and a refill pass when a
 * stratum's candidates run out giving the bytes of one scan with a huge margin.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main';
import { balanceConfigFromFlags, UsageError } from '../../cli/args';
import { StreamingBalancer } from '../../shared/balance/balancer';
import { parseBalanceConfig } from '../../shared/contracts/config';
import type { AnnotatedRow } from '../../shared/contracts/rows';
import { toJsonl } from '../../shared/util/jsonl';
import { unitHash } from '../../shared/util/hash';
import { row, shuffled } from '../support/rows';

const dir = mkdtempSync(join(tmpdir(), 'sftb-near-'));
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const lines = (p: string) => readFileSync(p, 'utf8').split('\n').filter(Boolean);

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out, err };
}
afterEach(() => vi.restoreAllMocks());

const WORDS = (
  'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november ' +
  'oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu parser ' +
  'lexer router judge shard queue blob table index cache token model ratio label stratum'
).split(' ');

function distinct(n: number, label: 0 | 1, prefix: string, turnCount: number): AnnotatedRow[] {
  return Array.from({ length: n }, (_, i) =>
    row({
      conversationId: `${prefix}${i}`,
      label,
      turnCount,
      userMessage: Array.from(
        { length: 9 },
        (_, k) => WORDS[Math.floor(unitHash(`${prefix}${i}/${k}`, 7) * WORDS.length)]!,
      ).join(' '),
    }),
  );
}

/** Distinct prompts in every cell, a planted pair, and a bucket B of label 1 crowded with edits of one prompt. */
const ROWS: AnnotatedRow[] = [
  ...distinct(300, 0, 'r', 4),
  ...distinct(300, 0, 's', 8),
  ...distinct(300, 1, 'n', 4),
  ...distinct(120, 1, 'm', 8),
  ...Array.from({ length: 4000 }, (_, i) =>
    row({
      conversationId: `k${i}`,
      label: 1,
      turnCount: 7,
      userMessage: `please fix the failing test in foo.ts at line ${i}`,
    }),
  ),
  row({
    conversationId: 'p1',
    label: 0,
    turnCount: 4,
    userMessage: 'fix the test in foo.ts line 12',
  }),
  row({
    conversationId: 'p2',
    label: 0,
    turnCount: 4,
    userMessage: 'fix the test in foo.ts line 13',
  }),
];
const input = join(dir, 'annotated.jsonl');
writeFileSync(input, toJsonl(ROWS));
const ARGS = ['--total', '600', '--stratify', 'turnBucket', '--quiet'];

async function balance(file: string, out: string, more: string[] = []) {
  const io = capture();
  const code = await main(['balance', '--input', file, '--out', out, ...ARGS, ...more]);
  vi.restoreAllMocks();
  return { code, ...io };
}

describe('near-duplicate removal in `balance`', () => {
  it('removes near-duplicates by default, lists them in duplicates.jsonl, scans again when a stratum runs out', async () => {
    const out = join(dir, 'on');
    const r = await balance(input, out);
    expect(r.code).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.config).toMatchObject({ nearDedup: true, dedupThreshold: 0.8 });
    const dups = lines(join(out, 'duplicates.jsonl')).map(
      (l) => JSON.parse(l) as { id: string; keptId: string },
    );
    expect(m.nearDuplicates.removed).toBe(dups.length);
    expect(m.outputs['duplicates.jsonl'].sha256).toBe(sha(join(out, 'duplicates.jsonl')));
    // The planted pair: one removed, naming the other as kept.
    const planted = dups.filter((d) => d.id.startsWith('p'));
    expect(planted).toHaveLength(1);
    expect(planted[0]!.keptId).toMatch(/^p[12]:1$/);
    expect(planted[0]!.keptId).not.toBe(planted[0]!.id);
    // Bucket B of non_reasoning was mostly edits of one prompt: its first scan ran out.
    expect(m.nearDuplicates.passes).toBeGreaterThan(1);
    expect(m.nearDuplicates.byLabelStratum['1'].B).toBeGreaterThan(0);
    expect(m.selected.byLabel).toEqual({ '0': 300, '1': 300 });
    expect(r.out.join('')).toMatch(/near-duplicates removed \d+ \(.*non_reasoning\/B \d+/);
    // The same bytes as one scan with a margin that never runs out.
    const b = new StreamingBalancer(parseBalanceConfig(m.config), { margin: 1_000_000 });
    for (const x of ROWS) b.offer(x);
    const once = b.finish();
    expect(once.manifest.nearDuplicates!.passes).toBe(1);
    expect(readFileSync(join(out, 'train.jsonl'), 'utf8')).toBe(toJsonl(once.train));
    expect(readFileSync(join(out, 'duplicates.jsonl'), 'utf8')).toBe(toJsonl(once.duplicates));
  });

  it('gives the same bytes for a shuffled input', async () => {
    const file = join(dir, 'shuffled.jsonl');
    writeFileSync(file, toJsonl(shuffled(ROWS, 9)));
    expect((await balance(file, join(dir, 'sh'))).code).toBe(0);
    if (!existsSync(join(dir, 'on'))) expect((await balance(input, join(dir, 'on'))).code).toBe(0);
    for (const f of ['train.jsonl', 'duplicates.jsonl'])
      expect(sha(join(dir, 'sh', f)), f).toBe(sha(join(dir, 'on', f)));
  });

  it('--no-near-dedup keeps near-duplicates and writes no duplicates.jsonl', async () => {
    const out = join(dir, 'off');
    expect((await balance(input, out, ['--no-near-dedup'])).code).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.config.nearDedup).toBe(false);
    expect(m.nearDuplicates).toBeUndefined();
    expect(existsSync(join(out, 'duplicates.jsonl'))).toBe(false);
    const ids = lines(join(out, 'train.jsonl')).map((l) => JSON.parse(l).id as string);
    expect(ids.filter((id) => id.startsWith('p'))).toHaveLength(2);
  });

  it.each(['0', '1.5', 'abc', ''])('--dedup-threshold %j is a usage error (exit 2)', async (t) => {
    const r = await balance(input, join(dir, 'bad'), ['--dedup-threshold', t]);
    expect(r.code).toBe(2);
    expect(r.err.join('')).toMatch(/--dedup-threshold/);
  });

  it('reads the flags into the config', () => {
    expect(balanceConfigFromFlags({ 'dedup-threshold': '0.9' })).toMatchObject({
      nearDedup: true,
      dedupThreshold: 0.9,
    });
    expect(balanceConfigFromFlags({ 'no-near-dedup': true }).nearDedup).toBe(false);
    expect(() => balanceConfigFromFlags({ 'dedup-threshold': '-1' })).toThrow(UsageError);
  });
});
