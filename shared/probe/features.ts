/**
 * Probe features: hashed n-grams of what the router sees, and the telemetry signals it
 * does not. Both come out as rows of one sparse matrix (CSR), so the same learner
 * trains on either.
 *
 * Text: word unigrams and bigrams and character 3–5-grams of the lower-cased user
 * messages, hashed (signed, so collisions cancel in expectation rather than add up)
 * into 2^bits dimensions, counts damped to 1 + ln(tf), each block L2-normalised. The
 * current message and the history it carries (conversation pipeline) are separate
 * blocks: the router reads both, but the current message is what it is asked about.
 * Hashing walks the string's char codes and allocates nothing per n-gram.
 */
import { modelFamily, toolDiversity, turnPosition } from '../strata/strata';
import type { ProbeLine } from './types';

/** A sparse matrix by rows: row r holds indices[ptr[r]..ptr[r+1]) with their values. */
export interface SparseRows {
  rows: number;
  dim: number;
  ptr: Uint32Array;
  indices: Uint32Array;
  values: Float32Array;
}

export interface TextFeatureSettings {
  /** log2 of the hashed dimension (18 → 262,144). */
  bits: number;
  wordNgrams: readonly [number, number];
  charNgrams: readonly [number, number];
  /** Weight of each block before the whole row is scaled to unit length. */
  weights: { words: number; chars: number; historyWords: number; historyChars: number };
}

export const DEFAULT_TEXT_FEATURES: TextFeatureSettings = {
  bits: 18,
  wordNgrams: [1, 2],
  charNgrams: [3, 5],
  weights: { words: 1, chars: 1, historyWords: 0.5, historyChars: 0.5 },
};

/** murmur3's 32-bit finaliser: spreads every input bit over the output. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const FNV = 0x01000193;
const isWordChar = (c: number) =>
  (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c > 127;

/**
 * Growable CSR output. A block's hashed features are gathered as codes (index << 1 | sign)
 * in a small buffer, sorted and merged: sequential memory instead of random writes into a
 * 2^bits scratch row, and each block comes out with ascending indices.
 */
class RowBuilder {
  private ptr: number[] = [0];
  private indices: Uint32Array;
  private values: Float32Array;
  private nnz = 0;
  private codes = new Uint32Array(4096);
  private nCodes = 0;
  private readonly mask: number;

  constructor(
    readonly dim: number,
    capacity = 1 << 16,
  ) {
    this.mask = dim - 1;
    this.indices = new Uint32Array(Math.max(1024, capacity));
    this.values = new Float32Array(Math.max(1024, capacity));
  }

  /** Adds ±1 at the hashed index of feature hash `h`. */
  add(h: number): void {
    const f = fmix(h);
    if (this.nCodes === this.codes.length) {
      const c = new Uint32Array(this.codes.length * 2);
      c.set(this.codes);
      this.codes = c;
    }
    this.codes[this.nCodes++] = ((f & this.mask) << 1) | (f >>> 31);
  }

  /** Appends a feature's value directly (dense signals; ascending `j`, once each). */
  set(j: number, v: number): void {
    if (v === 0) return;
    this.reserve(1);
    this.indices[this.nnz] = j;
    this.values[this.nnz++] = v;
  }

  /**
   * Closes a block: merges equal indices (signs cancel), damps counts to 1 + ln|tf|,
   * scales the block to length `weight`; returns weight² when the block is not empty.
   */
  endBlock(weight: number): number {
    const n = this.nCodes;
    this.nCodes = 0;
    if (n === 0 || weight <= 0) return 0;
    const codes = this.codes.subarray(0, n).sort();
    this.reserve(n);
    const start = this.nnz;
    let sq = 0;
    let k = 0;
    while (k < n) {
      const j = codes[k]! >>> 1;
      let v = 0;
      while (k < n && codes[k]! >>> 1 === j) v += codes[k++]! & 1 ? -1 : 1;
      if (v === 0) continue;
      if (v !== 1 && v !== -1) v = v > 0 ? 1 + Math.log(v) : -1 - Math.log(-v);
      this.indices[this.nnz] = j;
      this.values[this.nnz++] = v;
      sq += v * v;
    }
    if (sq === 0) return 0;
    const scale = weight / Math.sqrt(sq);
    for (let p = start; p < this.nnz; p++) this.values[p]! *= scale;
    return weight * weight;
  }

