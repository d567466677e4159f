import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadRanges } from '../../adapters/files/lines';
import { balanceFileParallel, workerScript } from '../../adapters/files/parallel-balance';
import { main } from '../../cli/main';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { shuffled } from '../support/rows';

const dir = mkdtempSync(join(tmpdir(), 'sftb-cli-'));
const input = join(dir, 'annotated.jsonl');
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

beforeAll(async () => {
  capture();
  expect(
    await main([
      'generate',
      '--rows',
      '30000',
      '--annotated',
      '--seed',
      '3',
      '--out',
      input,
      '--quiet',
    ]),
  ).toBe(0);
  vi.restoreAllMocks();
});

describe('sft-balancer balance', () => {
  it("writes train.jsonl and manifest.json with exact counts and the files' hashes", async () => {
    const out = join(dir, 'b1');
    capture();
    expect(
      await main([
        'balance',
        '--input',
        input,
        '--out',
        out,
        '--total',
        '3000',
        '--ratio',
        '0.7',
        '--quiet',
      ]),
    ).toBe(0);
    const train = lines(join(out, 'train.jsonl')).map(
      (l) => JSON.parse(l) as { id: string; label: number },
    );
    expect(train).toHaveLength(3000);
    expect(train.filter((l) => l.label === 0)).toHaveLength(2100);
    expect(new Set(train.map((l) => l.id)).size).toBe(3000);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.selected.total).toBe(3000);
    expect(manifest.selected.byLabel).toEqual({ '0': 2100, '1': 900 });
    expect(manifest.config.ratio).toBe(0.7);
    expect(manifest.outputs['train.jsonl'].sha256).toBe(sha(join(out, 'train.jsonl')));
    expect(manifest.outputs['train.jsonl'].lines).toBe(3000);
  });

  it('gives the same bytes for a shuffled copy of the input, and for a gzipped one', async () => {
    const shuffledInput = join(dir, 'shuffled.jsonl');
    writeFileSync(shuffledInput, shuffled(lines(input), 17).join('\n') + '\n');
    const gz = join(dir, 'annotated.jsonl.gz');
    writeFileSync(gz, gzipSync(readFileSync(input)));
    capture();
    for (const [src, out] of [
      [input, 'o1'],
      [shuffledInput, 'o2'],
      [gz, 'o3'],
    ] as const) {
      expect(
        await main([
          'balance',
          '--input',
          src,
          '--out',
          join(dir, out),
          '--total',
          '2000',
          '--quiet',
        ]),
      ).toBe(0);
    }
    const h = sha(join(dir, 'o1', 'train.jsonl'));
    expect(sha(join(dir, 'o2', 'train.jsonl'))).toBe(h);
    expect(sha(join(dir, 'o3', 'train.jsonl'))).toBe(h);
  });

  it('writes validation.jsonl with no conversation in both files', async () => {
    const out = join(dir, 'v');
    capture();
    expect(
      await main([
        'balance',
        '--input',
        input,
        '--out',
        out,
        '--total',
        '2000',
        '--validation',
        '0.25',
        '--quiet',
      ]),
    ).toBe(0);
    const conv = (f: string) =>
      new Set(
        lines(join(out, f)).map(
          (l) => (JSON.parse(l) as { conversationId: string }).conversationId,
        ),
      );
    const t = conv('train.jsonl');
    const v = conv('validation.jsonl');
    expect(v.size).toBeGreaterThan(0);
    expect([...v].filter((c) => t.has(c))).toEqual([]);
  });

  it('quarantines bad rows to quarantine.jsonl and counts them', async () => {
    const bad = join(dir, 'bad.jsonl');
    const good = lines(input).slice(0, 2000);
    writeFileSync(
      bad,
      ['{oops', ...good.slice(0, 10), '{"conversationId":"x"}', ...good.slice(10)].join('\n'),
    );
    const out = join(dir, 'q');
    capture();
    expect(await main(['balance', '--input', bad, '--out', out, '--total', '100', '--quiet'])).toBe(
      0,
    );
    const q = lines(join(out, 'quarantine.jsonl')).map(
      (l) => JSON.parse(l) as { line: number; reason: string },
    );
    expect(q.map((r) => [r.line, r.reason])).toEqual([
      [1, 'invalid_json'],
      [12, 'missing_field'],
    ]);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).quarantine.total).toBe(2);
  });

  it('fails with exit 1 and a clear message for a missing file', async () => {
    const { err } = capture();
    expect(
      await main(['balance', '--input', join(dir, 'nope.jsonl'), '--out', join(dir, 'x')]),
    ).toBe(1);
    expect(err.join('')).toMatch(/input file not found: .*nope\.jsonl/);
  });

  it('fails with exit 1 when nothing valid is left', async () => {
    const junk = join(dir, 'junk.jsonl');
    writeFileSync(junk, 'a\nb\n');
    const { err } = capture();
    expect(await main(['balance', '--input', junk, '--out', join(dir, 'j')])).toBe(1);
    expect(err.join('')).toMatch(/no valid rows/);
  });

  it.each([
    [['--total', '0'], /--total/],
    [['--total', 'many'], /--total/],
    [['--ratio', '1.5'], /--ratio/],
    [['--allocation', 'random'], /--allocation/],
    [['--stratify', 'turnBucket,colour'], /--stratify/],
    [['--buckets', 'A:5'], /--buckets/],
    [['--frobnicate'], /frobnicate/],
  ])('answers usage errors %j with exit 2 naming the flag', async (flags, pattern) => {
    const { err } = capture();
    expect(await main(['balance', '--input', input, '--out', join(dir, 'u'), ...flags])).toBe(2);
    expect(err.join('')).toMatch(pattern);
  });

  it('prints help for every command', async () => {
    const { out } = capture();
    for (const c of ['generate', 'balance', 'run', 'demo']) {
      expect(await main([c, '--help'])).toBe(0);
    }
    expect(await main(['--help'])).toBe(0);
    expect(out.join('')).toMatch(/Usage: sft-balancer balance/);
  });
});

