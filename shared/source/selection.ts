/**
 * The selection of queries/*.kql, in TypeScript, for sources that are not Kusto (a
 * JSONL export). Same meaning, clause by clause:
 *
 * - a row takes part when it has a usable conversationId, turnIndex, turnCount
 *   (1 ≤ turnIndex ≤ turnCount) and timestamp, and the timestamp lies in
 *   [window.start, window.end + maxConversationSpan);
 * - a conversation is complete when its distinct (turnIndex, turnCount) pairs number
 *   turnCount and all agree on turnCount, and is in the window when its first turn is
 *   in [window.start, window.end);
 * - session query: the turnIndex = 1 rows of complete conversations (every row with
 *   turns = 'all'); stratified query:
 *   every row of the complete conversations whose turnCount lies in a bucket, at most
 *   `cap` per bucket, taken in (sampleKey, conversationId) order, above a threshold
 *   when one is given;
 * - output ordered by conversationId, turnIndex, timestamp.
 *
 * One difference, by design: the shard of a conversation is {@link fileShardOf}, not
 * Kusto's hash() (xxhash64, which the service does not document bit for bit), and the
 * sampleKey is {@link fileSampleKey}, not Kusto's. A file and a Kusto table with the
 * same rows split into the same number of shards therefore put a conversation in
 * different shard numbers, and a capped bucket may pick different conversations; each
 * split still covers every conversation exactly once, deterministically, and each
 * pick is still a seeded uniform sample of the same size.
 */
import type { Selection, Threshold } from './telemetry';
import { hash64 } from '../util/hash';
import { isIsoTimestamp, type RowProblem } from '../contracts/rows';

/** 2^52: sample keys lie in [0, 2^52), exact in a double, as in the KQL. */
export const SAMPLE_KEY_SPACE = 4_503_599_627_370_496;

/** The shard of a conversation among `shardCount`, for file sources. */
export function fileShardOf(conversationId: string, shardCount: number): number {
  if (shardCount <= 1) return 0;
  const [h1, h2] = hash64(conversationId, 0x5bd1e995);
  // 53 bits, then the remainder: uniform enough for any shard count a plan uses.
  return ((h1 * 2 ** 21 + (h2 >>> 11)) % shardCount) | 0;
}

/** The key that orders conversations within a capped bucket, in [0, 2^52). */
export function fileSampleKey(seed: string | number, conversationId: string): number {
  const [h1, h2] = hash64(`${seed}:${conversationId}`, 0x2545f491);
  return h1 * 2 ** 20 + (h2 >>> 12);
}

/** An instant as (epoch ms, 100 ns ticks past the ms) so boundaries compare exactly. */
export type Instant = readonly [number, number];

export function parseInstant(iso: string): Instant {
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  return [Date.parse(iso), Number(frac.slice(3, 7).padEnd(4, '0'))];
}

export function compareInstant(a: Instant, b: Instant): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** 2^21: a (turnIndex, turnCount) pair below it packs into one exact number. */
const PAIR_BASE = 2_097_152;

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/**
 * Why a row cannot take part in the selection (the fields the KQL filters on), or
 * null. Other fields are checked after selection, as for Kusto rows.
 */
export function keyProblem(row: Record<string, unknown>): RowProblem | null {
  const id = row.conversationId;
  if (id === undefined) return { reason: 'missing_field', field: 'conversationId' };
  if (typeof id !== 'string') return { reason: 'wrong_type', field: 'conversationId' };
  if (id.length === 0) return { reason: 'out_of_range', field: 'conversationId' };
  for (const f of ['turnIndex', 'turnCount'] as const) {
    const v = row[f];
    if (v === undefined) return { reason: 'missing_field', field: f };
    if (typeof v !== 'number' || !Number.isInteger(v)) return { reason: 'wrong_type', field: f };
    if (!isCount(v)) return { reason: 'out_of_range', field: f };
  }
  if ((row.turnIndex as number) > (row.turnCount as number))
    return { reason: 'turn_index_exceeds_turn_count', field: 'turnIndex' };
  const ts = row.timestamp;
  if (ts === undefined) return { reason: 'missing_field', field: 'timestamp' };
  if (typeof ts !== 'string') return { reason: 'wrong_type', field: 'timestamp' };
  if (!isIsoTimestamp(ts)) return { reason: 'bad_timestamp', field: 'timestamp' };
  return null;
}

export interface SelectionKey {
  conversationId: string;
  turnIndex: number;
  turnCount: number;
  timestamp: string;
}

interface Candidate<T> {
  key: SelectionKey;
  at: Instant;
  seq: number;
  payload: T;
  bytes: number;
}

interface ConversationState<T> {
  /** Distinct (turnIndex, turnCount) pairs, packed in a number when both are small. */
  pairs: Set<number | string>;
  minCount: number;
  maxCount: number;
  firstAt: Instant | null;
  rows: Candidate<T>[];
  rowCount: number;
  bytes: number;
}

export interface SelectedConversation<T> {
  conversationId: string;
  turnCount: number;
  bucket: string | null;
  sampleKey: number;
  /** Selected rows in output order (empty when rows were not kept). */
  rows: T[];
  rowCount: number;
  bytes: number;
}

export interface SelectionResult<T> {
  /** Ordered by conversationId. */
  conversations: SelectedConversation<T>[];
  /** Per capped bucket, the last conversation taken (null: none). */
  thresholds: Record<string, Threshold | null>;
  stats: {
    /** Rows inside the scanned time range and shard. */
    rowsInScope: number;
    conversations: number;
    complete: number;
    selected: number;
    selectedByBucket: Record<string, number>;
  };
}

