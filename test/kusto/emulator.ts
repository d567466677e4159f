/**
 * A local Kusto that answers the session query and its count query by the KQL's
 * TypeScript mirror (shared/source/selection.ts), for the v2 wire server: the Kusto
 * tests of the Functions build and of the CLI share it.
 */
import { parseSelection } from '../../shared/source/telemetry';
import { fileShardOf, Selector, type SelectionKey } from '../../shared/source/selection';
import { TELEMETRY_COLUMNS } from '../../shared/source/schema';
import { v2Frames, type RecordedRequest } from './v2-server';

/** Undoes shared/source/kql.ts's literals: datetime(...), time(d.hh:mm:ss.fff), long(n), bool(b). */
function unliteral(params: Record<string, string>) {
  const inner = (v: string) => v.slice(v.indexOf('(') + 1, -1);
  const span = /^(\d+)\.(\d\d):(\d\d):(\d\d)\.(\d\d\d)$/.exec(inner(params.maxConversationSpan!))!;
  const [d, h, m, s, ms] = span.slice(1).map(Number) as [number, number, number, number, number];
  return {
    start: inner(params.windowStart!),
    end: inner(params.windowEnd!),
    spanMs: (((d * 24 + h) * 60 + m) * 60 + s) * 1000 + ms,
    shardCount: Number(inner(params.shardCount!)),
    shard: Number(inner(params.shard!)),
    allTurns: inner(params.allTurns!) === 'true',
  };
}

/** A Kusto that answers the session query and its count query by the TypeScript mirror. */
export function emulate(rows: Record<string, unknown>[]) {
  return (req: RecordedRequest) => {
    const p = unliteral(req.body.properties!.Parameters!);
    const selection = parseSelection({
      query: 'sft_session_router_first_turns',
      window: { start: p.start, end: p.end, maxConversationSpanMs: p.spanMs },
      turns: p.allTurns ? 'all' : 'first',
    });
    const selector = new Selector<Record<string, unknown>>(selection, {
      shardCount: p.shard < 0 ? 1 : p.shardCount,
      shard: p.shard < 0 ? -1 : p.shard,
      keepRows: true,
    });
    for (const r of rows) selector.add(r as unknown as SelectionKey, r, JSON.stringify(r).length);
    const selected = selector.finish().conversations;
    if (req.body.csl.includes('summarize rows = count()')) {
      const counts = new Map<number, [number, number]>();
      for (const c of selected) {
        const k = fileShardOf(c.conversationId, p.shardCount);
        const [n, b] = counts.get(k) ?? [0, 0];
        counts.set(k, [n + c.rowCount, b + c.bytes]);
      }
      return {
        status: 200,
        body: v2Frames(
          ['shardIndex', 'rows', 'bytes'].map((n) => ({ ColumnName: n, ColumnType: 'long' })),
          [...counts].map(([k, [n, b]]) => [k, n, b]),
        ),
      };
    }
    return {
      status: 200,
      body: v2Frames(
        TELEMETRY_COLUMNS.map((c) => ({ ColumnName: c.name, ColumnType: c.type })),
        selected.flatMap((c) => c.rows.map((r) => TELEMETRY_COLUMNS.map((col) => r[col.name]))),
      ),
    };
  };
}
