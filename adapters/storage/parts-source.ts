/**
 * The rows of a blob prefix of export parts in any input format (a Kusto `.export` of
 * CSV or Parquet, `.csv.gz`, JSONL, or a mix), read as one source in sorted name
 * order: each part converted to JSONL lines by the readers of
 * adapters/files/input-formats.ts, with bounded memory. A CSV part is streamed
 * (gunzipped when `.gz`); a Parquet part is read a row group at a time through ranged
 * reads of the blob (its footer, then the column chunks of the group at hand). Every
 * read is pinned to the ETag the part had when it was listed: a part changed meanwhile
 * is a SourceChangedError.
 *
 * Rows keep the source's column names (the batch applies the column mapping), so the
 * plan can route them by the mapped conversation id column.
 */
import { createGunzip } from 'node:zlib';
import type { AsyncBuffer } from 'hyparquet';
import {
  csvLines,
  formatOf,
  jsonlLines,
  parquetLines,
  parquetMeta,
  type InputFormat,
  type InputReadOptions,
} from '../files/input-formats';
import { inputErrorLine } from '../../shared/contracts/rows';
import { PermanentError } from '../../shared/errors';
import type { BlobStore } from './blob-store';
import { statusOf } from './clients';

/** A part the build cannot read as given (unknown format, gzipped Parquet). */
export class InputPartError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InputPartError';
  }
}

export interface Part {
  name: string;
  format: InputFormat;
  gz: boolean;
  size: number;
  etag: string;
}

/** Makes the error a ranged read or stream of a changed (412) or deleted (404) part throws. */
export type ChangedError = (message: string, cause: unknown) => Error;

/** The parts' formats, sizes and ETags; `format` for all of them, else by extension. */
export async function describeParts(
  store: BlobStore,
  names: readonly string[],
  format?: InputFormat,
): Promise<Part[]> {
  const out: Part[] = [];
  for (const name of names) {
    const where = `${store.container}/${name}`;
    const gz = name.toLowerCase().endsWith('.gz');
    const fmt = format ?? formatOf(name);
    if (!fmt)
      throw new InputPartError(
        `${where}: unknown input format (name parts .jsonl, .csv, .parquet, .jsonl.gz or .csv.gz, or give inputFormat)`,
      );
    if (fmt === 'parquet' && gz)
      throw new InputPartError(
        `${where}: Parquet is compressed inside; a gzipped Parquet part is not read`,
      );
    const props = await store.properties(name);
    if (props === null) throw new InputPartError(`${where}: the part vanished after it was listed`);
    out.push({ name, format: fmt, gz, size: props.size, etag: props.etag });
  }
  return out;
}

/** True when every part is plain JSONL: its bytes are the source's bytes as they are. */
export const plainJsonl = (parts: readonly Part[]) =>
  parts.every((p) => p.format === 'jsonl' && !p.gz);

function pinned<T>(store: BlobStore, p: Part, changed: ChangedError, read: () => Promise<T>) {
  return read().catch((err: unknown) => {
    const status = statusOf(err);
    if (status === 412 || status === 404)
      throw changed(
        `the telemetry part ${store.container}/${p.name} ${status === 404 ? 'was deleted' : 'changed'} ` +
          `while the build was planned (listed with ETag ${p.etag}); run the build again`,
        err,
      );
    throw err;
  });
}

/** A Parquet part as hyparquet's AsyncBuffer: ranged downloads pinned to its ETag. */
export function blobAsyncBuffer(store: BlobStore, p: Part, changed: ChangedError): AsyncBuffer {
  return {
    byteLength: p.size,
    async slice(start: number, end?: number) {
      const to = Math.min(end ?? p.size, p.size);
      const buf = await pinned(store, p, changed, () =>
        store.getRange(p.name, start, to - start, p.etag),
      );
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    },
  };
}

/** A text part's characters (gunzipped when `.gz`), streamed at its ETag. */
async function* partText(store: BlobStore, p: Part, changed: ChangedError): AsyncGenerator<string> {
  const raw = (await pinned(store, p, changed, () =>
    store.stream(p.name, p.etag),
  )) as NodeJS.ReadableStream;
  const text = p.gz ? raw.pipe(createGunzip({ chunkSize: 1 << 20 })) : raw;
  text.setEncoding('utf8');
  try {
    for await (const chunk of text as AsyncIterable<string>) yield chunk;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (p.gz && typeof code === 'string' && code.startsWith('Z_'))
      throw new InputPartError(`${store.container}/${p.name}: not valid gzip`, { cause: err });
    throw err;
  }
}

/**
 * The parts' rows as JSONL lines, a batch at a time, in order. A header or schema
 * without a needed column throws (InputFileError, permanent, naming the blob and the
 * column); a bad record is a quarantine line naming the blob and its line; a Parquet
 * part whose footer cannot be read (truncated) is one parquet_unreadable line naming it.
 */
export async function* partLines(
  store: BlobStore,
  parts: readonly Part[],
  opts: InputReadOptions,
  changed: ChangedError,
): AsyncGenerator<string[]> {
  const o = { ...opts, keepColumnNames: true };
  for (const p of parts) {
    const where = `${store.container}/${p.name}`;
    if (p.format === 'csv') yield* csvLines(where, partText(store, p, changed), o, p.name);
    else if (p.format === 'jsonl') yield* jsonlLines(partText(store, p, changed));
    else {
      const buffer = blobAsyncBuffer(store, p, changed);
      try {
        await parquetMeta(where, buffer);
      } catch (err) {
        if ((err as Error).name === 'SourceChangedError') throw err;
        yield [inputErrorLine('parquet_unreadable', (err as Error).message, '')];
        continue;
      }
      yield* parquetLines(where, buffer, o, p.name);
    }
  }
}

/**
 * The size the plan counts for the parts: a CSV or JSONL part's bytes (a `.gz`
 * decompressed, counted in one pass), a Parquet part's uncompressed row group bytes
 * (about what its rows take as JSONL, not its compressed size).
 */
export async function partsSize(
  store: BlobStore,
  parts: readonly Part[],
  changed: ChangedError,
): Promise<number> {
  let total = 0;
  for (const p of parts) {
    if (p.format === 'parquet') {
      try {
        const meta = await parquetMeta(p.name, blobAsyncBuffer(store, p, changed));
        total += meta.row_groups.reduce((a, g) => a + Number(g.total_byte_size), 0);
      } catch (err) {
        if ((err as Error).name === 'SourceChangedError') throw err;
        total += p.size; // unreadable: one quarantine line
      }
    } else if (p.gz) {
      for await (const chunk of partText(store, p, changed)) total += Buffer.byteLength(chunk);
    } else total += p.size;
  }
  return total;
}
