/**
 * writeShards (a source without byte ranges, such as a Kusto query, streamed into
 * shard blobs): every line lands once, numbered, in its shard; CRLF is tolerated; a
 * line over MAX_LINE_BYTES is cut one byte past the limit and carries its whole size;
 * and the shard bytes do not depend on how the source's chunks fall.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeShards } from '../../functions/plan-build';
import type { LineSource } from '../../adapters/storage/source';
import { buildPaths, MAX_LINE_BYTES } from '../../shared/build/spec';
import { generateTelemetry } from '../../shared/source/generate';
import { specFor, testDeps } from './harness';

const long = `{"conversationId":"long","x":"${'a'.repeat(MAX_LINE_BYTES + 100)}"}`;
const lines = [
  ...[...generateTelemetry({ conversations: 40, seed: 5 })].map((t) => JSON.stringify(t)),
  '',
  long,
];
// One CRLF line in the middle; the last line has no newline.
const text = lines.map((l, i) => (i === 3 ? `${l}\r\n` : `${l}\n`)).join('') + lines[0];
const bytes = Buffer.from(text, 'utf8');

/** A byte-stream source whose chunks are `size` bytes (no identity: the plan writes shards). */
function chunked(size: number): LineSource {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return {
    name: `chunks-${size}`,
    size: () => Promise.resolve(bytes.length),
    chunks: () => Readable.from(pieces, { objectMode: true }) as AsyncIterable<Buffer>,
    lines: () => {
      throw new Error('not read by lines');
    },
  };
}

async function shardText(size: number): Promise<string[]> {
  const deps = testDeps({ SFT_SHARD_BYTES: String(256 << 10) });
  const spec = specFor(
    deps,
    `ws-${size}`,
    { total: 10 },
    {
      kind: 'kusto',
      path: 'sft_session_router_first_turns',
    },
  );
  await deps.store.ensureContainer();
  const plan = await writeShards(deps, spec, () => {}, chunked(size));
  expect(plan.rows).toBe(lines.length); // every non-empty line, the unterminated last included
  return Promise.all(
    plan.shards.map(async (s) =>
      (await deps.store.get(buildPaths(spec.id).shard(s.id)))!.toString('utf8'),
    ),
  );
}

describe('writeShards', () => {
  it('writes every line once, cut and numbered, the same for any chunking', async () => {
    const whole = await shardText(bytes.length);
    const parsed = whole
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const tab = l.indexOf('\t');
        const [no, size] = l.slice(0, tab).split(':');
        return { no: Number(no), size: size && Number(size), raw: l.slice(tab + 1) };
      })
      .sort((a, b) => a.no - b.no);
    const expected = [...lines, lines[0]!]
      .map((l, i) => ({ no: i + 1, raw: l }))
      .filter((l) => l.raw !== '');
    expect(parsed.map((l) => l.no)).toEqual(expected.map((l) => l.no));
    for (const [i, l] of parsed.entries()) {
      const want = expected[i]!.raw;
      if (want === long) {
        expect(l.raw).toBe(long.slice(0, MAX_LINE_BYTES + 1));
        expect(l.size).toBe(Buffer.byteLength(long));
      } else {
        expect(l).toEqual({ no: expected[i]!.no, size: undefined, raw: want });
      }
    }
    for (const size of [1000, 65_537, MAX_LINE_BYTES - 3])
      expect(await shardText(size)).toEqual(whole);
  }, 120_000);
});
