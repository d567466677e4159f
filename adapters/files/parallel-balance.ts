/**
 * Balancing a large file on several cores: the file is cut at line boundaries into
 * chunks that the threads take in turn (this one and worker threads). A plain file of
 * up to MAX_RECORDED_ROWS rows without near-dedup is recorded (shared/balance/records.ts):
 * workers record chunks and send them, this thread resolves them in file order as they
 * come (balanceByRecords). Otherwise each thread's rows are balanced by its own
 * StreamingBalancer and the balancers merged. Because a row's sampling key depends only
 * on the seed and its id, either way gives the dataset one pass would, byte for byte.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { adoptEmitWorker, type EmitWorker } from './emit-helper';
import { MIN_PART_BYTES, takePrestarted, workerScript } from './worker-script';

export { MIN_PART_BYTES, workerScript };
import {
  MergeConflictError,
  StreamingBalancer,
  type BalancerOptions,
  type QuarantineRecord,
  type QuarantineTally,
} from '../../shared/balance/balancer';
import type { BalanceConfig } from '../../shared/contracts/config';
import type { WorkerResult, WorkerTask } from './balance-worker';
import { MAX_RECORDED_ROWS, RowRecords, type RecordColumns } from '../../shared/balance/records';
import {
  inputSize,
  lineText,
  loadRanges,
  readFileRawLines,
  readFileRawLinesSync,
  type RawLineHandler,
} from './lines';

const utf8Span = (b: Uint8Array, s: number, e: number) => (b as Buffer).toString('utf8', s, e);

/**
 * The longest annotated line `balance` reads by default (--max-line-bytes): far over any
 * row the app writes (a turn is cut at MAX_LINE_BYTES, 1 MiB), so only a runaway line
 * (a missing newline, a pasted dump) reaches it. A longer line costs this much memory,
 * not its size, and is quarantined `line_too_long`.
 */
export const DEFAULT_BALANCE_MAX_LINE_BYTES = 16 << 20;

/** The quarantine record of a line over `limit` bytes: its size, never more than 500 characters of it. */
function tooLong(
  balancer: StreamingBalancer,
  text: string,
  lineNo: number,
  len: number,
  limit: number,
): QuarantineRecord {
  balancer.recordQuarantine('line_too_long');
  return {
    line: lineNo,
    reason: 'line_too_long',
    detail: `line is ${len} bytes, over the limit of ${limit} bytes`,
    raw: text.slice(0, 500),
  };
}

/**
 * How a line's row is kept: as the byte range of the input (read back if selected), as
 * its text (gzip: no range to read back), or recorded into records to resolve at once
 * (shared/balance/records.ts).
 */
export type RowKeep = 'range' | 'text' | RowRecords;

/**
 * Offers one line, given as bytes, to a balancer: through the scanner that reads only
 * what a row needs (shared/scan.ts), or, when it cannot vouch for the row, decoded and
 * parsed whole; kept as `keep` says. Returns the quarantine record when the line is set
 * aside.
 */
export function offerRawLine(
  balancer: StreamingBalancer,
  buf: Buffer,
  start: number,
  end: number,
  lineNo: number,
  at: number,
  len: number,
  keep: RowKeep,
  /** Lines longer than this are quarantined `line_too_long` (the reader cut them). */
  maxLineBytes = Infinity,
): QuarantineRecord | null {
  if (len > maxLineBytes) {
    const text = lineText(buf, start, Math.min(end, start + 2_000), lineNo, at);
    return tooLong(balancer, text, lineNo, len, maxLineBytes);
  }
  const s = balancer.scanLine(buf, start, end, utf8Span);
  if (s === 0) return null;
  const recorded = keep instanceof RowRecords ? keep : null;
  if (s < 0) {
    const line = lineText(buf, start, end, lineNo, at);
    if (recorded) return balancer.recordLine(line, lineNo, at, len, recorded);
    return keep === 'range'
      ? balancer.addLine(line, lineNo, at, len)
      : balancer.addLine(line, lineNo);
  }
  if (recorded) {
    balancer.recordScanned(buf, at, len, lineNo, recorded);
    return null;
  }
  const kept = keep === 'range' ? null : lineText(buf, start, end, lineNo, at);
  if (!balancer.addScanned(buf, at, len, kept)) return null;
  return balancer.duplicateRecord(kept ?? lineText(buf, start, end, lineNo, at), lineNo);
}

