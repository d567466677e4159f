import { describe, expect, it } from 'vitest';
import {
  completeCounts,
  nextShardCount,
  parseSelection,
  planShardCounts,
  ShardLimitsSchema,
  ShardPlanError,
  shardSpecs,
  type ShardCount,
} from '../../shared/source/telemetry';
import {
  countQuery,
  kqlDatetime,
  kqlDynamic,
  kqlLong,
  kqlTimespan,
  replaceOutput,
  withTable,
} from '../../shared/source/kql';
import {
  compareInstant,
  fileSampleKey,
  fileShardOf,
  parseInstant,
  SAMPLE_KEY_SPACE,
} from '../../shared/source/selection';

const limits = ShardLimitsSchema.parse({});
const window = { start: '2026-01-01T00:00:00Z', end: '2026-01-02T00:00:00Z' };

describe('shard planning math', () => {
  it('keeps a count that fits (half of 500,000 rows and of 64 MB by default)', () => {
    expect(
      nextShardCount([{ index: 0, rows: 250_000, bytes: 32 * 2 ** 20 }], 1, limits),
    ).toBeNull();
  });

  it.each([
    [[{ index: 0, rows: 250_001, bytes: 0 }], 1, 2],
    [[{ index: 0, rows: 1_000_000, bytes: 0 }], 1, 5], // 4× over, +25%
    [[{ index: 0, rows: 10, bytes: 100 * 2 ** 20 }], 1, 4], // bytes decide: 3.125× → 4
    [
      [
        { index: 0, rows: 100, bytes: 0 },
        { index: 1, rows: 260_000, bytes: 0 },
      ],
      2,
      4,
    ], // at least doubles
  ] as [ShardCount[], number, number][])(
    'over the limits → %#: next count %s → %s',
    (counts, n, next) => {
      expect(nextShardCount(counts, n, limits)).toBe(next);
    },
  );

  it('fills shards the count query did not return and rejects impossible indexes', () => {
    expect(completeCounts([{ index: 2, rows: 5, bytes: 50 }], 3)).toEqual([
      { index: 0, rows: 0, bytes: 0 },
      { index: 1, rows: 0, bytes: 0 },
      { index: 2, rows: 5, bytes: 50 },
    ]);
    expect(() => completeCounts([{ index: 3, rows: 1, bytes: 1 }], 3)).toThrow(ShardPlanError);
  });

  it('plans by counting, and names the tries when nothing fits', async () => {
    const sel = parseSelection({ query: 'sft_session_router_first_turns', window });
    const tried: number[] = [];
    const plan = await planShardCounts('kusto', sel, { maxRows: 100, headroom: 1 }, (n) => {
      tried.push(n);
      return Promise.resolve(
        Array.from({ length: n }, (_, index) => ({ index, rows: Math.ceil(350 / n), bytes: 0 })),
      );
    });
    expect(tried).toEqual([1, 5]);
    expect(plan.shardCount).toBe(5);
    expect(shardSpecs(plan)).toHaveLength(5);
    await expect(
      planShardCounts('kusto', sel, { maxRows: 100, headroom: 1, maxShards: 16 }, (n) =>
        Promise.resolve([
          { index: 0, rows: 101, bytes: 0 },
          ...Array.from({ length: n - 1 }, (_, i) => ({ index: i + 1, rows: 0, bytes: 0 })),
        ]),
      ),
    ).rejects.toThrow(
      /no shard count up to 16 .* \(tried 1, 2, 4, 8, 16; the largest shard of 16 had 101 rows/,
    );
  });
});

describe('selections', () => {
  it('rejects overlapping buckets, duplicate names and an empty window', () => {
    const strat = (buckets: object[]) => () =>
      parseSelection({ query: 'sft_stratified_by_turn_count', window, buckets } as never);
    expect(
      strat([
        { name: 'A', min: 3, max: 6, cap: 1 },
        { name: 'B', min: 6, max: 10, cap: 1 },
      ]),
    ).toThrow(/overlap/);
    expect(
      strat([
        { name: 'A', min: 3, max: 5, cap: 1 },
        { name: 'A', min: 6, max: 10, cap: 1 },
      ]),
    ).toThrow(/unique/);
    expect(() =>
      parseSelection({
        query: 'sft_session_router_first_turns',
        window: { start: window.end, end: window.start },
      }),
    ).toThrow(/before its end/);
  });

  it('defaults to the seed’s buckets, ~25k conversations', () => {
    const s = parseSelection({ query: 'sft_stratified_by_turn_count', window });
    expect(
      s.query === 'sft_stratified_by_turn_count' && s.buckets.map((b) => [b.name, b.min, b.max]),
    ).toEqual([
      ['A', 3, 5],
      ['B', 6, 10],
      ['C', 11, 20],
    ]);
    expect(
      s.query === 'sft_stratified_by_turn_count' && s.buckets.reduce((a, b) => a + b.cap, 0),
    ).toBe(25_000);
  });
});

describe('KQL literals and query text', () => {
  it.each([
    ['2026-01-01T00:00:00Z', 'datetime(2026-01-01T00:00:00.0000000Z)'],
    ['2026-01-01T01:30:00.1234567+01:30', 'datetime(2026-01-01T00:00:00.1234567Z)'],
    ['2026-06-30T23:59:59.9Z', 'datetime(2026-06-30T23:59:59.9000000Z)'],
  ])('%s → %s', (iso, lit) => expect(kqlDatetime(iso)).toBe(lit));

  it('formats timespans, longs and dynamics', () => {
    expect(kqlTimespan(90_061_001)).toBe('time(1.01:01:01.001)');
    expect(kqlLong(-1)).toBe('long(-1)');
    expect(() => kqlLong(2 ** 60)).toThrow(RangeError);
    expect(kqlDynamic([{ a: "it's" }])).toBe('dynamic([{"a":"it\'s"}])');
  });

  it('derives planning queries only from files that end in Output', () => {
    expect(countQuery('let Output = T;\nOutput\n')).toMatch(
      /^let Output = T;\nOutput\n\| summarize rows = count\(\)/,
    );
    expect(() => replaceOutput('T | take 1', 'x')).toThrow(/must end with the statement `Output`/);
  });

  it('aliases another table by name and refuses anything that is not a name', () => {
    expect(withTable('Q', 'Telemetry')).toBe('Q');
    expect(withTable('Q', 'TurnsV2')).toBe("let Telemetry = ['TurnsV2'];\nQ");
    expect(() => withTable('Q', "x']; .drop table y; //")).toThrow(/not a Kusto table name/);
  });
});

describe('file hashing', () => {
  it('puts a conversation in one shard in range, the same every time, spread evenly', () => {
    const counts = new Array<number>(7).fill(0);
    for (let i = 0; i < 7_000; i++) {
      const k = fileShardOf(`conv-${i}`, 7);
      expect(fileShardOf(`conv-${i}`, 7)).toBe(k);
      counts[k]!++;
    }
    for (const c of counts) expect(Math.abs(c - 1_000)).toBeLessThan(150); // ±15%, 4.7σ
    expect(fileShardOf('anything', 1)).toBe(0);
  });

  it('sample keys lie in [0, 2^52) and depend on the seed', () => {
    const k = fileSampleKey(42, 'c1');
    expect(Number.isSafeInteger(k) && k >= 0 && k < SAMPLE_KEY_SPACE).toBe(true);
    expect(fileSampleKey(43, 'c1')).not.toBe(k);
  });

  it('compares instants past the millisecond', () => {
    expect(
      compareInstant(
        parseInstant('2026-01-01T00:00:00.0000001Z'),
        parseInstant('2026-01-01T00:00:00Z'),
      ),
    ).toBeGreaterThan(0);
    expect(
      compareInstant(
        parseInstant('2026-01-01T01:00:00+01:00'),
        parseInstant('2026-01-01T00:00:00Z'),
      ),
    ).toBe(0);
  });
});
