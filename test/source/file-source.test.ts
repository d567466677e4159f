import { BlobServiceClient } from '@azure/storage-blob';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, inject, it } from 'vitest';
import { FileSource } from '../../adapters/files/source';
import type { TelemetryTurn } from '../../shared/contracts/rows';
import { generateTelemetry } from '../../shared/source/generate';
import {
  parseSelection,
  ShardPlanError,
  shardSpecs,
  type Selection,
  type ShardSpec,
  type SourceQuarantineRecord,
  type TelemetrySource,
} from '../../shared/source/telemetry';

const dir = mkdtempSync(join(tmpdir(), 'file-source-'));

function writeJsonl(name: string, lines: string[], gz = false): string {
  const path = join(dir, name);
  const text = lines.join('\n') + '\n';
  writeFileSync(path, gz ? gzipSync(text) : text);
  return path;
}

const turn = (
  id: string,
  turnIndex: number,
  turnCount: number,
  timestamp: string,
  over: object = {},
) =>
  JSON.stringify({
    conversationId: id,
    turnIndex,
    turnCount,
    userMessage: `${id} turn ${turnIndex}`,
    model: 'gpt-4o',
    numRequests: 1,
    turnDurationMs: 900,
    promptTokenDelta: 40,
    tools: [],
    timestamp,
    ...over,
  });

async function readAll(source: TelemetrySource, spec: ShardSpec) {
  const turns: TelemetryTurn[] = [];
  const quarantined: SourceQuarantineRecord[] = [];
  const stats = await source.readShard(spec, {
    onTurn: (t) => turns.push(t),
    onQuarantine: (q) => quarantined.push(q),
  });
  return { turns, quarantined, stats };
}

const one = (selection: Selection): ShardSpec => ({
  source: 'file',
  selection,
  shardCount: 1,
  index: 0,
});

// The window is March 2026 (first turns in [Mar 1, Apr 1)); later turns count up to one day past it.
const window = {
  start: '2026-03-01T00:00:00Z',
  end: '2026-04-01T00:00:00Z',
  maxConversationSpanMs: 86_400_000,
};
const session = parseSelection({ query: 'sft_session_router_first_turns', window });

const handmade = [
  turn('a', 1, 3, '2026-03-05T10:00:00Z'),
  turn('a', 2, 3, '2026-03-05T10:01:00Z'),
  turn('a', 3, 3, '2026-03-05T10:02:00Z'),
  turn('b', 1, 3, '2026-03-05T11:00:00Z'), // turn 3 missing: incomplete
  turn('b', 2, 3, '2026-03-05T11:01:00Z'),
  turn('c', 1, 2, '2026-03-06T09:00:00Z'),
  turn('c', 2, 3, '2026-03-06T09:01:00Z'), // disagrees on turnCount: incomplete
  turn('d', 2, 2, '2026-03-07T09:01:00Z'),
  turn('d', 1, 2, '2026-03-07T09:00:00Z'),
  turn('d', 1, 2, '2026-03-07T09:00:00.5Z'), // a duplicate first turn: both kept, as in the KQL
  turn('e', 1, 2, '2026-02-28T23:59:59.9999999Z'), // first turn before the window
  turn('e', 2, 2, '2026-03-01T00:00:01Z'),
  turn('f', 1, 2, '2026-03-31T23:00:00Z'),
  turn('f', 2, 2, '2026-04-02T00:00:00Z'), // past end + span: incomplete
  turn('g', 1, 2, '2026-03-31T23:59:59.9999999Z'), // last instant of the window
  turn('g', 2, 2, '2026-04-01T20:00:00Z'), // past the end but within the span
  turn('h', 1, 2, '2026-03-10T00:00:00Z'),
  turn('h', 2, 2, '2026-03-10T00:01:00Z', { numRequests: -1 }), // selectable, then quarantined
  turn('i', 1, 1, '2026-04-01T00:00:00Z'), // first turn at the window's end: excluded
  'not json',
  JSON.stringify({ turnIndex: 1, turnCount: 1, timestamp: '2026-03-05T10:00:00Z' }),
  turn('j', 0, 1, '2026-03-05T10:00:00Z'),
  '[1,2]',
];

