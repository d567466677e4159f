/**
 * BlobStore: the few blob operations the build needs, over one container. Create-only
 * writes (`ifNoneMatch: '*'`) make commits idempotent; a lease on a claim blob makes
 * one fan-in run at a time and lapses when its holder dies.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { z } from 'zod';
import { statusOf } from './clients';

export interface Lease {
  renew(): Promise<void>;
  release(): Promise<void>;
}

export interface BlockWriter {
  /**
   * Stages the next block. Ids are this writer's own (a random tag and the block's
   * sequence number): two writers of one blob never commit each other's blocks, so a
   * committed blob is always one writer's whole content.
   */
  stage(data: Buffer): Promise<void>;
  commit(): Promise<void>;
}

export interface BlobStore {
  readonly container: string;
  ensureContainer(): Promise<void>;
  get(path: string): Promise<Buffer | null>;
  getJson<S extends z.ZodType>(path: string, schema: S): Promise<z.infer<S> | null>;
  /** Writes (overwrites) a blob: for deterministic content. */
  put(path: string, data: string | Buffer): Promise<void>;
  /** Creates a blob unless it exists; false when it already did. */
  create(path: string, data: string | Buffer): Promise<boolean>;
  exists(path: string): Promise<boolean>;
  list(prefix: string): Promise<string[]>;
  size(path: string): Promise<number | null>;
  /** Size and ETag of a blob (the identity a plan records); null when it is missing. */
  properties(path: string): Promise<{ size: number; etag: string } | null>;
  /** The blob's bytes as a stream; with `etag`, only while the blob still has it (else 412). */
  stream(path: string, etag?: string): Promise<Readable>;
  /**
   * `count` bytes from `offset` (one ranged download); with `etag`, only while the
   * blob still has it: a changed blob fails with status 412, a deleted one with 404.
   */
  getRange(path: string, offset: number, count: number, etag?: string): Promise<Buffer>;
  blockWriter(path: string): BlockWriter;
  uploadFile(path: string, file: string): Promise<void>;
  /**
   * Uploads a stream unless the blob exists (create-only, so two uploads to one name
   * never interleave: the first commit wins, whole); false when it already existed.
   */
  createFromStream(path: string, body: Readable): Promise<boolean>;
  downloadToFile(path: string, file: string): Promise<void>;
  /** A lease on an existing blob, or null when another holder has it. */
  acquireLease(path: string, seconds: number): Promise<Lease | null>;
  url(path: string): string;
}

const JSON_TYPE = { blobContentType: 'application/json' };

export function createBlobStore(service: BlobServiceClient, container: string): BlobStore {
  const c: ContainerClient = service.getContainerClient(container);
  const block = (p: string) => c.getBlockBlobClient(p);
  const typeOf = (p: string) =>
    p.endsWith('.json')
      ? JSON_TYPE
      : p.endsWith('.jsonl')
        ? { blobContentType: 'application/x-ndjson' }
        : p.endsWith('.html')
          ? { blobContentType: 'text/html; charset=utf-8' }
          : {};
  const store: BlobStore = {
    container,
    async ensureContainer() {
      await c.createIfNotExists();
    },
    async get(path) {
      try {
        return await block(path).downloadToBuffer();
      } catch (err) {
        if (statusOf(err) === 404) return null;
        throw err;
      }
    },
    async getJson(path, schema) {
      const buf = await store.get(path);
      if (buf === null) return null;
      return schema.parse(JSON.parse(buf.toString('utf8')));
    },
    async put(path, data) {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      await block(path).uploadData(buf, { blobHTTPHeaders: typeOf(path) });
    },
    async create(path, data) {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      try {
        await block(path).uploadData(buf, {
          blobHTTPHeaders: typeOf(path),
          conditions: { ifNoneMatch: '*' },
        });
        return true;
      } catch (err) {
        if (statusOf(err) === 409 || statusOf(err) === 412) return false;
        throw err;
      }
    },
    async exists(path) {
      return block(path).exists();
    },
    async list(prefix) {
      const names: string[] = [];
      try {
        for await (const item of c.listBlobsFlat({ prefix })) names.push(item.name);
      } catch (err) {
        if (statusOf(err) === 404) return []; // no container yet: nothing in it
        throw err;
      }
      return names;
    },
    async size(path) {
      try {
        return (await block(path).getProperties()).contentLength ?? 0;
      } catch (err) {
        if (statusOf(err) === 404) return null;
        throw err;
      }
    },
    async properties(path) {
      try {
        const props = await block(path).getProperties();
        return { size: props.contentLength ?? 0, etag: props.etag ?? '' };
      } catch (err) {
        if (statusOf(err) === 404) return null;
        throw err;
      }
    },
    async stream(path, etag) {
      const res = await block(path).download(0, undefined, {
        ...(etag ? { conditions: { ifMatch: etag } } : {}),
      });
      return res.readableStreamBody as Readable;
    },
    async getRange(path, offset, count, etag) {
      if (count === 0) return Buffer.alloc(0);
      const res = await block(path).download(offset, count, {
        ...(etag ? { conditions: { ifMatch: etag } } : {}),
      });
      const body = res.readableStreamBody as Readable;
      const parts: Buffer[] = [];
      for await (const part of body) parts.push(part as Buffer);
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
    blockWriter(path) {
      const ids: string[] = [];
      const client = block(path);
      // 12 characters as before (a blob's block ids must all have one length).
      const tag = randomBytes(4).toString('hex').slice(0, 6);
      return {
        async stage(data) {
          const id = Buffer.from(`${tag}${String(ids.length).padStart(6, '0')}`).toString('base64');
          ids.push(id);
          await client.stageBlock(id, data, data.length);
        },
        async commit() {
          await client.commitBlockList(ids, { blobHTTPHeaders: typeOf(path) });
        },
      };
    },
    async uploadFile(path, file) {
      await block(path).uploadFile(file, {
        blockSize: 8 * 1024 * 1024,
        concurrency: 4,
        blobHTTPHeaders: typeOf(path),
      });
    },
    async createFromStream(path, body) {
      try {
        await block(path).uploadStream(body, 8 * 1024 * 1024, 4, {
          blobHTTPHeaders: typeOf(path),
          conditions: { ifNoneMatch: '*' },
        });
        return true;
      } catch (err) {
        const status = statusOf(err);
        if (status === 409 || status === 412) return false;
        // Another upload committed first and its commit dropped our staged blocks.
        if (status === 400 && (await block(path).exists())) return false;
        throw err;
      }
    },
    async downloadToFile(path, file) {
      await block(path).downloadToFile(file);
    },
    async acquireLease(path, seconds) {
      const lease = block(path).getBlobLeaseClient();
      try {
        await lease.acquireLease(seconds);
      } catch (err) {
        if (statusOf(err) === 409) return null;
        throw err;
      }
      return {
        renew: async () => {
          await lease.renewLease();
        },
        release: async () => {
          await lease.releaseLease();
        },
      };
    },
    url(path) {
      return block(path).url;
    },
  };
  return store;
}
