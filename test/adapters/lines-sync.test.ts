/**
 * The synchronous line reader of the balance scan (readFileRawLinesSync): the same
 * callbacks as the stream reader (forEachRawLine) on tricky inputs — lines across buffer
 * boundaries, lines longer than the buffer, over the limit, CRLF, a leading BOM, no final
 * newline, an empty file, a byte range — read through a tiny buffer to force every case.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  InputFileError,
  lineText,
  readFileRawLines,
  readFileRawLinesSync,
} from '../../adapters/files/lines';

const dir = mkdtempSync(join(tmpdir(), 'sftb-lines-sync-'));

type Seen = [text: string, no: number, at: number, len: number];

async function viaStream(path: string, range?: { start: number; end: number }, max?: number) {
  const out: Seen[] = [];
  const n = await readFileRawLines(
    path,
    (b, s, e, no, at, len) => out.push([lineText(b, s, e, no, at), no, at, len]),
    range,
    max,
  );
  return { out, n };
}

function viaSync(path: string, range?: { start: number; end: number }, max?: number, size = 16) {
  const out: Seen[] = [];
  const n = readFileRawLinesSync(
    path,
    (b, s, e, no, at, len) => out.push([lineText(b, s, e, no, at), no, at, len]),
    range,
    max,
    size,
  );
  return { out, n };
}

function file(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** Lines of every length around a 16-byte buffer, multi-byte characters, blank lines. */
const tricky =
  '\ufeff{"a":1}\r\n' +
  Array.from({ length: 60 }, (_, i) => 'é'.repeat(i % 5) + 'x'.repeat((i * 7) % 41)).join('\n') +
  '\n\n\r\n' +
  'y'.repeat(100) +
  '\nlast';

describe('readFileRawLinesSync', () => {
  it('gives the stream reader’s lines, numbers, offsets and lengths, for any buffer size', async () => {
    const p = file('tricky.jsonl', tricky);
    const want = await viaStream(p);
    expect(want.out[0]![0]).toBe('{"a":1}');
    expect(want.out.at(-1)![0]).toBe('last');
    for (const size of [1, 2, 7, 16, 64, 1 << 20])
      expect(viaSync(p, undefined, undefined, size)).toEqual(want);
  });

  it('cuts lines over the limit at one byte past it, with their whole length', async () => {
    const p = file('limit.jsonl', tricky + '\n' + 'z'.repeat(333));
    for (const max of [0, 5, 15, 16, 17, 40, 99, 100, 101]) {
      const want = await viaStream(p, undefined, max);
      expect(want.out.some(([, , , len]) => len > max)).toBe(max < 333);
      for (const size of [1, 16, 50, 4096]) expect(viaSync(p, undefined, max, size)).toEqual(want);
    }
  });

  it('reads a byte range alone, with offsets in the whole file', async () => {
    const p = file('range.jsonl', tricky);
    const all = await viaStream(p);
    const from = all.out[3]!;
    const to = all.out[40]!;
    const range = { start: from[2], end: to[2] + to[3] };
    const want = await viaStream(p, range);
    expect(want.out.map((o) => o[0])).toEqual(all.out.slice(3, 41).map((o) => o[0]));
    for (const size of [1, 16, 300]) expect(viaSync(p, range, undefined, size)).toEqual(want);
    // A range that ends inside a line gives that line's bytes up to the end of the range.
    const cut = { start: from[2], end: from[2] + 3 };
    expect(viaSync(p, cut)).toEqual(await viaStream(p, cut));
  });

  it('reads an empty file, a lone newline and a file with no newline at all', async () => {
    for (const [name, text] of [
      ['empty', ''],
      ['nl', '\n'],
      ['one', '{"only":true}'],
      ['crlf', '\r\n\r\n'],
    ] as const) {
      const p = file(`${name}.jsonl`, text);
      expect(viaSync(p, undefined, undefined, 4)).toEqual(await viaStream(p));
    }
    expect(viaSync(file('e.jsonl', '')).n).toBe(0);
  });

  it('stops at a handler error and names a missing file as an input error', () => {
    const p = file('stop.jsonl', tricky);
    let seen = 0;
    expect(() =>
      readFileRawLinesSync(p, () => {
        if (++seen === 5) throw new Error('handler says no');
      }),
    ).toThrow(/handler says no/);
    expect(seen).toBe(5);
    expect(() => readFileRawLinesSync(join(dir, 'nope.jsonl'), () => {})).toThrow(InputFileError);
  });
});
