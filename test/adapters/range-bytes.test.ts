/**
 * The byte side of the raw build: loadRangeBytes gives the same lines as loadRanges (as
 * bytes, and as text), and JsonlWriter.writeRaw the same file and digest as write.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputFileError, loadRangeBytes, loadRanges } from '../../adapters/files/lines';
import { JsonlWriter } from '../../adapters/files/output';

const dir = mkdtempSync(join(tmpdir(), 'sftb-rangebytes-'));
const MiB = 1 << 20;

/** A file of varied lines (a leading BOM, CRLF ends, lines longer than the 1 MiB window). */
function file(): { path: string; ranges: { at: number; len: number }[]; buf: Buffer } {
  const parts: Buffer[] = [Buffer.from([0xef, 0xbb, 0xbf])];
  const ranges: { at: number; len: number }[] = [];
  let at = 0;
  for (let i = 0; i < 3000; i++) {
    const n = i % 701 === 5 ? MiB + 77 : 20 + ((i * 7919) % 1500);
    const text = `{"i":${i},"t":"${'é'.repeat(i % 3)}${'x'.repeat(n)}"}${i % 4 === 0 ? '\r' : ''}`;
    const b = Buffer.from(text);
    const lineAt = i === 0 ? 0 : at;
    const len = i === 0 ? b.length + 3 : b.length;
    ranges.push({ at: lineAt, len });
    parts.push(b, Buffer.from('\n'));
    at = lineAt + len + 1;
  }
  const buf = Buffer.concat(parts);
  const path = join(dir, 'lines.jsonl');
  writeFileSync(path, buf);
  return { path, ranges, buf };
}

describe('loadRangeBytes', () => {
  const { path, ranges, buf } = file();

  it('gives the bytes of the ranges asked, and the text loadRanges gives', async () => {
    // Sparse and dense picks: every line, every 13th (gaps past the window), the long ones.
    for (const pick of [ranges, ranges.filter((_, i) => i % 13 === 0 || i % 701 === 5)]) {
      const got = loadRangeBytes(path, pick);
      const text = await loadRanges(path, pick);
      pick.forEach((r, i) => {
        expect(got.end(i) - got.start(i)).toBe(r.len);
        expect(
          Buffer.compare(
            got.bytes.subarray(got.start(i), got.end(i)),
            buf.subarray(r.at, r.at + r.len),
          ),
        ).toBe(0);
        expect(got.text(i)).toBe(text[i]);
      });
    }
    expect(loadRangeBytes(path, ranges).text(0).startsWith('{"i":0,')).toBe(true);
  });

  it('reports an input that shrank while balancing', () => {
    const short = join(dir, 'short.jsonl');
    writeFileSync(short, buf.subarray(0, 1000));
    expect(() => loadRangeBytes(short, [ranges[0]!, ranges[1]!, { at: 900, len: 500 }])).toThrow(
      InputFileError,
    );
    expect(() => loadRangeBytes(short, [{ at: 10, len: 2 * MiB }])).toThrow(/input changed/);
  });
});

describe('JsonlWriter.writeRaw', () => {
  it('writes and hashes as write does, across chunk edges and for lines longer than a chunk', async () => {
    const values: unknown[] = [];
    for (let i = 0; i < 3000; i++)
      values.push({ i, t: '😀é'.repeat(i % 7) + 'x'.repeat((i * 104729) % 4000) });
    values.push({ big: 'y'.repeat(3 * MiB) });
    const a = new JsonlWriter(join(dir, 'a.jsonl'));
    const b = new JsonlWriter(join(dir, 'b.jsonl'));
    values.forEach((v, i) => {
      a.write(v);
      const bytes = Buffer.from(`..${JSON.stringify(v)}..`);
      if (i % 2) b.writeRaw(bytes, 2, bytes.length - 2);
      else b.write(v);
    });
    const da = await a.close();
    const db = await b.close();
    expect(db).toEqual(da);
    const written = readFileSync(join(dir, 'b.jsonl'));
    expect(createHash('sha256').update(written).digest('hex')).toBe(db.sha256);
    expect(written.equals(readFileSync(join(dir, 'a.jsonl')))).toBe(true);
  });
});
