/**
 * Reading JSONL from disk: a callback per line, no per-line promise, gzip by extension.
 * This is the hot loop of `balance`, so it splits buffers itself rather than use readline.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { access, constants, open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { PermanentError } from '../../shared/errors';

export class InputFileError extends PermanentError {}

/** The size of a readable input file; a missing or unreadable file is an InputFileError. */
export async function inputSize(path: string): Promise<number> {
  await checkReadable(path);
  return (await stat(path)).size;
}

async function checkReadable(path: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (cause) {
    throw unreadable(path, cause);
  }
}

function unreadable(path: string, cause: unknown): InputFileError {
  const code = (cause as NodeJS.ErrnoException).code;
  return new InputFileError(
    code === 'ENOENT'
      ? `input file not found: ${path}`
      : `input file is not readable: ${path} (${code})`,
    { cause },
  );
}

/** Opens a file for reading, gunzipping `*.gz`; a missing or unreadable file is an InputFileError. */
export async function openInput(
  path: string,
  range?: { start: number; end: number },
): Promise<Readable> {
  await checkReadable(path);
  const raw = createReadStream(path, { highWaterMark: 1 << 20, ...range });
  return path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
}

/**
 * Gets a line's text, its 1-based number, its byte range in the input, and whether its
 * bytes were not valid UTF-8 (each bad sequence then reads as U+FFFD). `len` is the
 * line's whole length even when the text was cut at `maxLineBytes`; `invalidUtf8` is
 * false unless `checkUtf8` is on (see LineOptions).
 */
export type LineHandler = (
  line: string,
  lineNo: number,
  at: number,
  len: number,
  invalidUtf8: boolean,
) => void;

export interface LineOptions {
  /**
   * Lines longer than this many bytes are cut to one byte over it: the handler sees
   * `len > maxLineBytes` and the first maxLineBytes + 1 bytes, so one runaway line (a
   * missing newline) costs memory of the limit only. Default: no limit.
   */
  maxLineBytes?: number;
  /**
   * Set the handler's `invalidUtf8` (a scan of each line for U+FFFD, then of its bytes
   * where one is found); off by default, so the hot loop of `balance` does not pay it.
   */
  checkUtf8?: boolean;
}

/** True when bytes [start, end) of `buf` that decoded to `text` were not valid UTF-8. */
function badUtf8(text: string, buf: Buffer, start: number, end: number): boolean {
  // U+FFFD marks every invalid sequence; a genuine U+FFFD in the input is valid UTF-8.
  return text.includes('\uFFFD') && !isUtf8(buf.subarray(start, end));
}