describe('FileSource: the selection of the KQL over a JSONL export', () => {
  const source = FileSource.fromPath(writeJsonl('handmade.jsonl', handmade));

  it('session query: first turns of complete conversations only, in conversationId order', async () => {
    const { turns, stats } = await readAll(source, one(session));
    expect(turns.map((t) => `${t.conversationId}:${t.turnIndex}`)).toEqual([
      'a:1',
      'd:1',
      'd:1',
      'g:1',
      'h:1',
    ]);
    expect(turns.filter((t) => t.conversationId === 'd').map((t) => t.timestamp)).toEqual([
      '2026-03-07T09:00:00Z',
      '2026-03-07T09:00:00.5Z',
    ]);
    expect(stats.turns).toBe(5);
  });

  it("session query with turns = 'all': every turn of the same conversations", async () => {
    const all = parseSelection({ query: 'sft_session_router_first_turns', window, turns: 'all' });
    const { turns } = await readAll(source, one(all));
    expect(turns.map((t) => `${t.conversationId}:${t.turnIndex}`)).toEqual([
      'a:1',
      'a:2',
      'a:3',
      'd:1',
      'd:1',
      'd:2',
      'g:1',
      'g:2',
      'h:1',
    ]);
  });

  it('lines with no usable key are quarantined once, by shard 0, with their reason and line number', async () => {
    const q0 = (await readAll(source, { ...one(session), shardCount: 2, index: 0 })).quarantined;
    const q1 = (await readAll(source, { ...one(session), shardCount: 2, index: 1 })).quarantined;
    expect(q1).toEqual([]);
    expect(q0.map((q) => [q.line, q.reason, q.field ?? null])).toEqual([
      [20, 'invalid_json', null],
      [21, 'missing_field', 'conversationId'],
      [22, 'out_of_range', 'turnIndex'],
      [23, 'not_an_object', null],
    ]);
    expect(q0.every((q) => q.shard === 0 && q.origin.endsWith('handmade.jsonl'))).toBe(true);
  });

  it('stratified query: every turn of the complete conversations in a bucket; a bad selected row is quarantined', async () => {
    const strat = parseSelection({
      query: 'sft_stratified_by_turn_count',
      window,
      buckets: [
        { name: 'short', min: 2, max: 2, cap: 10 },
        { name: 'long', min: 3, max: 20, cap: 10 },
      ],
    });
    const { turns, quarantined, stats } = await readAll(source, one(strat));
    expect(turns.map((t) => `${t.conversationId}:${t.turnIndex}`)).toEqual([
      'a:1',
      'a:2',
      'a:3',
      'd:1',
      'd:1',
      'd:2',
      'g:1',
      'g:2',
      'h:1',
    ]);
    const h2 = quarantined.find((q) => q.line === 18);
    expect(h2).toMatchObject({ reason: 'out_of_range', field: 'numRequests', shard: 0 });
    expect(stats).toMatchObject({ rows: 10, turns: 9, quarantined: 5 });
  });
});

// Generated telemetry: 1,500 conversations over October 2026, some incomplete.
const generated = [...generateTelemetry({ conversations: 1_500, seed: 11 })].map((t) =>
  JSON.stringify(t),
);
const gzPath = writeJsonl('generated.jsonl.gz', generated, true);
const octWindow = { start: '2026-10-01T00:00:00Z', end: '2026-10-31T00:00:00Z' };

