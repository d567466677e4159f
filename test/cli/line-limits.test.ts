/**
 * `balance` and `annotate` read lines with a length limit (--max-line-bytes): a runaway
 * line (a missing newline, a pasted dump) is read only that far, quarantined
 * `line_too_long` with its number and size (balance) or counted and named (annotate),
 * and the rest of the input is used as if it were not there. Before, the line was
 * gathered whole (a 2 GB line cannot become a string) and parsed as JSON.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'sftb-line-limits-'));
const bin = join(__dirname, '..', '..', 'bin', 'sft-balancer.js');
const MIB = 1 << 20;
/** The default judge (signals), whatever this shell's SFT_JUDGE says. */
const withoutJudge = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k !== 'SFT_JUDGE'),
);

/** The CLI in its own process with a small heap; its exit status, stderr and peak RSS. */
function cli(args: string[], heapMb = 96) {
  const r = spawnSync(
    process.execPath,
    [
      `--max-old-space-size=${heapMb}`,
      '-e',
      `process.argv.splice(1, 0, ${JSON.stringify(bin)});
       process.on('exit', () => process.stderr.write('maxrss ' + process.resourceUsage().maxRSS + '\\n'));
       require(${JSON.stringify(bin)});`,
      ...args,
    ],
    { encoding: 'utf8', env: withoutJudge },
  );
  const rss = /maxrss (\d+)/.exec(r.stderr);
  return {
    status: r.status,
    stderr: r.stderr.replace(/maxrss \d+\n/, ''),
    rssMb: rss ? Number(rss[1]) / 1024 : NaN,
  };
}

const jsonl = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('balance --max-line-bytes', () => {
  it('quarantines a 100 MB line and a missing last newline, in bounded memory, same train.jsonl', () => {
    const clean = join(dir, 'annotated.jsonl');
    expect(
      cli(['generate', '--rows', '3000', '--annotated', '--seed', '5', '--out', clean, '-q'])
        .status,
    ).toBe(0);
    const rows = readFileSync(clean, 'utf8').trimEnd().split('\n');
    const dirty = join(dir, 'runaway.jsonl');
    // Line 101: 100 MB of one row; the last line: 20 MB with no newline at all.
    writeFileSync(dirty, rows.slice(0, 100).join('\n') + '\n{"sampleId":"');
    const block = 'x'.repeat(MIB);
    for (let i = 0; i < 100; i++) appendFileSync(dirty, block);
    appendFileSync(dirty, '"}\n' + rows.slice(100).join('\n') + '\n');
    for (let i = 0; i < 20; i++) appendFileSync(dirty, block);
    const args = ['--total', '600', '--ratio', '0.5', '--no-probe', '-q'];
    const one = [...args, '--threads', '1'];
    const a = cli(['balance', '--input', clean, '--out', join(dir, 'clean'), ...one]);
    expect(a.status).toBe(0);
    const b = cli(['balance', '--input', dirty, '--out', join(dir, 'dirty'), ...one]);
    expect(b.stderr).toBe('');
    expect(b.status).toBe(0);
    // The limit plus the chunks read past it awaiting GC (+56 MB measured), not the line: the
    // old reader gathered it whole (out of this 96 MB heap).
    expect(b.rssMb).toBeLessThan(a.rssMb + 90);
    // The same on two threads (the file is cut in parts; line numbers count from the file's start).
    const c = cli([
      'balance',
      '--input',
      dirty,
      '--out',
      join(dir, 'dirty2'),
      ...args,
      '--threads',
      '2',
    ]);
    expect(c.status).toBe(0);
    for (const out of ['dirty', 'dirty2']) {
      expect(readFileSync(join(dir, out, 'train.jsonl'))).toEqual(
        readFileSync(join(dir, 'clean', 'train.jsonl')),
      );
      const q = jsonl(join(dir, out, 'quarantine.jsonl'));
      expect(q.map((r) => [r.line, r.reason, r.detail])).toEqual([
        [
          101,
          'line_too_long',
          `line is ${100 * MIB + 15} bytes, over the limit of ${16 * MIB} bytes`,
        ],
        [3002, 'line_too_long', `line is ${20 * MIB} bytes, over the limit of ${16 * MIB} bytes`],
      ]);
      expect(q.every((r) => String(r.raw).length <= 500)).toBe(true);
      const manifest = JSON.parse(readFileSync(join(dir, out, 'manifest.json'), 'utf8')) as {
        quarantine: unknown;
      };
      expect(manifest.quarantine).toEqual({ total: 2, byReason: { line_too_long: 2 } });
    }
  }, 300_000);

  it('takes a lower limit from the flag, on every thread, and refuses a bad value', () => {
    const clean = join(dir, 'annotated.jsonl');
    const rows = readFileSync(clean, 'utf8').trimEnd().split('\n');
    const path = join(dir, 'long-rows.jsonl');
    const long = rows[2000]!.replace('"userMessage":"', `"userMessage":"${'y'.repeat(5000)}`);
    rows[2000] = long;
    writeFileSync(path, rows.join('\n') + '\n');
    const args = ['--total', '600', '--ratio', '0.5', '--no-probe', '-q', '--threads', '1'];
    const out = join(dir, 'low');
    const r = cli(['balance', '--input', path, '--out', out, '--max-line-bytes', '4096', ...args]);
    expect(r.status).toBe(0);
    expect(jsonl(join(out, 'quarantine.jsonl')).map((q) => [q.line, q.reason, q.detail])).toEqual([
      [
        2001,
        'line_too_long',
        `line is ${Buffer.byteLength(long)} bytes, over the limit of 4096 bytes`,
      ],
    ]);
    const bad = cli([
      'balance',
      '--input',
      path,
      '--out',
      join(dir, 'bad'),
      '--max-line-bytes',
      '0',
    ]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--max-line-bytes must be a positive integer/);
  }, 300_000);
});

describe('annotate --max-line-bytes', () => {
  it('skips and counts a 100 MB line in bounded memory; the other rows are labelled as without it', () => {
    const clean = join(dir, 'telemetry.jsonl');
    expect(cli(['generate', '--conversations', '400', '--out', clean, '-q']).status).toBe(0);
    const lines = readFileSync(clean, 'utf8').trimEnd().split('\n');
    const dirty = join(dir, 'telemetry-runaway.jsonl');
    writeFileSync(dirty, lines.slice(0, 50).join('\n') + '\n{"conversationId":"');
    const block = 'z'.repeat(MIB);
    for (let i = 0; i < 100; i++) appendFileSync(dirty, block);
    appendFileSync(dirty, '"}\n' + lines.slice(50).join('\n') + '\n');
    const a = cli(['annotate', '--input', clean, '--out', join(dir, 'a.jsonl'), '-q']);
    expect(a.status).toBe(0);
    const b = cli(['annotate', '--input', dirty, '--out', join(dir, 'b.jsonl'), '-q']);
    expect(b.status).toBe(0);
    expect(b.stderr).toBe(
      `sft-balancer annotate: line 51 is ${100 * MIB + 21} bytes, over the limit of ${MIB} bytes (--max-line-bytes): skipped\n`,
    );
    expect(b.rssMb).toBeLessThan(a.rssMb + 90);
    expect(readFileSync(join(dir, 'b.jsonl'))).toEqual(readFileSync(join(dir, 'a.jsonl')));
    const summary = JSON.parse(readFileSync(join(dir, 'b.judge.json'), 'utf8')) as {
      input: { invalidLines: number; linesTooLong: number };
    };
    expect(summary.input).toMatchObject({ invalidLines: 1, linesTooLong: 1 });
  }, 300_000);
});
