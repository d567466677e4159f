/**
 * The line reader (adapters/lines.ts): every line of a file, with its number and byte
 * range, whatever the chunk boundaries (lines longer than a chunk), CRLF and a leading
 * BOM; byte ranges read alone and read back; a handler error stops the read; gzip.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { InputFileError, loadRanges, readFileLines } from '../../adapters/files/lines';

const dir = mkdtempSync(join(tmpdir(), 'sftb-lines-'));
const MiB = 1 << 20;

/** Lines of varied length, some longer than a chunk, one ending on a chunk boundary. */
function sample(): string[] {
  const lines: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < 3.5 * MiB; i++) {
    const n = i % 97 === 0 ? MiB + 123 : 50 + ((i * 7919) % 900);
    const text = `{"i":${i},"t":"${'é'.repeat(n % 3)}${'x'.repeat(n)}"}`;
    lines.push(text);
    bytes += Buffer.byteLength(text) + 1;
  }
  return lines;
}

async function collect(path: string, range?: { start: number; end: number }) {
  const out: { line: string; no: number; at: number; len: number }[] = [];
  const n = await readFileLines(
    path,
    (line, no, at, len) => out.push({ line, no, at, len }),
    range,
  );
  return { out, n };
}

describe('readFileLines', () => {
  const lines = sample();
  const text = lines.join('\n') + '\n';
  const path = join(dir, 'sample.jsonl');
  writeFileSync(path, text);
  const buf = Buffer.from(text);

  it('gives every line, its number and byte range, across chunk boundaries', async () => {
    expect(lines.length).toBeGreaterThan(250);
    const { out, n } = await collect(path);
    expect(n).toBe(lines.length);
    expect(out.map((o) => o.line)).toEqual(lines);
    expect(out.map((o) => o.no)).toEqual(lines.map((_, i) => i + 1));
    for (const o of out) expect(buf.toString('utf8', o.at, o.at + o.len)).toBe(o.line);
  });

  it('reads a byte range alone, with offsets in the whole file', async () => {
    const { out } = await collect(path);
    const from = out[40]!;
    const to = out[200]!;
    const part = await collect(path, { start: from.at, end: to.at + to.len });
    expect(part.out.map((o) => o.line)).toEqual(lines.slice(40, 201));
    expect(part.out.map((o) => o.at)).toEqual(out.slice(40, 201).map((o) => o.at));
    const back = await loadRanges(path, [from, to]);
    expect(back).toEqual([from.line, to.line]);
  });

  it('drops CRs before newlines and a leading BOM, and reads a last line without newline', async () => {
    const p = join(dir, 'crlf.jsonl');
    writeFileSync(p, '\ufeff{"a":1}\r\n{"b":2}\r\n{"c":3}');
    expect((await collect(p)).out.map((o) => o.line)).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('reads gzip through the stream path, with the same lines', async () => {
    const p = join(dir, 'sample.jsonl.gz');
    writeFileSync(p, gzipSync(buf));
    expect((await collect(p)).out.map((o) => o.line)).toEqual(lines);
  });

  it('stops at a handler error and reports it', async () => {
    let seen = 0;
    await expect(
      readFileLines(path, () => {
        if (++seen === 150) throw new Error('handler says no');
      }),
    ).rejects.toThrow(/handler says no/);
    expect(seen).toBe(150);
  });

  it('names a missing file as an input error', async () => {
    await expect(collect(join(dir, 'nope.jsonl'))).rejects.toBeInstanceOf(InputFileError);
  });
});

/** Issue 13 item 12a/c: a runaway line costs memory of the limit only; invalid UTF-8 is flagged. */
describe('forEachLine limits and UTF-8', () => {
  const seen = async (path: string, maxLineBytes?: number) => {
    const out: { line: string; no: number; at: number; len: number; bad: boolean }[] = [];
    await readFileLines(
      path,
      (line, no, at, len, bad) => out.push({ line, no, at, len, bad }),
      undefined,
      maxLineBytes === undefined ? undefined : { maxLineBytes, checkUtf8: true },
    );
    return out;
  };

  it('cuts a line over maxLineBytes to one byte past it and gives its whole length', async () => {
    const big = 50 * MiB + 7; // longer than many chunks, the last line has no newline
    const head = '{"a":1}\n';
    const mid = 'y'.repeat(3 * MiB) + '\n';
    const path = join(dir, 'runaway.jsonl');
    writeFileSync(path, head + mid + '{"b":2}\n' + 'x'.repeat(big));
    const out = await seen(path, MiB);
    expect(out.map((o) => [o.no, o.at, o.len])).toEqual([
      [1, 0, 7],
      [2, 8, 3 * MiB],
      [3, 8 + 3 * MiB + 1, 7],
      [4, 8 + 3 * MiB + 1 + 8, big],
    ]);
    expect(out[0]!.line).toBe('{"a":1}');
    expect(out[1]!.line).toBe('y'.repeat(MiB + 1));
    expect(out[2]!.line).toBe('{"b":2}');
    expect(out[3]!.line).toBe('x'.repeat(MiB + 1));
    expect(out.some((o) => o.bad)).toBe(false);
  });

  it('flags lines whose bytes are not valid UTF-8, not a genuine U+FFFD or a cut character', async () => {
    const path = join(dir, 'utf8.jsonl');
    writeFileSync(
      path,
      Buffer.concat([
        Buffer.from('{"t":"ok é"}\n{"t":"bad '),
        Buffer.from([0xff, 0xc3]),
        Buffer.from('"}\n{"t":"real \uFFFD"}\n'),
        Buffer.from('"' + 'é'.repeat(20)),
      ]),
    );
    const out = await seen(path, 23); // the last line (41 bytes) is cut at 24, inside an é
    expect(out.map((o) => o.bad)).toEqual([false, true, false, false]);
    expect(out[1]!.line).toBe('{"t":"bad \uFFFD\uFFFD"}');
  });
});
