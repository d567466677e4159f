/**
 * The verdict cache's storage: a small text BlobStore (Azure Blob Storage, or a
 * local directory for the CLI) under the core's VerdictCache. Content-addressed
 * names make writes idempotent: a second write of a key stores the same verdict.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  CachedVerdictSchema,
  type CachedVerdict,
  type VerdictCache,
} from '../../shared/judge/cache-key';

/** The little of blob storage the cache needs. */
export interface TextBlobStore {
  /** The text of `name`, or null when it does not exist. */
  get(name: string): Promise<string | null>;
  put(name: string, text: string): Promise<void>;
}

const isStatus = (err: unknown, status: number) =>
  typeof err === 'object' && err !== null && (err as { statusCode?: number }).statusCode === status;

/** A TextBlobStore over an Azure Blob container (created on first write if missing). */
export function containerBlobStore(container: ContainerClient): TextBlobStore {
  let ensured: Promise<unknown> | null = null;
  return {
    async get(name) {
      try {
        const buf = await container.getBlockBlobClient(name).downloadToBuffer();
        return buf.toString('utf8');
      } catch (err) {
        if (isStatus(err, 404)) return null;
        throw err;
      }
    },
    async put(name, text) {
      ensured ??= container.createIfNotExists();
      await ensured;
      const body = Buffer.from(text, 'utf8');
      await container.getBlockBlobClient(name).upload(body, body.length, {
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
    },
  };
}

/** A TextBlobStore over the build's BlobStore (adapters/blob-store.ts) for one container. */
export function fromBuildBlobStore(store: {
  ensureContainer(): Promise<void>;
  get(path: string): Promise<Buffer | null>;
  put(path: string, data: string): Promise<void>;
}): TextBlobStore {
  let ensured: Promise<void> | null = null;
  return {
    async get(name) {
      return (await store.get(name))?.toString('utf8') ?? null;
    },
    async put(name, text) {
      ensured ??= store.ensureContainer();
      await ensured;
      await store.put(name, text);
    },
  };
}

/** A TextBlobStore in a local directory (written through a temp file and renamed). */
export function directoryBlobStore(root: string): TextBlobStore {
  return {
    async get(name) {
      try {
        return await readFile(join(root, name), 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    async put(name, text) {
      const path = join(root, name);
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, path);
    },
  };
}

export interface CacheCounters {
  reads: number;
  hits: number;
  writes: number;
  /** Entries that did not validate (treated as misses and overwritten). */
  corrupt: number;
}

/** The core's VerdictCache over a TextBlobStore; reads are validated with zod. */
export function blobVerdictCache(store: TextBlobStore): VerdictCache & { counters: CacheCounters } {
  const counters: CacheCounters = { reads: 0, hits: 0, writes: 0, corrupt: 0 };
  return {
    counters,
    async get(key): Promise<CachedVerdict | null> {
      counters.reads++;
      const text = await store.get(key);
      if (text === null) return null;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        counters.corrupt++;
        return null;
      }
      const parsed = CachedVerdictSchema.safeParse(value);
      if (!parsed.success) {
        counters.corrupt++;
        return null;
      }
      counters.hits++;
      return parsed.data;
    },
    async put(key, verdict) {
      counters.writes++;
      await store.put(key, JSON.stringify(CachedVerdictSchema.parse(verdict)));
    },
  };
}
