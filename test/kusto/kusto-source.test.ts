import type { TokenCredential } from '@azure/identity';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KustoSource } from '../../adapters/kusto/source';
import {
  parseSelection,
  ShardTruncatedError,
  shardSpecs,
  SourceQueryError,
  SourceTransientError,
  type ShardSpec,
  type SourceQuarantineRecord,
} from '../../shared/source/telemetry';
import { shardParameters } from '../../shared/source/kql';
import { TELEMETRY_COLUMNS } from '../../shared/source/schema';
import type { TelemetryTurn } from '../../shared/contracts/rows';
import {
  oneApiError,
  startV2Server,
  TRUNCATION_ERROR,
  v2Frames,
  type Column,
  type Handler,
  type V2Server,
} from './v2-server';

const COLUMNS: Column[] = TELEMETRY_COLUMNS.map((c) => ({
  ColumnName: c.name,
  ColumnType: c.type,
}));
const SESSION_KQL = readFileSync(
  join(process.cwd(), 'queries/sft_session_router_first_turns.kql'),
  'utf8',
);

const session = parseSelection({
  query: 'sft_session_router_first_turns',
  window: { start: '2026-03-01T00:00:00Z', end: '2026-03-08T00:00:00Z' },
});
const stratified = parseSelection({
  query: 'sft_stratified_by_turn_count',
  window: { start: '2026-03-01T00:00:00Z', end: '2026-03-08T00:00:00Z' },
  buckets: [
    { name: 'A', min: 3, max: 5, cap: 100 },
    { name: 'B', min: 6, max: 10, cap: 100 },
  ],
  seed: 7,
});

/** A row as Kusto returns it, in column order. */
function row(id: string, over: Partial<Record<string, unknown>> = {}): unknown[] {
  const r: Record<string, unknown> = {
    conversationId: id,
    turnIndex: 1,
    turnCount: 4,
    userMessage: `refactor ${id}`,
    model: 'gpt-5',
    numRequests: 3,
    turnDurationMs: 12500.5,
    promptTokenDelta: 900,
    tools: ['read_file', 'edit_file'],
    timestamp: '2026-03-02T10:00:00.1234567Z',
    ...over,
  };
  return TELEMETRY_COLUMNS.map((c) => r[c.name]);
}

const ok = (rows: unknown[]) => ({ status: 200, body: v2Frames(COLUMNS, rows) });

function collect() {
  const turns: TelemetryTurn[] = [];
  const quarantined: SourceQuarantineRecord[] = [];
  return {
    turns,
    quarantined,
    sink: {
      onTurn: (t: TelemetryTurn) => turns.push(t),
      onQuarantine: (q: SourceQuarantineRecord) => quarantined.push(q),
    },
  };
}