  /** Closes a row, scaling it by `scale` (so blocks of weights w_i give a unit row). */
  endRow(scale: number): void {
    const start = this.ptr[this.ptr.length - 1]!;
    if (scale !== 1) for (let k = start; k < this.nnz; k++) this.values[k]! *= scale;
    this.ptr.push(this.nnz);
  }

  /** Values held so far (for {@link expect}). */
  get size(): number {
    return this.nnz;
  }

  /** Grows the buffers once to `total` values (an estimate from the rows seen so far). */
  expect(total: number): void {
    if (total > this.indices.length) this.resize(Math.ceil(total));
  }

  private reserve(n: number): void {
    if (this.nnz + n <= this.indices.length) return;
    this.resize(Math.max(this.nnz + n, Math.ceil(this.indices.length * 1.25)));
  }

  private resize(size: number): void {
    const i = new Uint32Array(size);
    i.set(this.indices.subarray(0, this.nnz));
    const v = new Float32Array(size);
    v.set(this.values.subarray(0, this.nnz));
    this.indices = i;
    this.values = v;
  }

  private trim<T extends Uint32Array | Float32Array>(a: T): T {
    return (this.nnz >= a.length * 0.8 ? a.subarray(0, this.nnz) : a.slice(0, this.nnz)) as T;
  }

  finish(): SparseRows {
    return {
      rows: this.ptr.length - 1,
      dim: this.dim,
      ptr: Uint32Array.from(this.ptr),
      // A view when the slack is small: copying would double the peak for a few MB.
      indices: this.trim(this.indices),
      values: this.trim(this.values),
    };
  }
}

/** Hashes the word n-grams of `text` (already lower-cased) into the builder. */
function addWords(b: RowBuilder, text: string, seed: number, [lo, hi]: readonly [number, number]) {
  // The last `hi` word hashes, newest first, to form n-grams ending at the current word.
  const recent = [0, 0, 0, 0, 0, 0, 0, 0];
  let seen = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    while (i < n && !isWordChar(text.charCodeAt(i))) i++;
    if (i >= n) break;
    let h = 0x811c9dc5;
    while (i < n && isWordChar(text.charCodeAt(i))) h = Math.imul(h ^ text.charCodeAt(i++), FNV);
    for (let k = recent.length - 1; k > 0; k--) recent[k] = recent[k - 1]!;
    recent[0] = fmix(h);
    seen++;
    for (let len = lo; len <= hi && len <= seen; len++) {
      let g = Math.imul(seed ^ len, FNV);
      for (let k = len - 1; k >= 0; k--) g = Math.imul(g ^ recent[k]!, 0x9e3779b1) ^ (g >>> 15);
      b.add(g);
    }
  }
}

/** Hashes the character n-grams of `padded` (" text ", lower-cased) into the builder. */
function addChars(
  b: RowBuilder,
  padded: string,
  seed: number,
  [lo, hi]: readonly [number, number],
) {
  const n = padded.length;
  for (let i = 0; i + lo <= n; i++) {
    let h = seed;
    const top = Math.min(hi, n - i);
    for (let k = 0; k < top; k++) {
      h = Math.imul(h ^ padded.charCodeAt(i + k), FNV);
      if (k + 1 >= lo) b.add(h ^ Math.imul(k + 1, 0x27d4eb2d));
    }
  }
}

const SEEDS = {
  words: 0x2545f491,
  chars: 0x7feb352d,
  historyWords: 0x3c6ef372,
  historyChars: 0x1b873593,
};

/** The text the router sees: its current (last) user message and the history before it. */
export function routerText(line: Pick<ProbeLine, 'messages'>): {
  current: string;
  history: string;
} {
  const msgs = line.messages;
  const last = msgs.length - 1;
  let history = '';
  for (let i = 0; i < last; i++) {
    const m = msgs[i]!;
    if (m.role === 'system') continue;
    history += (history ? '\n' : '') + m.content;
  }
  return { current: msgs[last]?.content ?? '', history };
}