export interface SelectorOptions {
  shardCount: number;
  /** -1: every shard. */
  shard: number;
  thresholds?: Record<string, Threshold | null> | undefined;
  /** Keep the payloads (reading a shard) or only count them (planning). */
  keepRows: boolean;
}

/**
 * Streams rows in, gives the selection out: the meaning of the KQL over rows that
 * already passed {@link keyProblem}.
 */
export class Selector<T> {
  private readonly byConversation = new Map<string, ConversationState<T>>();
  private readonly start: Instant;
  private readonly end: Instant;
  private readonly scanEnd: Instant;
  private seq = 0;
  private rowsInScope = 0;

  constructor(
    readonly selection: Selection,
    private readonly opts: SelectorOptions,
  ) {
    this.start = parseInstant(selection.window.start);
    this.end = parseInstant(selection.window.end);
    const span = selection.window.maxConversationSpanMs;
    this.scanEnd = [this.end[0] + span, this.end[1]];
  }

  /** Offers one key-valid row; `bytes` is its size, for shard planning. */
  add(key: SelectionKey, payload: T, bytes: number): void {
    const at = parseInstant(key.timestamp);
    if (compareInstant(at, this.start) < 0 || compareInstant(at, this.scanEnd) >= 0) return;
    const { shardCount, shard } = this.opts;
    if (shard >= 0 && fileShardOf(key.conversationId, shardCount) !== shard) return;
    this.rowsInScope++;
    let c = this.byConversation.get(key.conversationId);
    if (!c) {
      c = {
        pairs: new Set(),
        minCount: key.turnCount,
        maxCount: key.turnCount,
        firstAt: null,
        rows: [],
        rowCount: 0,
        bytes: 0,
      };
      this.byConversation.set(key.conversationId, c);
    }
    c.pairs.add(
      key.turnIndex < PAIR_BASE && key.turnCount < PAIR_BASE
        ? key.turnIndex * PAIR_BASE + key.turnCount
        : `${key.turnIndex}:${key.turnCount}`,
    );
    if (key.turnCount < c.minCount) c.minCount = key.turnCount;
    if (key.turnCount > c.maxCount) c.maxCount = key.turnCount;
    if (key.turnIndex === 1 && (c.firstAt === null || compareInstant(at, c.firstAt) < 0))
      c.firstAt = at;
    const sel = this.selection;
    if (
      sel.query === 'sft_session_router_first_turns' &&
      sel.turns === 'first' &&
      key.turnIndex !== 1
    )
      return;
    c.rowCount++;
    c.bytes += bytes;
    if (this.opts.keepRows) c.rows.push({ key, at, seq: this.seq++, payload, bytes });
  }

  finish(): SelectionResult<T> {
    const sel = this.selection;
    const complete: SelectedConversation<T>[] = [];
    for (const [conversationId, c] of this.byConversation) {
      if (c.minCount !== c.maxCount || c.pairs.size !== c.maxCount || c.firstAt === null) continue;
      if (compareInstant(c.firstAt, this.start) < 0 || compareInstant(c.firstAt, this.end) >= 0)
        continue;
      c.rows.sort(
        (a, b) => a.key.turnIndex - b.key.turnIndex || compareInstant(a.at, b.at) || a.seq - b.seq,
      );
      complete.push({
        conversationId,
        turnCount: c.maxCount,
        bucket: null,
        sampleKey: 0,
        rows: c.rows.map((r) => r.payload),
        rowCount: c.rowCount,
        bytes: c.bytes,
      });
    }
    const thresholds: Record<string, Threshold | null> = {};
    const selectedByBucket: Record<string, number> = {};
    let selected = complete;
    if (sel.query === 'sft_stratified_by_turn_count') {
      const perBucket = new Map<string, SelectedConversation<T>[]>();
      for (const b of sel.buckets) perBucket.set(b.name, []);
      for (const conv of complete) {
        const b = sel.buckets.find((x) => conv.turnCount >= x.min && conv.turnCount <= x.max);
        if (!b) continue;
        conv.bucket = b.name;
        conv.sampleKey = fileSampleKey(sel.seed, conv.conversationId);
        const t = this.opts.thresholds?.[b.name];
        if (t !== undefined && t !== null && !atOrBelow(conv, t)) continue;
        perBucket.get(b.name)!.push(conv);
      }
      selected = [];
      for (const b of sel.buckets) {
        const list = perBucket.get(b.name)!;
        list.sort(
          (x, y) => x.sampleKey - y.sampleKey || cmpStr(x.conversationId, y.conversationId),
        );
        const taken = list.slice(0, b.cap);
        selectedByBucket[b.name] = taken.length;
        const last = taken.at(-1);
        thresholds[b.name] = last
          ? { key: last.sampleKey, conversationId: last.conversationId }
          : null;
        selected.push(...taken);
      }
    }
    selected.sort((a, b) => cmpStr(a.conversationId, b.conversationId));
    return {
      conversations: selected,
      thresholds,
      stats: {
        rowsInScope: this.rowsInScope,
        conversations: this.byConversation.size,
        complete: complete.length,
        selected: selected.length,
        selectedByBucket,
      },
    };
  }
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function atOrBelow(conv: { sampleKey: number; conversationId: string }, t: Threshold): boolean {
  return (
    conv.sampleKey < t.key ||
    (conv.sampleKey === t.key && cmpStr(conv.conversationId, t.conversationId) <= 0)
  );
}