/** A line's text from its bytes: a trailing CR and a leading byte-order mark dropped. */
function decodeLine(buf: Buffer, start: number, end: number, first: boolean): string {
  if (end > start && buf[end - 1] === 13) end--;
  const text = buf.toString('utf8', start, end);
  return first && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Calls `onLine(text, lineNumber, at, len, invalidUtf8)` for each line of a stream
 * (1-based; CRLF and a leading BOM tolerated). Splits raw bytes on "\n" (never part of a
 * multi-byte UTF-8 character) and decodes each line on its own: faster than decoding
 * whole chunks, and each line is a flat string that does not pin its chunk in memory.
 */
export function forEachLine(
  stream: Readable,
  onLine: LineHandler,
  firstByte = 0,
  opts: LineOptions = {},
): Promise<number> {
  const keep = opts.maxLineBytes === undefined ? Infinity : opts.maxLineBytes + 1;
  const checkUtf8 = opts.checkUtf8 === true;
  return forEachRawLine(
    stream,
    (buf, start, end, lineNo, at, len) => {
      const text = decodeLine(buf, start, end, lineNo === 1 && at === 0);
      // A cut line may end inside a character: that is not the input's fault.
      const invalid = checkUtf8 && len <= end - start && badUtf8(text, buf, start, end);
      onLine(text, lineNo, at, len, invalid);
    },
    firstByte,
    keep,
  );
}

/**
 * Gets a line as bytes [start, end) of `buf` (no newline; valid only during the call),
 * its 1-based number, its byte offset in the input and its whole length.
 */
export type RawLineHandler = (
  buf: Buffer,
  start: number,
  end: number,
  lineNo: number,
  at: number,
  len: number,
) => void;

/** {@link forEachLine} without decoding: each line's bytes, cut at `keep` bytes. */
export function forEachRawLine(
  stream: Readable,
  onRaw: RawLineHandler,
  firstByte = 0,
  keep = Infinity,
): Promise<number> {
  return new Promise((resolve, reject) => {
    /**
     * The kept bytes of the pending partial line, in pieces joined once at its end (a long
     * line gathered chunk by chunk costs its kept size, not a copy per chunk).
     */
    let pending: Buffer[] = [];
    let kept = 0;
    /** Bytes of the pending partial line, including any cut off past `keep`. */
    let pendingLen = 0;
    let lineNo = 0;
    /** Byte offset of the current chunk (or of the pending partial line) in the input. */
    let base = firstByte;
    const emit = (buf: Buffer, start: number, end: number, at: number, len = end - start) => {
      lineNo++;
      if (end - start > keep) end = start + keep;
      onRaw(buf, start, end, lineNo, at, len);
    };
    stream.on('data', (chunk: Buffer) => {
      try {
        let start = 0;
        if (pendingLen > 0) {
          const nl = chunk.indexOf(10);
          const room = Math.max(0, keep - kept);
          if (nl === -1) {
            if (room > 0) pending.push(chunk.subarray(0, room));
            kept += Math.min(room, chunk.length);
            pendingLen += chunk.length;
            return;
          }
          pending.push(chunk.subarray(0, Math.min(nl, room)));
          const joined = Buffer.concat(pending, kept + Math.min(nl, room));
          const at = base;
          base += pendingLen;
          const len = pendingLen + nl;
          pending = [];
          kept = 0;
          pendingLen = 0;
          emit(joined, 0, joined.length, at, len);
          start = nl + 1;
        }
        for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
          emit(chunk, start, nl, base + start);
          start = nl + 1;
        }
        if (start < chunk.length) {
          pending = [chunk.subarray(start, Math.min(chunk.length, start + keep))];
          kept = pending[0]!.length;
          pendingLen = chunk.length - start;
        }
        base += start;
        // `base` now points at the pending partial line (or the next chunk).
      } catch (err) {
        stream.destroy(err as Error);
      }
    });
    stream.on('error', (err) =>
      reject(new InputFileError(`failed reading input: ${err.message}`, { cause: err })),
    );
    stream.on('end', () => {
      try {
        if (pendingLen > 0) emit(Buffer.concat(pending, kept), 0, kept, base, pendingLen);
        resolve(lineNo);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

/**
 * Reads every line of a file at `path` (or of its byte range [start, end]) as bytes;
 * with `maxLineBytes`, a longer line is cut to one byte over it (see LineOptions).
 */
export async function readFileRawLines(
  path: string,
  onRaw: RawLineHandler,
  range?: { start: number; end: number },
  maxLineBytes?: number,
): Promise<number> {
  const keep = maxLineBytes === undefined ? Infinity : maxLineBytes + 1;
  return forEachRawLine(await openInput(path, range), onRaw, range?.start ?? 0, keep);
}

/** The buffer {@link readFileRawLinesSync} reads into (grown only for a longer line). */
const SYNC_BUFFER_BYTES = 1 << 20;

/**
 * {@link readFileRawLines} for a plain (not gzipped) file, read synchronously into one
 * reused buffer: no stream, no Buffer per chunk (external memory that drives GCs), the
 * partial last line moved to the front before the next read. The same callbacks: each
 * line's bytes (no newline) cut at maxLineBytes + 1, its number, `at` and whole `len`.
 * The bytes are valid only during the call: the buffer is overwritten by the next read.
 */
export function readFileRawLinesSync(
  path: string,
  onRaw: RawLineHandler,
  range?: { start: number; end: number },
  maxLineBytes?: number,
  bufferBytes = SYNC_BUFFER_BYTES,
): number {
  const keep = maxLineBytes === undefined ? Infinity : maxLineBytes + 1;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (cause) {
    throw unreadable(path, cause);
  }
  try {
    // The buffer of the previous read is reused (the scan reads a file chunk by chunk).
    const buf = spare?.length === bufferBytes ? spare : Buffer.allocUnsafeSlow(bufferBytes);
    spare = null;
    const reader = new SyncLineReader(fd, onRaw, keep, buf);
    const lines = reader.run(range);
    if (reader.buffer.length === bufferBytes) spare = reader.buffer;
    return lines;
  } finally {
    closeSync(fd);
  }
}

/**
 * An offset as a small integer when it is one: V8 would otherwise pass this reader's
 * offsets boxed (a heap number each), and one boxed `at` stored in the balancer's
 * candidates turns that field boxed in all of them, which slows sorting and loading them.
 */
const smi = (n: number): number => (n < 0x40000000 ? n | 0 : n);

/** The buffer of the last finished read, for the next (none while a read runs). */
let spare: Buffer | null = null;

class SyncLineReader {
  private buf: Buffer;
  private readonly chunk: number;
  /** Bytes [0, fill) of `buf` hold the pending partial line (its kept bytes when long). */
  private fill = 0;
  private lineNo = 0;
  /** Whole length so far of a pending line over `keep` bytes (-1: none), and its offset. */
  private long = -1;
  private longAt = 0;

  constructor(
    private readonly fd: number,
    private readonly onRaw: RawLineHandler,
    private readonly keep: number,
    buf: Buffer,
  ) {
    this.buf = buf;
    this.chunk = buf.length;
  }

  /** The buffer, as grown for a long line. */
  get buffer(): Buffer {
    return this.buf;
  }

  run(range?: { start: number; end: number }): number {
    let pos = range?.start ?? 0;
    const stop = range ? range.end + 1 : Infinity;
    for (;;) {
      if (this.fill === this.buf.length) this.grow();
      const want = Math.min(this.buf.length - this.fill, stop - pos);
      const n = want > 0 ? this.read(pos, want) : 0;
      /** The offset of buf[0] in the input (the pending line's, unless long). */
      const base = pos - this.fill;
      pos += n;
      if (n === 0) {
        if (this.long >= 0)
          this.onRaw(this.buf, 0, this.keep, ++this.lineNo, this.longAt, this.long);
        else if (this.fill > 0)
          this.onRaw(this.buf, 0, this.fill, ++this.lineNo, smi(base), this.fill);
        return this.lineNo;
      }
      this.lines(base, this.fill + n);
    }
  }

  private read(pos: number, want: number): number {
    try {
      return readSync(this.fd, this.buf, this.fill, want, pos);
    } catch (err) {
      throw new InputFileError(`failed reading input: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Emits the lines ended in buf[fill, end), then keeps the partial tail at the front. */
  private lines(base: number, end: number): void {
    const { buf, keep, onRaw } = this;
    let start = 0;
    let nl = buf.indexOf(10, this.fill);
    if (this.long >= 0) {
      if (nl === -1 || nl >= end) {
        this.long += end - this.fill;
        return;
      }
      onRaw(buf, 0, keep, ++this.lineNo, this.longAt, this.long + nl - this.fill);
      this.long = -1;
      start = nl + 1;
      nl = buf.indexOf(10, start);
    }
    while (nl !== -1 && nl < end) {
      onRaw(buf, start, Math.min(nl, start + keep), ++this.lineNo, smi(base + start), nl - start);
      start = nl + 1;
      nl = buf.indexOf(10, start);
    }
    const tail = end - start;
    if (tail >= keep) {
      this.long = tail;
      this.longAt = smi(base + start);
      buf.copyWithin(0, start, start + keep);
      this.fill = keep;
    } else {
      if (start > 0 && tail > 0) buf.copyWithin(0, start, end);
      this.fill = tail;
    }
  }

  /** Room for a line longer than the buffer: up to its kept bytes and a chunk more. */
  private grow(): void {
    const size = Math.max(this.fill + 1, Math.min(this.buf.length * 2, this.keep + this.chunk));
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.fill);
    this.buf = next;
  }
}

/** A line's text from its bytes, as {@link forEachLine} gives it (CR and leading BOM dropped). */
export function lineText(buf: Buffer, start: number, end: number, lineNo: number, at: number) {
  return decodeLine(buf, start, end, lineNo === 1 && at === 0);
}

/** Reads every line of a file at `path` (or of its byte range [start, end]). */
export async function readFileLines(
  path: string,
  onLine: LineHandler,
  range?: { start: number; end: number },
  opts?: LineOptions,
): Promise<number> {
  return forEachLine(await openInput(path, range), onLine, range?.start ?? 0, opts);
}

/**
 * Reads lines back by byte range (ranges sorted by `at`), through a window that
 * slides forward, so re-reading a tenth of a file's lines costs one sequential pass.
 */
export async function loadRanges(
  path: string,
  ranges: readonly { at: number; len: number }[],
): Promise<string[]> {
  const handle = await open(path, 'r');
  try {
    const out: string[] = [];
    let window = Buffer.alloc(4 << 20);
    let winStart = -1;
    let winLen = 0;
    for (const r of ranges) {
      if (winStart < 0 || r.at < winStart || r.at + r.len > winStart + winLen) {
        if (r.len > window.length) window = Buffer.alloc(r.len);
        const { bytesRead } = await handle.read(window, 0, window.length, r.at);
        winStart = r.at;
        winLen = bytesRead;
        if (bytesRead < r.len) throw new InputFileError(`input changed while balancing: ${path}`);
      }
      out.push(decodeLine(window, r.at - winStart, r.at - winStart + r.len, r.at === 0));
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** The bytes of lines read back by byte range: line i is bytes [start(i), end(i)) of `bytes`. */
export interface RangeBytes {
  bytes: Buffer;
  start(i: number): number;
  end(i: number): number;
  /** Line i as text, as {@link loadRanges} gives it (a trailing CR and a leading BOM dropped). */
  text(i: number): string;
}

/** The window of {@link loadRangeBytes}: reads start at a wanted line, so sparse lines skip the gaps. */
const BYTE_WINDOW = 1 << 20;

/**
 * {@link loadRanges} as bytes: the lines at the given ranges (sorted by `at`) copied
 * into one buffer, read synchronously through one reused window that starts at the
 * next wanted line (a line longer than the window is read on its own).
 */
export function loadRangeBytes(
  path: string,
  ranges: readonly { at: number; len: number }[],
): RangeBytes {
  let total = 0;
  for (const r of ranges) total += r.len;
  const bytes = Buffer.allocUnsafe(total);
  // Small integers where they fit: the scanner's code is compiled for them (a double
  // position would make V8 recompile it slower).
  const starts =
    total < 2 ** 31 ? new Int32Array(ranges.length + 1) : new Float64Array(ranges.length + 1);
  const fd = openSync(path, 'r');
  try {
    const window = Buffer.allocUnsafe(BYTE_WINDOW);
    let winStart = -1;
    let winLen = 0;
    let pos = 0;
    ranges.forEach((r, i) => {
      starts[i] = pos;
      if (r.len > BYTE_WINDOW) {
        if (readSync(fd, bytes, pos, r.len, r.at) < r.len) throw changed(path);
      } else {
        if (winStart < 0 || r.at < winStart || r.at + r.len > winStart + winLen) {
          winLen = readSync(fd, window, 0, BYTE_WINDOW, r.at);
          winStart = r.at;
          if (winLen < r.len) throw changed(path);
        }
        window.copy(bytes, pos, r.at - winStart, r.at - winStart + r.len);
      }
      pos += r.len;
    });
    starts[ranges.length] = pos;
  } finally {
    closeSync(fd);
  }
  return {
    bytes,
    start: (i) => starts[i]!,
    end: (i) => starts[i + 1]!,
    text: (i) => decodeLine(bytes, starts[i]!, starts[i + 1]!, ranges[i]!.at === 0),
  };
}

const changed = (path: string) => new InputFileError(`input changed while balancing: ${path}`);

/** How the emitter (shared/balance/emit.ts) reads the Buffer loadRangeBytes gives: Buffer's own UTF-8 decoder and check. */
export const bufferBytes = {
  decode: (b: Uint8Array, s: number, e: number) => (b as Buffer).toString('utf8', s, e),
  check: (b: Uint8Array, s: number, e: number): -1 | 0 | 1 => {
    const line = (b as Buffer).subarray(s, e);
    return !isUtf8(line) ? -1 : line.includes(0x5c) ? 1 : 0;
  },
} as const;