/** Hashed n-gram rows (unit length) of the lines' router text. */
export function textFeatures(
  lines: readonly Pick<ProbeLine, 'messages'>[],
  s: TextFeatureSettings = DEFAULT_TEXT_FEATURES,
): SparseRows {
  let chars = 0;
  for (const line of lines) for (const m of line.messages) chars += m.content.length + 2;
  const b = new RowBuilder(2 ** s.bits, Math.min(chars * 2, 1 << 26));
  // After a sample of rows, size the buffers once from their values per character.
  const probeAt = Math.min(lines.length, Math.max(200, lines.length >> 6));
  let charsSeen = 0;
  const w = s.weights;
  for (let r = 0; r < lines.length; r++) {
    const line = lines[r]!;
    if (r === probeAt && charsSeen > 0) b.expect((b.size / charsSeen) * chars * 1.05);
    const { current, history } = routerText(line);
    charsSeen += current.length + history.length + 2 * line.messages.length;
    const cur = current.toLowerCase();
    let total = 0;
    addWords(b, cur, SEEDS.words, s.wordNgrams);
    total += b.endBlock(w.words);
    addChars(b, ` ${cur} `, SEEDS.chars, s.charNgrams);
    total += b.endBlock(w.chars);
    if (history) {
      const hist = history.toLowerCase();
      addWords(b, hist, SEEDS.historyWords, s.wordNgrams);
      total += b.endBlock(w.historyWords);
      addChars(b, ` ${hist} `, SEEDS.historyChars, s.charNgrams);
      total += b.endBlock(w.historyChars);
    }
    b.endRow(total > 0 ? 1 / Math.sqrt(total) : 1);
  }
  return b.finish();
}

/** Names of the signal features, in column order (recorded in the manifest). */
export const SIGNAL_FEATURES = [
  'log1p(numRequests)',
  'log1p(turnDurationSeconds)',
  'toolDiversity',
  'log1p(toolCalls)',
  'signedLog1p(promptTokenDelta)',
  'modelFamily=reasoning',
  'log(turnCount)',
  'log(turnIndex)',
  'turnIndex/turnCount',
  'position=early',
  'position=mid',
  'position=late',
] as const;

/** The raw signal values of a line, in {@link SIGNAL_FEATURES} order. */
export function signalValues(line: ProbeLine, reasoningModels: readonly string[]): number[] {
  const pos = turnPosition(line.turnIndex, line.turnCount);
  const ptd = line.promptTokenDelta;
  return [
    Math.log1p(Math.max(0, line.numRequests)),
    Math.log1p(Math.max(0, line.turnDurationMs) / 1000),
    toolDiversity(line.tools),
    Math.log1p(line.tools.length),
    Math.sign(ptd) * Math.log1p(Math.abs(ptd)),
    modelFamily(line.model, reasoningModels) === 'reasoning' ? 1 : 0,
    Math.log(Math.max(1, line.turnCount)),
    Math.log(Math.max(1, line.turnIndex)),
    line.turnCount > 0 ? line.turnIndex / line.turnCount : 0,
    pos === 'early' ? 1 : 0,
    pos === 'mid' ? 1 : 0,
    pos === 'late' ? 1 : 0,
  ];
}

/** Mean and standard deviation of each signal column over `rows` (the training rows). */
export interface Standardiser {
  mean: number[];
  std: number[];
}

export function fitStandardiser(
  values: readonly number[][],
  rows: ArrayLike<number>,
): Standardiser {
  const d = SIGNAL_FEATURES.length;
  const mean = new Array<number>(d).fill(0);
  const sq = new Array<number>(d).fill(0);
  const n = rows.length;
  for (let r = 0; r < n; r++) {
    const v = values[rows[r]!]!;
    for (let j = 0; j < d; j++) mean[j]! += v[j]!;
  }
  for (let j = 0; j < d; j++) mean[j]! /= Math.max(1, n);
  for (let r = 0; r < n; r++) {
    const v = values[rows[r]!]!;
    for (let j = 0; j < d; j++) sq[j]! += (v[j]! - mean[j]!) ** 2;
  }
  const std = sq.map((s) => {
    const sd = Math.sqrt(s / Math.max(1, n));
    return sd > 1e-12 ? sd : 1;
  });
  return { mean, std };
}

/** Standardised signal rows (dense, stored sparse so the same learner reads them). */
export function signalFeatures(values: readonly number[][], st: Standardiser): SparseRows {
  const d = SIGNAL_FEATURES.length;
  const b = new RowBuilder(d, values.length * d);
  for (const v of values) {
    for (let j = 0; j < d; j++) b.set(j, (v[j]! - st.mean[j]!) / st.std[j]!);
    b.endRow(1);
  }
  return b.finish();
}