/**
 * The most rows a balancer presizes for (~50 MB a table): an estimate from a first MiB
 * of short lines must not reserve gigabytes; a larger input grows the tables as it goes.
 */
const MAX_RESERVED_ROWS = 1 << 21;

/**
 * The rows in bytes [start, end] of a file, estimated from the lines in its first MiB
 * (a little over: the balancer presizes its tables to it, and too few costs a growth),
 * at most MAX_RESERVED_ROWS.
 */
export function estimateRows(
  path: string,
  start: number,
  end: number,
  cap = MAX_RESERVED_ROWS,
): number {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow(Math.max(1, Math.min(1 << 20, end - start + 1)));
    const n = readSync(fd, buf, 0, buf.length, start);
    let lines = 0;
    for (let i = buf.indexOf(10); i !== -1 && i < n; i = buf.indexOf(10, i + 1)) lines++;
    const rows = lines === 0 ? 0 : Math.ceil((((end - start + 1) * lines) / n) * 1.02);
    return Math.min(rows, cap);
  } finally {
    closeSync(fd);
  }
}

export interface ParallelOptions {
  threads?: number;
  /** Parts smaller than this are not worth a thread (default 16 MiB). */
  minPartBytes?: number;
  /** Lines longer than this are read that far and quarantined (default: no limit). */
  maxLineBytes?: number;
  onQuarantine: (q: QuarantineRecord) => void;
  onProgress?: (rows: number) => void;
  /** Called once the input is read, before the rows are resolved or merged (one thread then). */
  onScanned?: () => void;
  /**
   * Given, a recording worker is kept on once its chunks are done, to load and emit a
   * share of the dataset's lines (already loaded, its scanner warm): handed over here.
   */
  onEmitWorker?: (w: EmitWorker) => void;
  /** The balancers' margin and pass (a near-dedup refill pass widens the margin). */
  balancer?: BalancerOptions;
  /**
   * Record the rows, then resolve them at once (shared/balance/records.ts): by default
   * whenever the input allows it (see `recordable`); false streams them through the
   * balancer; true records whatever the input's size.
   */
  recording?: boolean;
  /** Rows a recording scan may hold before it gives way to streaming (RECORDING_LIMIT). */
  recordingLimit?: number;
}

/** Byte offsets where parts start: 0 and, for each later part, just after a newline. */
export async function partStarts(path: string, size: number, parts: number): Promise<number[]> {
  const starts = [0];
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 16);
    for (let i = 1; i < parts; i++) {
      let pos = Math.floor((size * i) / parts);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) return starts;
        const nl = buf.subarray(0, bytesRead).indexOf(10);
        if (nl >= 0) {
          pos += nl + 1;
          break;
        }
        pos += bytesRead;
      }
      if (pos >= size) break;
      if (pos > starts[starts.length - 1]!) starts.push(pos);
    }
  } finally {
    await handle.close();
  }
  return starts;
}

function runWorker(script: string, task: WorkerTask): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: task });
    worker.once('message', (m: WorkerResult) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`balance worker exited with code ${code}`));
    });
  });
}