describe('balancing on several threads', () => {
  it('gives exactly the one-thread dataset (workers from the build in dist/)', async () => {
    expect(workerScript(), 'npm test builds dist/ first').not.toBeNull();
    const cfg = parseBalanceConfig({
      total: 2500,
      ratio: 0.5,
      stratify: ['turnBucket', 'complexity'],
    });
    const run = async (threads: number) => {
      const quarantined: number[] = [];
      const b = await balanceFileParallel(input, cfg, {
        threads,
        minPartBytes: 1 << 20,
        onQuarantine: (q) => quarantined.push(q.line),
      });
      const r = await b.finishWith((ranges) => loadRanges(input, ranges));
      return {
        bytes: r.train.map((l) => JSON.stringify(l)).join('\n'),
        manifest: r.manifest,
        quarantined,
      };
    };
    const one = await run(1);
    const three = await run(3);
    expect(three.bytes).toBe(one.bytes);
    expect(three.manifest.input).toEqual(one.manifest.input);
  });

  it('numbers quarantined lines across parts as one pass would', async () => {
    const src = lines(input);
    const withBad = [...src.slice(0, 20000), 'bad line', ...src.slice(20000)];
    const p = join(dir, 'bad-late.jsonl');
    writeFileSync(p, withBad.join('\n') + '\n');
    const got: number[] = [];
    await balanceFileParallel(p, parseBalanceConfig({ total: 100 }), {
      threads: 3,
      minPartBytes: 1 << 20,
      onQuarantine: (q) => got.push(q.line),
    });
    expect(got).toEqual([20001]);
    expect(existsSync(p)).toBe(true);
  });

  it('gives quarantined lines of every chunk, whichever thread read it, in file order', async () => {
    const src = lines(input);
    const bad = [3, 5000, 5001, 9000, 14000, 19999];
    const withBad = src.flatMap((l, i) => (bad.includes(i) ? [`bad ${i}`, l] : [l]));
    const p = join(dir, 'bad-spread.jsonl');
    writeFileSync(p, withBad.join('\n') + '\n');
    const run = async (threads: number) => {
      const got: string[] = [];
      await balanceFileParallel(p, parseBalanceConfig({ total: 100 }), {
        threads,
        minPartBytes: 1 << 20,
        onQuarantine: (q) => got.push(`${q.line} ${q.raw}`),
      });
      return got;
    };
    const one = await run(1);
    expect(one).toEqual(bad.map((b, k) => `${b + k + 1} bad ${b}`));
    expect(await run(2)).toEqual(one);
    expect(await run(3)).toEqual(one);
  });

  it('records rows and resolves them at once: the streaming dataset, quarantine and counts on 1-3 threads', async () => {
    // Repeated sampleIds in other chunks (later and earlier copies), bad lines, a BOM-less
    // escaped id: the recording path (shared/balance/records.ts) against the streaming one.
    const src = lines(input);
    const mixed = src.flatMap((l, i) =>
      i === 100 ? [l, src[25_000]!] : i === 20_000 ? [l, src[10]!, 'bad line'] : [l],
    );
    mixed.push('{"x":1}', src[29_000]!);
    const p = join(dir, 'repeated-ids.jsonl');
    writeFileSync(p, mixed.join('\n') + '\n');
    const cfg = parseBalanceConfig({ total: 4000, ratio: 0.7, nearDedup: false });
    const run = async (threads: number, recording: boolean, recordingLimit?: number) => {
      const quarantined: string[] = [];
      const b = await balanceFileParallel(p, cfg, {
        threads,
        minPartBytes: 1 << 20,
        recording,
        ...(recordingLimit ? { recordingLimit } : {}),
        onQuarantine: (q) => quarantined.push(`${q.line} ${q.reason} ${q.raw.slice(0, 40)}`),
      });
      const r = await b.finishWith((ranges) => loadRanges(p, ranges));
      return {
        bytes: r.train.map((l) => JSON.stringify(l)).join('\n'),
        manifest: r.manifest,
        quarantined,
      };
    };
    const want = await run(1, false);
    // src[25_000]'s copy at line 102 comes first: the original (line 25_004) is the repeat.
    expect(want.quarantined.map((q) => q.split(' ').slice(0, 2).join(' '))).toEqual([
      '20003 duplicate_sample_id',
      '20004 invalid_json',
      '25004 duplicate_sample_id',
      '30004 missing_field',
      '30005 duplicate_sample_id',
    ]);
    // More rows than a recording scan may hold: it gives way to streaming, same result.
    const over = await run(2, true, 5_000);
    expect(over.bytes).toBe(want.bytes);
    expect(over.quarantined).toEqual(want.quarantined);
    for (const threads of [1, 2, 3]) {
      const got = await run(threads, true);
      expect(got.bytes).toBe(want.bytes);
      expect(got.manifest).toEqual(want.manifest);
      expect(got.quarantined).toEqual(want.quarantined);
    }
  });
});
