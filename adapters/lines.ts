/**
 * Reading JSONL from disk: a callback per line, no per-line promise, gzip by extension.
 * This is the hot loop of `balance`, so it splits buffers itself rather than use readline.
 */
import { createReadStream } from 'node:fs';
import { access, constants, open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export class InputFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InputFileError';
  }
}

/** The size of a readable input file; a missing or unreadable file is an InputFileError. */
export async function inputSize(path: string): Promise<number> {
  await checkReadable(path);
  return (await stat(path)).size;
}

async function checkReadable(path: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new InputFileError(
      code === 'ENOENT'
        ? `input file not found: ${path}`
        : `input file is not readable: ${path} (${code})`,
      { cause },
    );
  }
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

/** Gets a line's text, its 1-based number, and its byte range in the input. */
export type LineHandler = (line: string, lineNo: number, at: number, len: number) => void;

/** A line's text from its bytes: a trailing CR and a leading byte-order mark dropped. */
function decodeLine(buf: Buffer, start: number, end: number, first: boolean): string {
  if (end > start && buf[end - 1] === 13) end--;
  const text = buf.toString('utf8', start, end);
  return first && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * Calls `onLine(text, lineNumber, at, len)` for each line of a stream (1-based; CRLF and a
 * leading BOM tolerated). Splits raw bytes on "\n" (never part of a multi-byte UTF-8
 * character) and decodes each line on its own: faster than decoding whole chunks, and
 * each line is a flat string that does not pin its chunk in memory when kept.
 */
export function forEachLine(stream: Readable, onLine: LineHandler, firstByte = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    let pending: Buffer | null = null;
    let lineNo = 0;
    /** Byte offset of the current chunk (or of the pending partial line) in the input. */
    let base = firstByte;
    const emit = (buf: Buffer, start: number, end: number, at: number) => {
      const len = end - start;
      lineNo++;
      onLine(decodeLine(buf, start, end, lineNo === 1 && at === 0), lineNo, at, len);
    };
    stream.on('data', (chunk: Buffer) => {
      try {
        let start = 0;
        if (pending) {
          const nl = chunk.indexOf(10);
          if (nl === -1) {
            pending = Buffer.concat([pending, chunk]);
            return;
          }
          const joined = Buffer.concat([pending, chunk.subarray(0, nl)]);
          const at = base;
          base += pending.length;
          pending = null;
          emit(joined, 0, joined.length, at);
          start = nl + 1;
        }
        for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
          emit(chunk, start, nl, base + start);
          start = nl + 1;
        }
        if (start < chunk.length) pending = chunk.subarray(start);
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
        if (pending && pending.length > 0) emit(pending, 0, pending.length, base);
        resolve(lineNo);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

/** Reads every line of a file at `path` (or of its byte range [start, end]). */
export async function readFileLines(
  path: string,
  onLine: LineHandler,
  range?: { start: number; end: number },
): Promise<number> {
  return forEachLine(await openInput(path, range), onLine, range?.start ?? 0);
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