async function balanceSerial(
  path: string,
  config: BalanceConfig,
  opts: ParallelOptions,
  ranged: boolean,
) {
  const balancer = new StreamingBalancer(config, opts.balancer);
  const limit = opts.maxLineBytes;
  const onRaw: RawLineHandler = (buf, start, end, lineNo, at, len) => {
    const keep = ranged ? 'range' : 'text';
    const q = offerRawLine(balancer, buf, start, end, lineNo, at, len, keep, limit);
    if (q) opts.onQuarantine(q);
    if ((lineNo & 0x3fff) === 0) opts.onProgress?.(lineNo);
  };
  // Plain files are read synchronously into one buffer; gzip goes through the stream.
  if (path.endsWith('.gz')) {
    await readFileRawLines(path, onRaw, undefined, limit);
  } else {
    balancer.reserve(estimateRows(path, 0, (await inputSize(path)) - 1));
    readFileRawLinesSync(path, onRaw, undefined, limit);
  }
  return balancer;
}

/** One of a file's chunks, scanned by whichever thread took it (see scanChunks). */
export interface ChunkTask {
  path: string;
  /** Chunk k is bytes [bounds[k], bounds[k + 1]) of the file (the last bound is its size). */
  bounds: number[];
  /** [0]: the next chunk to take; [1 + k]: the lines of chunk k, once read. */
  shared: SharedArrayBuffer;
  /** Lines longer than this are quarantined (see ParallelOptions). */
  maxLineBytes?: number | undefined;
}

/** A quarantined line, numbered within its chunk. */
export interface ChunkQuarantine {
  chunk: number;
  record: QuarantineRecord;
}

/**
 * Offers chunks of the file to `balancer`, taking the next untaken one until none is
 * left: every thread takes them in file order, so the threads finish together whatever
 * their speed, and each one's rows still come in file order (its duplicates too).
 */
export function scanChunks(
  balancer: StreamingBalancer,
  task: ChunkTask,
  onQuarantine: (q: ChunkQuarantine) => void,
  opts: { onLine?: () => void; leave?: number } = {},
): void {
  const { bounds, maxLineBytes: limit } = task;
  const state = new Int32Array(task.shared);
  const stop = bounds.length - 1 - (opts.leave ?? 0);
  for (let k = take(state, stop); k >= 0; k = take(state, stop)) {
    const chunk = k;
    const lines = readFileRawLinesSync(
      task.path,
      (buf, start, end, lineNo, at, len) => {
        const record = offerRawLine(balancer, buf, start, end, lineNo, at, len, 'range', limit);
        if (record) onQuarantine({ chunk, record });
        opts.onLine?.();
      },
      { start: bounds[k]!, end: bounds[k + 1]! - 1 },
      limit,
    );
    Atomics.store(state, 1 + k, lines);
  }
}

/**
 * Records chunk `k` of the file into `out` for the recording scan (shared/balance/records.ts):
 * each valid row recorded, each bad line handed to `onQuarantine`. Returns its lines.
 */
export function recordChunk(
  balancer: StreamingBalancer,
  task: ChunkTask,
  k: number,
  out: RowRecords,
  onQuarantine: (q: ChunkQuarantine) => void,
  onLine?: () => void,
): number {
  const { bounds, maxLineBytes: limit } = task;
  const lines = readFileRawLinesSync(
    task.path,
    (buf, s, e, lineNo, at, len) => {
      const record = offerRawLine(balancer, buf, s, e, lineNo, at, len, out, limit);
      if (record) onQuarantine({ chunk: k, record });
      onLine?.();
    },
    { start: bounds[k]!, end: bounds[k + 1]! - 1 },
    limit,
  );
  Atomics.store(new Int32Array(task.shared), 1 + k, lines);
  return lines;
}

/** Takes the next untaken chunk of a task (or -1 when none is left): see {@link scanChunks}. */
export function takeChunk(task: ChunkTask): number {
  return take(new Int32Array(task.shared), task.bounds.length - 1);
}

/** The next untaken chunk below `stop` (taking it), or -1 when there is none. */
function take(state: Int32Array, stop: number): number {
  for (;;) {
    const k = Atomics.load(state, 0);
    if (k >= stop) return -1;
    if (Atomics.compareExchange(state, 0, k, k + 1) === k) return k;
  }
}