describe('FileSource: shards, caps and plans on generated telemetry', () => {
  const source = FileSource.fromPath(gzPath);
  const sessionOct = parseSelection({ query: 'sft_session_router_first_turns', window: octWindow });
  const strat = (seed: number, caps = [60, 40, 15]) =>
    parseSelection({
      query: 'sft_stratified_by_turn_count',
      window: octWindow,
      seed,
      buckets: [
        { name: 'A', min: 3, max: 5, cap: caps[0]! },
        { name: 'B', min: 6, max: 10, cap: caps[1]! },
        { name: 'C', min: 11, max: 20, cap: caps[2]! },
      ],
    });
  const ids = (turns: TelemetryTurn[]) =>
    turns.map((t) => `${t.conversationId}:${t.turnIndex}:${t.timestamp}`);

  it('the shard split covers every selected turn exactly once, for several shard counts', async () => {
    const whole = ids((await readAll(source, one(sessionOct))).turns);
    expect(whole.length).toBeGreaterThan(1_000);
    for (const n of [2, 5]) {
      const parts: string[][] = [];
      for (let k = 0; k < n; k++)
        parts.push(
          ids((await readAll(source, { ...one(sessionOct), shardCount: n, index: k })).turns),
        );
      const union = parts.flat();
      expect(new Set(union).size).toBe(union.length); // disjoint
      expect([...union].sort()).toEqual([...whole].sort()); // complete
      expect(parts.every((p) => p.length > 0)).toBe(true);
      const convShard = new Map<string, number>();
      parts.forEach((p, k) =>
        p.forEach((id) => {
          const conv = id.split(':')[0]!;
          expect(convShard.get(conv) ?? k).toBe(k); // a conversation lives in one shard
          convShard.set(conv, k);
        }),
      );
    }
  });

  it('per-bucket caps: at most cap conversations per bucket, each with all its turns, the same across shards', async () => {
    const sel = strat(3);
    const whole = (await readAll(source, one(sel))).turns;
    const byConv = new Map<string, TelemetryTurn[]>();
    for (const t of whole)
      byConv.set(t.conversationId, [...(byConv.get(t.conversationId) ?? []), t]);
    const bucketOf = (n: number) => (n <= 5 ? 'A' : n <= 10 ? 'B' : 'C');
    const perBucket: Record<string, number> = { A: 0, B: 0, C: 0 };
    for (const turns of byConv.values()) {
      const n = turns[0]!.turnCount;
      expect(n).toBeGreaterThanOrEqual(3);
      expect(n).toBeLessThanOrEqual(20);
      expect(turns.map((t) => t.turnIndex)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      perBucket[bucketOf(n)]!++;
    }
    expect(perBucket).toEqual({ A: 60, B: 40, C: 15 }); // the supply exceeds every cap

    // Planned into shards, the caps still hold globally: the shards' union is the whole.
    const plan = await source.planShards(sel, { maxRows: 300, headroom: 1 });
    expect(plan.shardCount).toBeGreaterThan(1);
    expect(plan.totals.rows).toBe(whole.length);
    expect(Object.keys(plan.thresholds ?? {})).toEqual(['A', 'B', 'C']);
    const union: TelemetryTurn[] = [];
    for (const spec of shardSpecs(plan)) {
      const { turns, stats } = await readAll(source, spec);
      expect(stats.rows).toBe(spec.expectedRows);
      expect(stats.rows).toBeLessThanOrEqual(300);
      union.push(...turns);
    }
    expect(ids(union).sort()).toEqual(ids(whole).sort());
  });

  it('a different seed picks other conversations, as many of them', async () => {
    const a = new Set((await readAll(source, one(strat(3)))).turns.map((t) => t.conversationId));
    const b = new Set((await readAll(source, one(strat(4)))).turns.map((t) => t.conversationId));
    expect(b.size).toBe(a.size);
    expect([...a].filter((x) => b.has(x)).length).toBeLessThan(a.size);
  });

  it('same file, same parameters: the same turns in the same order', async () => {
    const r1 = ids((await readAll(source, { ...one(strat(3)), shardCount: 3, index: 1 })).turns);
    const r2 = ids(
      (await readAll(FileSource.fromPath(gzPath), { ...one(strat(3)), shardCount: 3, index: 1 }))
        .turns,
    );
    expect(r2).toEqual(r1);
  });

  it('a cap larger than the supply takes the whole bucket', async () => {
    const { turns } = await readAll(source, one(strat(3, [100_000, 100_000, 100_000])));
    const convs = new Set(turns.map((t) => t.conversationId));
    const { turns: firsts } = await readAll(source, one(sessionOct));
    const eligible = firsts.filter((t) => t.turnCount >= 3 && t.turnCount <= 20);
    expect(convs.size).toBe(new Set(eligible.map((t) => t.conversationId)).size);
  });

  it('a plan that cannot fit (one conversation larger than a shard) is a clear error', async () => {
    await expect(
      source.planShards(strat(3), { maxRows: 5, headroom: 1, maxShards: 64 }),
    ).rejects.toThrow(ShardPlanError);
  });

  it('a file that changed since planning is an error, not a silent difference', async () => {
    const plan = await source.planShards(sessionOct, { maxRows: 400, headroom: 1 });
    const spec = { ...shardSpecs(plan)[0]!, expectedRows: shardSpecs(plan)[0]!.expectedRows! + 1 };
    await expect(readAll(source, spec)).rejects.toThrow(/shard 0 of \d+: .*the plan counted/);
  });

  it('reads the same export from blob storage (Azurite)', async () => {
    const { connectionString } = inject('azurite');
    const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(
      `fs-${randomUUID()}`,
    );
    await container.create();
    const blob = container.getBlockBlobClient('exports/telemetry.jsonl.gz');
    const { readFileSync } = await import('node:fs');
    await blob.uploadData(readFileSync(gzPath));
    const fromBlob = await readAll(FileSource.fromBlob(blob), one(sessionOct));
    const fromDisk = await readAll(source, one(sessionOct));
    expect(ids(fromBlob.turns)).toEqual(ids(fromDisk.turns));
    const missing = FileSource.fromBlob(container.getBlockBlobClient('nope.jsonl'));
    await expect(readAll(missing, one(sessionOct))).rejects.toThrow(
      /cannot read blob .*nope\.jsonl/,
    );
  });
});
