/**
 * Where a build reads its telemetry: a JSONL blob or a local file, in batches of
 * lines with back-pressure (the consumer awaits its writes between batches).
 * This is the plan step's seam: the Kusto source (issue 5) can plug in here with
 * the same two methods (size to decide the shard count, lines to route them).
 */
import { createReadStream } from 'node:fs';
import { access, constants, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { BlobStore } from './blob-store';
import type { SourceRef } from '../../shared/source/ref';
import { kustoLineSource } from '../source/telemetry';
import { PermanentError } from '../../shared/errors';

export interface SourceLine {
  line: string;
  lineNo: number;
}

export interface LineSource {
  /** Human-readable name for logs and the manifest. */
  readonly name: string;
  /** Bytes of the source: decides the shard count. */
  size(): Promise<number>;
  /**
   * The raw JSONL bytes, a chunk at a time, when the source is a byte stream: the
   * plan then splits and routes lines without decoding them.
   */
  chunks?(): AsyncIterable<Buffer>;
  /** The lines (1-based numbers, CRLF tolerated), a chunk at a time. */
  lines(): AsyncIterable<SourceLine[]>;
}

/** A source that cannot be found or read: a permanent failure of the build. */
export class SourceNotFoundError extends PermanentError {}

/** Splits a byte stream into line batches, one per chunk. */
export async function* lineBatches(stream: AsyncIterable<Buffer>): AsyncGenerator<SourceLine[]> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let lineNo = 0;
  const clean = (t: string) => (t.endsWith('\r') ? t.slice(0, -1) : t);
  for await (const chunk of stream) {
    const text = carry + decoder.write(chunk);
    const out: SourceLine[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      out.push({ line: clean(text.slice(start, nl)), lineNo: ++lineNo });
      start = nl + 1;
    }
    carry = text.slice(start);
    if (out.length > 0) yield out;
  }
  const tail = carry + decoder.end();
  if (tail.length > 0) yield [{ line: clean(tail), lineNo: ++lineNo }];
}

/**
 * A local JSONL file; `*.gz` is read gunzipped (its size is then the decompressed
 * size, counted once, so a .gz plans the same shards as the plain file).
 */
export function fileSource(path: string): LineSource {
  const gz = path.endsWith('.gz');
  let inflated: Promise<number> | undefined;
  const open = async () => {
    try {
      await access(path, constants.R_OK);
    } catch (cause) {
      throw new SourceNotFoundError(`telemetry file not readable: ${path}`, { cause });
    }
    const raw = createReadStream(path, { highWaterMark: 1 << 20 });
    return gz ? raw.pipe(createGunzip({ chunkSize: 1 << 20 })) : raw;
  };
  return {
    name: `file:${path}`,
    async size() {
      let bytes: number;
      try {
        bytes = (await stat(path)).size;
      } catch (cause) {
        throw new SourceNotFoundError(`telemetry file not found: ${path}`, { cause });
      }
      if (!gz) return bytes;
      inflated ??= (async () => {
        let n = 0;
        for await (const chunk of this.chunks!()) n += chunk.length;
        return n;
      })();
      return inflated;
    },
    async *chunks() {
      try {
        yield* (await open()) as AsyncIterable<Buffer>;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (gz && typeof code === 'string' && code.startsWith('Z_'))
          throw new SourceNotFoundError(`telemetry file is not valid gzip: ${path}`, {
            cause: err,
          });
        throw err;
      }
    },
    lines() {
      return lineBatches(this.chunks!());
    },
  };
}

/**
 * The blobs under a prefix (a path ending in `/`, such as a Kusto `.export` folder of
 * JSONL parts): sorted by name, names starting with `.` or `_` skipped, read as one
 * source with a line break between parts that lack one.
 */
export function blobPrefixSource(store: BlobStore, prefix: string): LineSource {
  let parts: Promise<string[]> | undefined;
  const list = () =>
    (parts ??= store.list(prefix).then((names) => {
      const kept = names
        .filter((n) => {
          const base = n.slice(n.lastIndexOf('/') + 1);
          return base.length > 0 && !base.startsWith('.') && !base.startsWith('_');
        })
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      if (kept.length === 0)
        throw new SourceNotFoundError(`no telemetry blobs under ${store.container}/${prefix}`);
      return kept;
    }));
  return {
    name: `blob:${store.container}/${prefix}`,
    async size() {
      let total = 0;
      for (const p of await list()) total += (await store.size(p)) ?? 0;
      return total;
    },
    async *chunks() {
      for (const p of await list()) {
        let last = 10;
        for await (const chunk of (await store.stream(p)) as AsyncIterable<Buffer>) {
          if (chunk.length > 0) last = chunk[chunk.length - 1]!;
          yield chunk;
        }
        if (last !== 10) yield Buffer.from('\n');
      }
    },
    lines() {
      return lineBatches(this.chunks!());
    },
  };
}

export function blobSource(store: BlobStore, path: string): LineSource {
  if (path.endsWith('/')) return blobPrefixSource(store, path);
  return {
    name: `blob:${store.container}/${path}`,
    async size() {
      const n = await store.size(path);
      if (n === null)
        throw new SourceNotFoundError(`telemetry blob not found: ${store.container}/${path}`);
      return n;
    },
    async *chunks() {
      yield* (await store.stream(path)) as AsyncIterable<Buffer>;
    },
    lines() {
      return lineBatches(this.chunks!());
    },
  };
}

/** The bytes of a source: its own chunks, or its lines joined (numbered 1, 2, ... as lines gives them). */
export async function* sourceBytes(source: LineSource): AsyncGenerator<Buffer> {
  if (source.chunks) {
    yield* source.chunks();
    return;
  }
  for await (const batch of source.lines()) {
    yield Buffer.from(batch.map((l) => l.line + '\n').join(''), 'utf8');
  }
}

/** Opens a source reference; blobs in another container go through `storeFor`. */
export function openSource(
  ref: SourceRef,
  storeFor: (container?: string) => BlobStore,
): LineSource {
  if (ref.kind === 'kusto') return kustoLineSource(ref.path);
  return ref.kind === 'file' ? fileSource(ref.path) : blobSource(storeFor(ref.container), ref.path);
}
