/**
 * Where a build reads its telemetry: a JSONL blob or a local file, in batches of
 * lines with back-pressure (the consumer awaits its writes between batches).
 * This is the plan step's seam: the Kusto source (issue 5) can plug in here with
 * the same two methods (size to decide the shard count, lines to route them).
 */
import { createReadStream } from 'node:fs';
import { access, constants, open as openFile, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { BlobStore } from './blob-store';
import { statusOf } from './clients';
import type { SourceRef } from '../../shared/source/ref';
import { kustoLineSource } from '../source/telemetry';
import { PermanentError } from '../../shared/errors';
import { formatOf, type InputFormat, type InputReadOptions } from '../files/input-formats';
import {
  describeParts,
  partLines,
  partsSize,
  plainJsonl,
  type ChangedError,
  type Part,
} from './parts-source';

export interface SourceLine {
  line: string;
  lineNo: number;
}

/**
 * What a plan records of a byte source (a blob's ETag, a file's size and mtime), so
 * every later ranged read can tell the source is still the one that was planned.
 */
export type SourceIdentity =
  { kind: 'blob'; size: number; etag: string } | { kind: 'file'; size: number; mtimeMs: number };

/** A byte span of the source: `count` bytes from `offset`. */
export interface Span {
  offset: number;
  count: number;
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
  chunks?(identity?: SourceIdentity): AsyncIterable<Buffer>;
  /**
   * The source's identity now, when shards can reference it by byte ranges (a blob, a
   * local file); the plan records it and `chunks(identity)` reads only that version.
   */
  identity?(): Promise<SourceIdentity>;
  /**
   * The bytes of `spans` (sorted by offset, not overlapping), read directly from the
   * source while it still has `identity`: a source changed or gone since the plan
   * throws {@link SourceChangedError}.
   */
  readSpans?(spans: readonly Span[], identity: SourceIdentity): Promise<Buffer[]>;
  /** The lines (1-based numbers, CRLF tolerated), a chunk at a time. */
  lines(): AsyncIterable<SourceLine[]>;
}

/** A source that cannot be found or read: a permanent failure of the build. */
export class SourceNotFoundError extends PermanentError {}

/**
 * The source changed (or vanished) after the plan referenced it: a batch cannot read
 * the lines it was planned with, so the build fails (permanent; no retry can help).
 */
export class SourceChangedError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SourceChangedError';
  }
}

