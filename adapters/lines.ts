/**
 * Reading JSONL from disk: a callback per line, no per-line promise, gzip by extension.
 * This is the hot loop of `balance`, so it splits buffers itself rather than use readline.
 */
import { createReadStream } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export class InputFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InputFileError';
  }
}

/** Opens a file for reading, gunzipping `*.gz`; a missing or unreadable file is an InputFileError. */
export async function openInput(path: string): Promise<Readable> {
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
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  return path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
}

/** Calls `onLine(text, lineNumber)` for each line of a stream (1-based; CRLF tolerated). */
export function forEachLine(
  stream: Readable,
  onLine: (line: string, lineNo: number) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    let carry = '';
    let lineNo = 0;
    const emit = (text: string) => {
      lineNo++;
      onLine(text.endsWith('\r') ? text.slice(0, -1) : text, lineNo);
    };
    stream.on('data', (chunk: Buffer) => {
      try {
        const text = carry + decoder.write(chunk);
        let start = 0;
        for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
          emit(text.slice(start, nl));
          start = nl + 1;
        }
        carry = text.slice(start);
      } catch (err) {
        stream.destroy(err as Error);
      }
    });
    stream.on('error', (err) =>
      reject(new InputFileError(`failed reading input: ${err.message}`, { cause: err })),
    );
    stream.on('end', () => {
      try {
        const tail = carry + decoder.end();
        if (tail.length > 0) emit(tail);
        resolve(lineNo);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

/** Reads every line of a file at `path`. */
export async function readFileLines(
  path: string,
  onLine: (line: string, lineNo: number) => void,
): Promise<number> {
  return forEachLine(await openInput(path), onLine);
}