const credential: TokenCredential = {
  getToken: () =>
    Promise.resolve({ token: 'token-123', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

describe('KustoSource against a local Kusto v2 endpoint (real azure-kusto-data client)', () => {
  let server: V2Server;
  const sleeps: number[] = [];
  const source = (over: Partial<ConstructorParameters<typeof KustoSource>[0]> = {}) =>
    new KustoSource({
      clusterUri: server.url,
      database: 'telemetry',
      credential: null,
      runId: 'run-1',
      serverTimeoutMs: 120_000,
      maxRetries: 3,
      retryBaseMs: 5,
      sleep: (ms) => {
        sleeps.push(ms);
        return Promise.resolve();
      },
      ...over,
    });

  beforeAll(async () => {
    server = await startV2Server(() => ok([]));
  });
  afterAll(async () => {
    await server.close();
  });
  const reset = (h: Handler) => {
    server.requests.length = 0;
    sleeps.length = 0;
    server.setHandler(h);
  };

  const spec: ShardSpec = {
    source: 'kusto',
    selection: session,
    shardCount: 8,
    index: 3,
    expectedRows: 4,
  };

  it('sends the query, parameters, timeout, request id and token; maps rows to turns; quarantines bad rows', async () => {
    reset(() =>
      ok([
        row('c1'),
        row('c2', { numRequests: -1 }),
        row('c3', { userMessage: null }),
        row('c4', { tools: [], turnDurationMs: 0 }),
      ]),
    );
    const { turns, quarantined, sink } = collect();
    const stats = await source({ credential }).readShard(spec, sink);
    expect(server.requests).toHaveLength(1);
    const req = server.requests[0]!;
    expect(req.body.db).toBe('telemetry');
    expect(req.body.csl).toBe(SESSION_KQL.trim());
    expect(req.body.properties?.Parameters).toEqual(shardParameters(spec));
    expect(req.body.properties?.Parameters).toMatchObject({
      shardCount: 'long(8)',
      shard: 'long(3)',
      windowStart: 'datetime(2026-03-01T00:00:00.0000000Z)',
      maxConversationSpan: 'time(1.00:00:00.000)',
    });
    expect(req.body.properties?.Options).toEqual({ servertimeout: '00:02:00.000' });
    expect(req.headers['x-ms-client-request-id']).toBe('sft-balancer.readShard.3of8;run-1;0');
    expect(req.headers['x-ms-app']).toBe('sft-balancer');
    expect(req.headers.authorization).toBe('Bearer token-123');

    expect(turns.map((t) => t.conversationId)).toEqual(['c1', 'c4']);
    expect(turns[0]).toEqual({
      conversationId: 'c1',
      turnIndex: 1,
      turnCount: 4,
      userMessage: 'refactor c1',
      model: 'gpt-5',
      numRequests: 3,
      turnDurationMs: 12500.5,
      promptTokenDelta: 900,
      tools: ['read_file', 'edit_file'],
      timestamp: '2026-03-02T10:00:00.1234567Z',
    });
    expect(quarantined.map((q) => [q.line, q.reason, q.field, q.shard, q.origin])).toEqual([
      [2, 'out_of_range', 'numRequests', 3, 'kusto:telemetry'],
      [3, 'missing_field', 'userMessage', 3, 'kusto:telemetry'],
    ]);
    expect(quarantined[0]!.detail).toMatch(/numRequests/);
    expect(stats).toEqual({
      shard: 3,
      rows: 4,
      turns: 2,
      quarantined: 2,
      quarantinedByReason: { out_of_range: 1, missing_field: 1 },
    });
  });

  it('sends no Authorization header without a credential (loopback only)', async () => {
    reset(() => ok([row('c1'), row('c2'), row('c3'), row('c4')]));
    await source().readShard(spec, collect().sink);
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
    expect(
      () =>
        new KustoSource({
          clusterUri: 'https://x.kusto.windows.net',
          database: 'd',
          credential: null,
        }),
    ).toThrow(/credential is required/);
  });

  it('retries a throttled query with backoff and a fresh request id, then succeeds', async () => {
    reset((_req, n) =>
      n <= 2
        ? { status: 429, body: oneApiError('TooManyRequests', 'throttled') }
        : ok([row('c1'), row('c2'), row('c3'), row('c4')]),
    );
    const { turns, sink } = collect();
    await source().readShard(spec, sink);
    expect(server.requests.map((r) => r.headers['x-ms-client-request-id'])).toEqual([
      'sft-balancer.readShard.3of8;run-1;0',
      'sft-balancer.readShard.3of8;run-1;1',
      'sft-balancer.readShard.3of8;run-1;2',
    ]);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[1]!).toBeGreaterThanOrEqual(5); // base 5 ms, doubled, jittered in [½, 1]
    expect(sleeps[1]!).toBeLessThanOrEqual(10);
    expect(turns).toHaveLength(4);
  });

  it('honours Retry-After when the service sends one', async () => {
    reset((_req, n) =>
      n === 1
        ? {
            status: 429,
            body: oneApiError('TooManyRequests', 'throttled'),
            headers: { 'Retry-After': '2' },
          }
        : ok([row('c1'), row('c2'), row('c3'), row('c4')]),
    );
    await source().readShard(spec, collect().sink);
    expect(sleeps).toEqual([2000]);
  });

  it('gives up after the retries with a transient error the queue can redeliver', async () => {
    reset(() => ({ status: 429, body: oneApiError('TooManyRequests', 'throttled') }));
    const err = await source()
      .readShard(spec, collect().sink)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceTransientError);
    expect((err as Error).name).toBe('SourceTransientError');
    expect((err as Error).cause).toBeDefined();
    expect(server.requests).toHaveLength(4);
  });

  it('a truncated result is an error naming the shard, and no row is handed on', async () => {
    reset(() => ({
      status: 200,
      body: v2Frames(COLUMNS, [row('c1'), row('c2')], { partialFailure: TRUNCATION_ERROR }),
    }));
    const { turns, quarantined, sink } = collect();
    const err = await source()
      .readShard({ ...spec, index: 5 }, sink)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShardTruncatedError);
    expect((err as ShardTruncatedError).shard).toBe(5);
    expect((err as Error).message).toMatch(/^shard 5 of 8: Kusto truncated the result/);
    expect(turns).toHaveLength(0);
    expect(quarantined).toHaveLength(0);
    expect(server.requests).toHaveLength(1); // a truncation is not retried
  });

  it('a truncation reported only inside the rows (the SDK does not throw) is caught too', async () => {
    reset(() => ({
      status: 200,
      body: v2Frames(COLUMNS, [row('c1'), row('c2'), row('c3'), row('c4')], {
        partialFailure: TRUNCATION_ERROR,
        flagged: false,
      }),
    }));
    const { turns, sink } = collect();
    const err = await source()
      .readShard(spec, sink)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShardTruncatedError);
    expect((err as Error).message).toMatch(/^shard 3 of 8:/);
    expect(turns).toHaveLength(0);
  });

  it('fewer rows than the plan counted is treated as a cut result', async () => {
    reset(() => ok([row('c1')]));
    const err = await source()
      .readShard(spec, collect().sink)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShardTruncatedError);
    expect((err as Error).message).toMatch(/shard 3 of 8: .*1 rows, the plan counted 4/);
  });

  it('a rejected query is a permanent error, not retried', async () => {
    reset(() => ({
      status: 400,
      body: oneApiError(
        'General_BadRequest',
        "Semantic error: SEM0100: Failed to resolve table expression named 'Telemetry'",
      ),
    }));
    const err = await source()
      .readShard(spec, collect().sink)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceQueryError);
    expect((err as Error).message).toMatch(/SEM0100/);
    expect(server.requests).toHaveLength(1);
  });

  it('profiles the complexity signals on a sample shard', async () => {
    reset(() => ({
      status: 200,
      body: v2Frames(
        ['signal:string', 'n:long', 'p10:real', 'p25:real', 'p50:real', 'p75:real', 'p90:real'].map(
          (c) => {
            const [ColumnName, ColumnType] = c.split(':');
            return { ColumnName: ColumnName!, ColumnType: ColumnType! };
          },
        ),
        [['numRequests', 1200, 0, 1, 2, 5, 11]],
      ),
    }));
    const profile = await source().profileSignals(session.window, 16, 0);
    expect(profile).toEqual([
      { signal: 'numRequests', n: 1200, p10: 0, p25: 1, p50: 2, p75: 5, p90: 11 },
    ]);
    const req = server.requests[0]!;
    expect(req.body.csl).toContain('sft_complexity_signal_profile');
    expect(req.body.properties?.Parameters).toMatchObject({
      shardCount: 'long(16)',
      shard: 'long(0)',
    });
  });

  it('plans shards by counting first: grows the shard count until every shard is well under the limits', async () => {
    const TOTAL = 600_000;
    reset((req) => {
      const n = Number(/long\((\d+)\)/.exec(req.body.properties!.Parameters!.shardCount!)![1]);
      const rows = Array.from({ length: n }, (_, k) => [
        k,
        Math.floor(TOTAL / n) + (k < TOTAL % n ? 1 : 0),
        (TOTAL / n) * 100,
      ]);
      return {
        status: 200,
        body: v2Frames(
          [
            { ColumnName: 'shardIndex', ColumnType: 'long' },
            { ColumnName: 'rows', ColumnType: 'long' },
            { ColumnName: 'bytes', ColumnType: 'long' },
          ],
          rows,
        ),
      };
    });
    const plan = await source().planShards(session);
    expect(
      server.requests.every((r) =>
        r.body.csl.includes(
          'summarize rows = count(), bytes = sum(estimate_data_size(*)) by shardIndex',
        ),
      ),
    ).toBe(true);
    expect(server.requests.every((r) => r.body.properties!.Parameters!.shard === 'long(-1)')).toBe(
      true,
    );
    expect(plan.attempts.map((a) => a.shardCount)).toEqual([1, 3]);
    expect(plan.shardCount).toBe(3);
    expect(plan.totals.rows).toBe(TOTAL);
    expect(Math.max(...plan.shards.map((s) => s.rows))).toBeLessThanOrEqual(250_000);
    expect(shardSpecs(plan).map((s) => [s.index, s.expectedRows])).toEqual([
      [0, 200_000],
      [1, 200_000],
      [2, 200_000],
    ]);
  });

  it('plans by bytes too: rows under the limit but 40 MB a shard is split', async () => {
    reset((req) => {
      const n = Number(/long\((\d+)\)/.exec(req.body.properties!.Parameters!.shardCount!)![1]);
      const rows = Array.from({ length: n }, (_, k) => [
        k,
        Math.ceil(10_000 / n),
        Math.ceil((40 * 2 ** 20) / n),
      ]);
      return {
        status: 200,
        body: v2Frames(
          [
            { ColumnName: 'shardIndex', ColumnType: 'long' },
            { ColumnName: 'rows', ColumnType: 'long' },
            { ColumnName: 'bytes', ColumnType: 'long' },
          ],
          rows,
        ),
      };
    });
    const plan = await source().planShards(session);
    expect(plan.shardCount).toBe(2);
    expect(plan.shards.every((s) => s.bytes <= 32 * 2 ** 20)).toBe(true);
  });

  it('stratified plans find each bucket’s threshold first and carry it to every shard', async () => {
    const seen: string[] = [];
    reset((req) => {
      if (req.body.csl.includes('arg_max(sampleKey, conversationId)')) {
        seen.push('thresholds');
        return {
          status: 200,
          body: v2Frames(
            [
              { ColumnName: 'bucket', ColumnType: 'string' },
              { ColumnName: 'sampleKey', ColumnType: 'long' },
              { ColumnName: 'conversationId', ColumnType: 'string' },
              { ColumnName: 'selected', ColumnType: 'long' },
            ],
            [['A', 123456789, 'conv-77', 100]],
          ),
        };
      }
      seen.push('count');
      return {
        status: 200,
        body: v2Frames(
          [
            { ColumnName: 'shardIndex', ColumnType: 'long' },
            { ColumnName: 'rows', ColumnType: 'long' },
            { ColumnName: 'bytes', ColumnType: 'long' },
          ],
          [[0, 700, 70_000]],
        ),
      };
    });
    const plan = await source().planShards(stratified);
    expect(seen).toEqual(['thresholds', 'count']);
    const thresholdParams = server.requests[0]!.body.properties!.Parameters!;
    expect(thresholdParams.shardCount).toBe('long(1)');
    expect(JSON.parse(thresholdParams.buckets!.slice('dynamic('.length, -1))).toEqual([
      { name: 'A', min: 3, max: 5, cap: 100, thresholdKey: -1, thresholdId: '' },
      { name: 'B', min: 6, max: 10, cap: 100, thresholdKey: -1, thresholdId: '' },
    ]);
    expect(plan.thresholds).toEqual({ A: { key: 123456789, conversationId: 'conv-77' }, B: null });
    const countBuckets = JSON.parse(
      server.requests[1]!.body.properties!.Parameters!.buckets!.slice('dynamic('.length, -1),
    );
    expect(countBuckets[0]).toMatchObject({ thresholdKey: 123456789, thresholdId: 'conv-77' });
    expect(server.requests[1]!.body.properties!.Parameters!.seed).toBe('7');

    reset(() =>
      ok(Array.from({ length: 700 }, (_, i) => row(`s${i}`, { turnIndex: (i % 4) + 1 }))),
    );
    const { turns, sink } = collect();
    await source().readShard(shardSpecs(plan)[0]!, sink);
    expect(turns).toHaveLength(700);
    expect(server.requests[0]!.body.properties!.Parameters!.buckets).toContain(
      '"thresholdKey":123456789',
    );
  });
});
