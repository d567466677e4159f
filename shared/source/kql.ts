/**
 * Building what is sent to Kusto: query parameters as the KQL literals the service
 * parses (as the Java and .NET SDKs format them), the planning queries derived from
 * each query file, and the table alias for a differently named table. Pure text; the
 * adapter reads the files and sends it.
 */
import type { QueryName, Selection, ShardSpec, Threshold } from './telemetry';
import { TELEMETRY_TABLE } from './schema';

/** `long(42)`. */
export function kqlLong(n: number): string {
  if (!Number.isSafeInteger(n)) throw new RangeError(`not a safe integer: ${n}`);
  return `long(${n})`;
}

/** `datetime(2024-05-01T00:00:00.0000000Z)`, from any ISO instant (normalized to UTC). */
export function kqlDatetime(iso: string): string {
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw new RangeError(`not a timestamp: ${iso}`);
  // Keep digits past the millisecond that Date drops (Kusto has 100 ns ticks).
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  const ticks = frac.slice(3, 7).padEnd(4, '0');
  return `datetime(${new Date(ms).toISOString().slice(0, 23)}${ticks}Z)`;
}

/** `time(1.02:03:04.005)` for a non-negative number of milliseconds. */
export function kqlTimespan(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`not a timespan: ${ms} ms`);
  const d = Math.floor(ms / 86_400_000);
  const h = Math.floor(ms / 3_600_000) % 24;
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const f = ms % 1000;
  const two = (x: number) => String(x).padStart(2, '0');
  return `time(${d}.${two(h)}:${two(m)}:${two(s)}.${String(f).padStart(3, '0')})`;
}

/** `dynamic([...])`: JSON is a KQL dynamic literal. */
export function kqlDynamic(value: unknown): string {
  return `dynamic(${JSON.stringify(value)})`;
}

/**
 * The parameters each query file declares, name → KQL type. test/kusto/ checks these
 * against the `declare query_parameters` of the files, so the two cannot drift.
 */
export const QUERY_PARAMETERS: Record<QueryName, Record<string, string>> = {
  sft_session_router_first_turns: {
    windowStart: 'datetime',
    windowEnd: 'datetime',
    maxConversationSpan: 'timespan',
    shardCount: 'long',
    shard: 'long',
    allTurns: 'bool',
  },
  sft_stratified_by_turn_count: {
    windowStart: 'datetime',
    windowEnd: 'datetime',
    maxConversationSpan: 'timespan',
    shardCount: 'long',
    shard: 'long',
    seed: 'string',
    buckets: 'dynamic',
  },
};

/**
 * Parameter values for a selection split `shardCount` ways, reading shard `shard`
 * (-1: every shard). String values go raw: that is how Kusto takes a string parameter.
 */
export function queryParameters(
  selection: Selection,
  shardCount: number,
  shard: number,
  thresholds?: Record<string, Threshold | null>,
): Record<string, string> {
  const p: Record<string, string> = {
    windowStart: kqlDatetime(selection.window.start),
    windowEnd: kqlDatetime(selection.window.end),
    maxConversationSpan: kqlTimespan(selection.window.maxConversationSpanMs),
    shardCount: kqlLong(shardCount),
    shard: kqlLong(shard),
  };
  if (selection.query === 'sft_session_router_first_turns')
    p.allTurns = selection.turns === 'all' ? 'bool(true)' : 'bool(false)';
  if (selection.query === 'sft_stratified_by_turn_count') {
    p.seed = String(selection.seed);
    p.buckets = kqlDynamic(
      selection.buckets.map((b) => {
        const t = thresholds?.[b.name] ?? null;
        return {
          name: b.name,
          min: b.min,
          max: b.max,
          cap: b.cap,
          thresholdKey: t ? t.key : -1,
          thresholdId: t ? t.conversationId : '',
        };
      }),
    );
  }
  return p;
}

/** {@link queryParameters} for one shard of a plan. */
export function shardParameters(spec: ShardSpec): Record<string, string> {
  return queryParameters(spec.selection, spec.shardCount, spec.index, spec.thresholds);
}

const FINAL = /(^|\n)Output\s*$/;

/** The query with its final `Output` statement replaced by `expression`. */
export function replaceOutput(queryText: string, expression: string): string {
  if (!FINAL.test(queryText))
    throw new Error('query file must end with the statement `Output` (see queries/README.md)');
  return queryText.replace(FINAL, `$1${expression}`);
}

/** Rows and estimated bytes per shard of `shardCount` (run with shard = -1). */
export function countQuery(queryText: string): string {
  return replaceOutput(
    queryText,
    'Output\n| summarize rows = count(), bytes = sum(estimate_data_size(*)) by shardIndex = hash(conversationId, shardCount)',
  );
}

/** Each bucket's last selected (sampleKey, conversationId), unsharded (stratified only). */
export function thresholdQuery(queryText: string): string {
  return replaceOutput(
    queryText,
    'Selected\n| summarize arg_max(sampleKey, conversationId), selected = count() by bucket',
  );
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Points the query at another table: `let Telemetry = ['MyTable'];` ahead of it.
 * Column names must still match (map them with a stored function otherwise).
 */
export function withTable(queryText: string, table: string): string {
  if (table === TELEMETRY_TABLE) return queryText;
  if (!IDENTIFIER.test(table) && !/^[A-Za-z0-9_ .-]+$/.test(table))
    throw new RangeError(`not a Kusto table name: ${JSON.stringify(table)}`);
  return `let ${TELEMETRY_TABLE} = ['${table}'];\n${queryText}`;
}