/**
 * Chunks at the end of the file that workers leave to the main thread: it reads them
 * while the workers build their snapshots, which it must wait for anyway.
 */
export const MAIN_TAIL_CHUNKS = 2;

/** Chunks of about this size: small enough that threads finish within one of each other. */
const CHUNK_BYTES = 8 << 20;

/**
 * Balances `path` on up to `threads` cores (default: what the machine offers, at most 4).
 * Candidates are kept as byte ranges: finish with `finishWith(ranges => loadRanges(path, ranges))`,
 * except for gzipped input, which is read in one pass with lines kept in memory.
 */
export async function balanceFileParallel(
  path: string,
  config: BalanceConfig,
  opts: ParallelOptions,
): Promise<StreamingBalancer> {
  if (path.endsWith('.gz')) return balanceSerial(path, config, opts, false);
  const size = await inputSize(path);
  const wanted = Math.max(
    1,
    Math.min(
      opts.threads ?? Math.min(availableParallelism(), 4),
      Math.floor(size / (opts.minPartBytes ?? MIN_PART_BYTES)),
    ),
  );
  const script = workerScript();
  if (recordable(path, config, opts, size)) {
    const threads = script === null ? 1 : wanted;
    const recorded = await balanceByRecords(path, config, opts, size, threads, script);
    // Null: more rows than a recording scan may hold; the file streams instead.
    return recorded ?? balanceFileParallel(path, config, { ...opts, recording: false });
  }
  if (wanted <= 1 || script === null) return balanceSerial(path, config, opts, true);
  const chunks = Math.min(1024, Math.max(wanted * 4, Math.ceil(size / CHUNK_BYTES)));
  const bounds = [...(await partStarts(path, size, chunks)), size];
  const task: ChunkTask = {
    path,
    bounds,
    shared: new SharedArrayBuffer(4 * (1 + bounds.length)),
    maxLineBytes: opts.maxLineBytes,
  };
  const workers = Array.from({ length: wanted - 1 }, () =>
    runWorker(script, {
      ...task,
      config,
      threads: wanted,
      ...(opts.balancer ? { options: opts.balancer } : {}),
    }),
  );
  const main = new StreamingBalancer(config, opts.balancer);
  // Room for the whole file: main merges the other parts into its tables.
  main.reserve(estimateRows(path, 0, size - 1));
  const quarantine: ChunkQuarantine[] = [];
  let seen = 0;
  const onLine = () => {
    if ((++seen & 0x3fff) === 0) opts.onProgress?.(seen * wanted);
  };
  scanChunks(main, task, (q) => quarantine.push(q), { onLine });
  const results = await Promise.all(workers);
  opts.onScanned?.();
  try {
    for (const r of results) main.merge(r.snapshot);
  } catch (err) {
    if (!(err instanceof MergeConflictError)) throw err;
    // A sampleId in two parts: only one pass can tell which copy came first.
    return balanceSerial(path, config, opts, true);
  }
  for (const r of results) quarantine.push(...r.quarantine);
  inFileOrder(quarantine, new Int32Array(task.shared)).forEach(opts.onQuarantine);
  return main;
}

/** Quarantine records numbered within the file, in its order (`state`: see ChunkTask). */
function inFileOrder(qs: ChunkQuarantine[], state: Int32Array): QuarantineRecord[] {
  const offset = chunkLineBases(state);
  return qs
    .map((q) => ({ ...q.record, line: q.record.line + offset[q.chunk]! }))
    .sort((a, b) => a.line - b.line);
}

/**
 * Whether `path` is balanced by recording its rows first (shared/balance/records.ts): a
 * plain file of at most MAX_RECORDED_ROWS rows (estimated), without near-dedup (its walk
 * needs every candidate's message, and a refill pass widens the streaming margin) or a
 * column mapping (the scanner reads the contract's own names).
 */
