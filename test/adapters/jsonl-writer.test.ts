/**
 * JsonlWriter (adapters/files/output.ts) encodes lines straight into a 2 MiB chunk: the
 * file and its digest must be those of `JSON.stringify` per line joined by "\n", however
 * lines fall on chunk boundaries — multi-byte and astral characters at the edge, lines
 * longer than a chunk, an empty file.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonlWriter } from '../../adapters/files/output';

const dir = mkdtempSync(join(tmpdir(), 'sftb-writer-'));

async function roundTrip(name: string, values: unknown[]) {
  const path = join(dir, name);
  const w = new JsonlWriter(path);
  for (const v of values) w.write(v);
  const digest = await w.close();
  const expected = Buffer.from(values.map((v) => JSON.stringify(v) + '\n').join(''), 'utf8');
  const written = readFileSync(path);
  return { digest, expected, written };
}

describe('JsonlWriter', () => {
  it('writes and hashes exactly JSON.stringify per line across chunk boundaries', async () => {
    const values: unknown[] = [];
    // Lengths that walk across the 2 MiB chunk edge with 1-, 2-, 3- and 4-byte characters.
    for (let i = 0; i < 4000; i++) {
      const n = 300 + ((i * 7919) % 2500);
      values.push({ i, t: 'é'.repeat(i % 5) + 'x'.repeat(n) + '€😀'.repeat(i % 3), q: '"\\\n' });
    }
    values.push({ big: '中'.repeat(1_000_000) }); // longer than a chunk, alone
    values.push({ after: 'big', lone: '\ud800' });
    const { digest, expected, written } = await roundTrip('a.jsonl', values);
    expect(written.equals(expected)).toBe(true);
    expect(digest.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
    expect(digest.bytes).toBe(expected.length);
    expect(digest.lines).toBe(values.length);
  });

  it('writes an empty file with the empty digest', async () => {
    const { digest, written } = await roundTrip('empty.jsonl', []);
    expect(written.length).toBe(0);
    expect(digest).toEqual({
      sha256: createHash('sha256').update('').digest('hex'),
      lines: 0,
      bytes: 0,
    });
  });
});
