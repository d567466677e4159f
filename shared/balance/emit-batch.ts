/**
 * A share of the build's dataset lines emitted into one buffer, to be written later in
 * key order: the build splits the picked lines between the main thread and a helper
 * (a worker thread, adapters/files/emit-worker.ts), each loading its lines' bytes and
 * emitting them ({@link emitBatch}); the main thread then writes and profiles all of
 * them in key order (StreamingBalancer.finishRawInto). Plain data both ways, so a batch
 * crosses threads by structured clone (the result's buffers transferred).
 */
import { DatasetLineEmitter, type EmittedSignals, type EmitterOptions } from './emit';

/** What to emit: input lines to read and, in key order, the dataset lines made of them. */
export interface EmitBatch {
  /** The input lines to read: line k is bytes [at[k], at[k] + len[k]) (sorted by at). */
  at: Float64Array;
  len: Float64Array;
  /** Per dataset line (key order): its input line (index into at/len) and cell (index into cells). */
  line: Int32Array;
  cell: Int32Array;
  /** Per dataset line: the id to write and the id it copies (null: a selected row, its own id). */
  id: (string | null)[];
  copyOf: (string | null)[];
  /** Each cell's `"strata":…,"weight":…` bytes (emit.ts cellBytes). */
  cells: Uint8Array[];
}

/** Numbers kept per emitted line: see {@link signalsAt}. */
export const SIGNALS = 9;

/** The dataset lines of a batch, in its order. */
export interface EmittedBatch {
  /** Line j is bytes [ends[j - 1] (0 for the first), ends[j]) (none when declined). */
  bytes: Uint8Array;
  ends: Float64Array;
  /** Lines the emitter declined (the exact path writes them): the input line's text, by index. */
  declined: Map<number, string>;
  /** {@link SIGNALS} numbers a line: what profiling needs (see {@link signalsAt}). */
  signals: Float64Array;
  models: string[];
}

/** Lines read back as bytes: line k is bytes [start(k), end(k)), text(k) its text. */
export interface BatchLines {
  bytes: Uint8Array;
  start(k: number): number;
  end(k: number): number;
  text(k: number): string;
}

/**
 * Loads and emits a batch elsewhere (a worker thread), started now; resolves, once the
 * helper has taken it, to a function giving the batch's dataset lines in order, a chunk
 * of consecutive lines a call, waiting until the next chunk is ready.
 */
export type EmitHelper = (batch: EmitBatch) => Promise<() => EmittedBatch>;

/** The input ranges of a batch, as a loader takes them. */
export function batchRanges(batch: EmitBatch): { at: number; len: number }[] {
  return Array.from(batch.at, (at, k) => ({ at, len: batch.len[k]! }));
}

/**
 * Emits dataset lines [from, to) of `batch` (default: all) from `lines` (its input
 * lines, loaded) into one buffer: line j of the batch is line j - from of the result.
 */
export function emitBatch(
  batch: EmitBatch,
  lines: BatchLines,
  opts: EmitterOptions,
  from = 0,
  to = batch.line.length,
): EmittedBatch {
  const em = new DatasetLineEmitter(opts);
  const n = to - from;
  const ends = new Float64Array(n);
  const signals = new Float64Array(n * SIGNALS);
  const declined = new Map<number, string>();
  const models = new Map<string, number>();
  let size = 4096;
  for (let j = from; j < to; j++) size += batch.len[batch.line[j]!]! * 1.5;
  let bytes: Uint8Array = new Uint8Array(Math.ceil(size));
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const j = from + i;
    const k = batch.line[j]!;
    const cell = batch.cells[batch.cell[j]!]!;
    const copyOf = batch.copyOf[j] ?? undefined;
    const m = em.emit(lines.bytes, lines.start(k), lines.end(k), batch.id[j]!, cell, copyOf);
    if (m < 0) declined.set(i, lines.text(k));
    else {
      if (pos + m > bytes.length) bytes = grown(bytes, pos + m);
      bytes.set(em.out.subarray(0, m), pos);
      pos += m;
      keepSignals(signals, i * SIGNALS, em.signals, models);
    }
    ends[i] = pos;
  }
  return { bytes: bytes.subarray(0, pos), ends, declined, signals, models: [...models.keys()] };
}

function grown(bytes: Uint8Array, need: number): Uint8Array {
  const more = new Uint8Array(Math.max(need, bytes.length * 2));
  more.set(bytes);
  return more;
}

function keepSignals(
  to: Float64Array,
  o: number,
  s: EmittedSignals,
  models: Map<string, number>,
): void {
  let model = models.get(s.model);
  if (model === undefined) models.set(s.model, (model = models.size));
  to[o] = s.label;
  to[o + 1] = s.turnIndex;
  to[o + 2] = s.turnCount;
  to[o + 3] = s.numRequests;
  to[o + 4] = s.turnDurationMs;
  to[o + 5] = s.promptTokenDelta;
  to[o + 6] = s.toolDiversity;
  to[o + 7] = s.confidence === undefined ? NaN : s.confidence;
  to[o + 8] = model;
}

/** Line j's signals of `got`, written into `into` (reused line after line). */
export function signalsAt(got: EmittedBatch, j: number, into: EmittedSignals): EmittedSignals {
  const s = got.signals;
  const o = j * SIGNALS;
  into.label = s[o] === 0 ? 0 : 1;
  into.turnIndex = s[o + 1]!;
  into.turnCount = s[o + 2]!;
  into.numRequests = s[o + 3]!;
  into.turnDurationMs = s[o + 4]!;
  into.promptTokenDelta = s[o + 5]!;
  into.toolDiversity = s[o + 6]!;
  const c = s[o + 7]!;
  into.confidence = Number.isNaN(c) ? undefined : c;
  into.model = got.models[s[o + 8]!]!;
  return into;
}