function recordable(path: string, config: BalanceConfig, opts: ParallelOptions, size: number) {
  if (opts.recording === false || path.endsWith('.gz') || config.nearDedup || opts.balancer)
    return false;
  if (Object.keys(config.columns ?? {}).length > 0) return false;
  if (opts.recording === true || size === 0) return true;
  return estimateRows(path, 0, size - 1, Infinity) <= MAX_RECORDED_ROWS;
}

/**
 * Rows a recording scan holds at most: past it (a first MiB of long lines misled the
 * estimate), the scan stops and the file streams instead, memory bounded again.
 */
export const RECORDING_LIMIT = 2 * MAX_RECORDED_ROWS;

/** A chunk's records, as a recording worker sends them (see balance-worker.ts). */
export interface RecordedMessage {
  chunk: number;
  lines: number;
  columns: RecordColumns;
  quarantine: ChunkQuarantine[];
}

/** The end of a recording worker's work: the quarantine counts of its chunks. */
export interface RecordingDone {
  done: QuarantineTally;
}

/**
 * Balances a plain file by recording its rows on `threads` threads (chunks taken in turn,
 * as {@link balanceFileParallel}) and resolving them in file order on this one as they
 * come (StreamingBalancer.absorbChunk): workers only record, each chunk sent as it is
 * done; this thread resolves the next chunk whenever it is there, and records one itself
 * when it is not. No table probes while scanning, no merge, and no fallback when a
 * sampleId occurs in two chunks. Null when the file holds more rows than the limit
 * (opts.recordingLimit): nothing is reported then, the caller streams the file.
 */
async function balanceByRecords(
  path: string,
  config: BalanceConfig,
  opts: ParallelOptions,
  size: number,
  threads: number,
  script: string | null,
): Promise<StreamingBalancer | null> {
  const count = Math.max(1, Math.min(1024, Math.max(threads * 4, Math.ceil(size / CHUNK_BYTES))));
  const bounds = size === 0 ? [0, 0] : [...(await partStarts(path, size, count)), size];
  const chunks = bounds.length - 1;
  const task: ChunkTask = {
    path,
    bounds,
    shared: new SharedArrayBuffer(4 * (1 + bounds.length)),
    maxLineBytes: opts.maxLineBytes,
  };
  const rows = size === 0 ? 0 : estimateRows(path, 0, size - 1);
  const perChunk = Math.ceil((rows / chunks) * 1.1);
  // [0]: messages posted by the workers (each wakes this thread); [1]: see emit-serve.ts.
  const signal = new Int32Array(new SharedArrayBuffer(8));
  const workers =
    script === null || threads <= 1
      ? []
      : Array.from({ length: threads - 1 }, (_, i) =>
          startRecorder(script, {
            ...task,
            config,
            threads,
            // One signal for all; the first worker alone goes on to emit, alone on it then.
            records: { perChunk, signal, serveEmit: i === 0 && opts.onEmitWorker !== undefined },
          }),
        );
  const main = new StreamingBalancer(config, opts.balancer);
  main.beginAbsorb(rows);
  const ready = new Map<number, { records: RowRecords; lines: number }>();
  const quarantine: ChunkQuarantine[] = [];
  let seen = 0;
  const onLine = () => {
    if ((++seen & 0x3fff) === 0) opts.onProgress?.(seen * threads);
  };
  let done = 0;
  let recorded = 0;
  const limit = opts.recordingLimit ?? RECORDING_LIMIT;
  const take = (m: RecordedMessage | RecordingDone) => {
    if ('done' in m) {
      main.addQuarantineTally(m.done);
      done++;
      return;
    }
    ready.set(m.chunk, { records: RowRecords.from(m.columns), lines: m.lines });
    quarantine.push(...m.quarantine);
    recorded += m.columns.n;
  };
  try {
    let next = 0;
    let lineBase = 0;
    while (next < chunks || done < workers.length) {
      const posted = Atomics.load(signal, 0);
      for (const w of workers) w.drain(take);
      if (recorded > limit) break;
      const r = ready.get(next);
      if (r) {
        ready.delete(next++);
        main.absorbChunk(r.records, 0, r.records.size, lineBase);
        lineBase += r.lines;
        continue;
      }
      const k = next < chunks ? takeChunk(task) : -1;
      if (k >= 0) {
        const records = new RowRecords(perChunk);
        const lines = recordChunk(main, task, k, records, (q) => quarantine.push(q), onLine);
        ready.set(k, { records, lines });
        recorded += records.size;
        continue;
      }
      for (const w of workers) w.check();
      await wake(signal, posted);
    }
  } catch (err) {
    for (const w of workers) void w.worker.terminate();
    throw err;
  }
  if (recorded > limit) {
    for (const w of workers) void w.worker.terminate();
    return null;
  }
  for (const [i, w] of workers.entries()) {
    if (i === 0 && opts.onEmitWorker) opts.onEmitWorker(w.adopt(path));
    else void w.worker.terminate();
  }
  opts.onScanned?.();
  const repeated = main.endAbsorb();
  const records = inFileOrder(quarantine, new Int32Array(task.shared));
  if (repeated.length > 0) {
    const byAt = [...repeated].sort((a, b) => a.at - b.at);
    const texts = await loadRanges(path, byAt);
    byAt.forEach((r, i) => records.push(main.duplicateRecord(texts[i]!, r.line)));
    records.sort((a, b) => a.line - b.line);
  }
  records.forEach(opts.onQuarantine);
  return main;
}