/** Picks `spans` (sorted) out of a stream of the whole source. */
async function spansOfStream(
  stream: AsyncIterable<Buffer>,
  spans: readonly Span[],
): Promise<Buffer[]> {
  const out = spans.map((s) => Buffer.allocUnsafe(s.count));
  const filled = spans.map(() => 0);
  let pos = 0;
  let first = 0;
  for await (const chunk of stream) {
    const end = pos + chunk.length;
    for (let i = first; i < spans.length && spans[i]!.offset < end; i++) {
      const s = spans[i]!;
      const from = Math.max(s.offset, pos);
      const to = Math.min(s.offset + s.count, end);
      if (to > from) {
        chunk.copy(out[i]!, from - s.offset, from - pos, to - pos);
        filled[i]! += to - from;
      }
      if (s.offset + s.count <= end && i === first) first++;
    }
    pos = end;
    if (first >= spans.length) break;
  }
  return out.map((b, i) => b.subarray(0, filled[i]));
}

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
    async identity() {
      try {
        const st = await stat(path);
        return { kind: 'file', size: st.size, mtimeMs: st.mtimeMs };
      } catch (cause) {
        throw new SourceNotFoundError(`telemetry file not found: ${path}`, { cause });
      }
    },
    async readSpans(spans, identity) {
      const changed = (cause?: unknown) =>
        new SourceChangedError(
          `the telemetry file ${path} changed or vanished after the build was planned ` +
            `(planned: ${identity.size} bytes, modified ${new Date(identity.kind === 'file' ? identity.mtimeMs : 0).toISOString()}); ` +
            `run the build again`,
          { cause },
        );
      const same = (st: { size: number; mtimeMs: number }) =>
        identity.kind === 'file' && st.size === identity.size && st.mtimeMs === identity.mtimeMs;
      let fd;
      try {
        fd = await openFile(path, 'r');
      } catch (cause) {
        throw changed(cause);
      }
      try {
        if (!same(await fd.stat())) throw changed();
        let out: Buffer[];
        if (gz) {
          // Decompressed from the start up to the last span (its own stream: destroying a
          // FileHandle's stream closes the handle).
          const raw = createReadStream(path, { highWaterMark: 1 << 20 });
          const gunzip = createGunzip({ chunkSize: 1 << 20 });
          try {
            out = await spansOfStream(raw.pipe(gunzip), spans);
          } finally {
            raw.destroy();
            gunzip.destroy();
          }
        } else {
          out = [];
          for (const s of spans) {
            const buf = Buffer.allocUnsafe(s.count);
            let got = 0;
            while (got < s.count) {
              const { bytesRead } = await fd.read(buf, got, s.count - got, s.offset + got);
              if (bytesRead === 0) break;
              got += bytesRead;
            }
            out.push(buf.subarray(0, got));
          }
        }
        if (!same(await fd.stat())) throw changed();
        return out;
      } finally {
        await fd.close();
      }
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

/** The part names under a prefix: sorted, names starting with `.` or `_` (`_SUCCESS`) skipped. */
async function prefixParts(store: BlobStore, prefix: string): Promise<string[]> {
  const kept = (await store.list(prefix))
    .filter((n) => {
      const base = n.slice(n.lastIndexOf('/') + 1);
      return base.length > 0 && !base.startsWith('.') && !base.startsWith('_');
    })
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (kept.length === 0)
    throw new SourceNotFoundError(`no telemetry blobs under ${store.container}/${prefix}`);
  return kept;
}

/**
 * The blobs under a prefix (a path ending in `/`, such as a Kusto `.export` folder of
 * parts), or one blob that is not plain JSONL, read as one source in sorted name
 * order. Plain JSONL parts are their bytes, with a line break between parts that lack
 * one; CSV, Parquet and gzipped parts are converted to JSONL lines on the way
 * (adapters/storage/parts-source.ts), so a plan copies such a source into shard blobs.
 */
export function blobPrefixSource(
  store: BlobStore,
  prefix: string,
  read: InputReadOptions = {},
  names: () => Promise<string[]> = () => prefixParts(store, prefix),
): LineSource {
  let described: Promise<Part[]> | undefined;
  const parts = () => (described ??= names().then((n) => describeParts(store, n, read.format)));
  const changed: ChangedError = (message, cause) => new SourceChangedError(message, { cause });
  return {
    name: `blob:${store.container}/${prefix}`,
    async size() {
      const ps = await parts();
      if (plainJsonl(ps)) return ps.reduce((a, p) => a + p.size, 0);
      return partsSize(store, ps, changed);
    },
    async *chunks() {
      const ps = await parts();
      if (!plainJsonl(ps)) {
        for await (const batch of partLines(store, ps, read, changed))
          if (batch.length > 0) yield Buffer.from(batch.join('\n') + '\n', 'utf8');
        return;
      }
      for (const p of ps) {
        let last = 10;
        const stream = await store.stream(p.name, p.etag).catch((err: unknown) => {
          if (statusOf(err) === 412 || statusOf(err) === 404)
            throw changed(
              `the telemetry part ${store.container}/${p.name} changed; run the build again`,
              err,
            );
          throw err;
        });
        for await (const chunk of stream as AsyncIterable<Buffer>) {
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

/** True when a blob is read as parts (converted) rather than referenced by byte ranges. */
function readAsParts(path: string, format?: InputFormat): boolean {
  if (path.endsWith('/') || path.toLowerCase().endsWith('.gz')) return true;
  return (format ?? formatOf(path) ?? 'jsonl') !== 'jsonl';
}

/**
 * A blob source: a prefix or a blob that is not plain JSONL read as parts
 * ({@link blobPrefixSource}), else one JSONL blob that shards reference by byte ranges.
 */
export function blobSource(
  store: BlobStore,
  path: string,
  read: InputReadOptions = {},
): LineSource {
  if (!readAsParts(path, read.format)) return jsonlBlobSource(store, path);
  const one = path.endsWith('/') ? undefined : () => Promise.resolve([path]);
  return blobPrefixSource(store, path, read, one);
}

/** One JSONL blob, read whole (the plan) or by byte ranges pinned to its ETag (the batch). */
function jsonlBlobSource(store: BlobStore, path: string): LineSource {
  return {
    name: `blob:${store.container}/${path}`,
    async size() {
      const n = await store.size(path);
      if (n === null)
        throw new SourceNotFoundError(`telemetry blob not found: ${store.container}/${path}`);
      return n;
    },
    async identity() {
      const props = await store.properties(path);
      if (props === null)
        throw new SourceNotFoundError(`telemetry blob not found: ${store.container}/${path}`);
      return { kind: 'blob', size: props.size, etag: props.etag };
    },
    async readSpans(spans, identity) {
      const etag = identity.kind === 'blob' ? identity.etag : undefined;
      try {
        const out: Buffer[] = [];
        // A few ranged downloads at once, in order.
        const width = 4;
        for (let i = 0; i < spans.length; i += width)
          out.push(
            ...(await Promise.all(
              spans.slice(i, i + width).map((s) => store.getRange(path, s.offset, s.count, etag)),
            )),
          );
        return out;
      } catch (err) {
        const status = statusOf(err);
        if (status === 412 || status === 404)
          throw new SourceChangedError(
            `the telemetry blob ${store.container}/${path} ${status === 404 ? 'was deleted' : 'changed'} ` +
              `after the build was planned (planned ETag ${etag ?? '?'}); run the build again`,
            { cause: err },
          );
        throw err;
      }
    },
    async *chunks(identity) {
      const etag = identity?.kind === 'blob' ? identity.etag : undefined;
      try {
        yield* (await store.stream(path, etag)) as AsyncIterable<Buffer>;
      } catch (err) {
        if (etag && statusOf(err) === 412)
          throw new SourceChangedError(
            `the telemetry blob ${store.container}/${path} changed while it was planned; run the build again`,
            { cause: err },
          );
        throw err;
      }
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

/**
 * Opens a source reference; blobs in another container go through `storeFor`. `read`:
 * how CSV and Parquet parts are read (the column mapping, the shape a header must
 * have; the format, which the ref's own `format` overrides).
 */
export function openSource(
  ref: SourceRef,
  storeFor: (container?: string) => BlobStore,
  read: InputReadOptions = {},
): LineSource {
  if (ref.kind === 'kusto') return kustoLineSource(ref.path);
  if (ref.kind === 'file') return fileSource(ref.path);
  const opts = ref.format ? { ...read, format: ref.format } : read;
  return blobSource(storeFor(ref.container), ref.path, opts);
}