/** Atomics.waitAsync (in Node since 16; typed only from ES2024's lib). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      this: void,
      a: Int32Array,
      i: number,
      v: number,
      ms: number,
    ): { value: Promise<string> | string };
  }
).waitAsync;

/**
 * Resolves once signal[0] is no longer `seen` (a worker posted), or after 100 ms. A
 * pending Atomics.waitAsync does not keep Node's event loop alive: had a worker just
 * exited, the process would end there, silently, with nothing written. A timer does.
 */
export async function wake(signal: Int32Array, seen: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      waitAsync(signal, 0, seen, 100).value,
      new Promise((resolve) => (timer = setTimeout(resolve, 100))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A recording worker: its messages read synchronously (drain), its failure thrown by
 * check() (an error, or an exit before it said it was done).
 */
function startRecorder(script: string, task: WorkerTask) {
  const { port1, port2 } = new MessageChannel();
  const data = { ...task, records: { ...task.records!, port: port2 } };
  let worker = takePrestarted(script);
  if (worker) worker.postMessage({ task: data }, [port2]);
  else worker = new Worker(script, { workerData: data, transferList: [port2] });
  let failed: Error | null = null;
  let finished = false;
  worker.once('error', (err) => (failed ??= err));
  worker.once('exit', (code) => {
    if (!finished) failed ??= new Error(`balance worker exited (${code}) before it was done`);
  });
  return {
    worker,
    drain(take: (m: RecordedMessage | RecordingDone) => void) {
      for (let m = receiveMessageOnPort(port1); m !== undefined; m = receiveMessageOnPort(port1)) {
        const msg = m.message as RecordedMessage | RecordingDone;
        if ('done' in msg) finished = true;
        take(msg);
      }
    },
    check() {
      if (failed) throw failed;
    },
    /** The worker, done recording, as the build's emit worker (see emit-serve.ts). */
    adopt(path: string): EmitWorker {
      return adoptEmitWorker(path, worker, port1, task.records!.signal);
    },
  };
}

/** Lines before each chunk (state: see ChunkTask). */
function chunkLineBases(state: Int32Array): number[] {
  const base: number[] = [0];
  for (let k = 1; k < state.length - 1; k++) base.push(base[k - 1]! + state[k]!);
  return base;
}
