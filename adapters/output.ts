/**
 * Writing outputs to disk: JSONL written through a temp file and renamed into place,
 * hashed while written, so the manifest can name each file's sha256.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FileDigest {
  sha256: string;
  lines: number;
  bytes: number;
}

/**
 * A JSONL file being written: `write` objects, then `close` for its digest. Writes go
 * out synchronously a megabyte at a time, so memory holds one chunk, never a queue of
 * them (a stream would buffer everything a fast producer writes ahead of the disk).
 */
export class JsonlWriter {
  private fd: number;
  private readonly hash = createHash('sha256');
  private lines = 0;
  private bytes = 0;
  private buffer: string[] = [];
  private buffered = 0;

  constructor(private readonly path: string) {
    this.fd = openSync(`${path}.tmp`, 'w');
  }

  write(value: unknown): void {
    const text = JSON.stringify(value) + '\n';
    this.buffer.push(text);
    this.buffered += text.length;
    this.lines++;
    if (this.buffered > 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.buffer.length === 0) return;
    const chunk = Buffer.from(this.buffer.join(''), 'utf8');
    this.buffer = [];
    this.buffered = 0;
    this.hash.update(chunk);
    this.bytes += chunk.length;
    for (let off = 0; off < chunk.length;) off += writeSync(this.fd, chunk, off);
  }

  close(): Promise<FileDigest> {
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
    renameSync(`${this.path}.tmp`, this.path);
    return Promise.resolve({
      sha256: this.hash.digest('hex'),
      lines: this.lines,
      bytes: this.bytes,
    });
  }
}

/** Writes a whole JSONL file from an iterable. */
export async function writeJsonl(path: string, values: Iterable<unknown>): Promise<FileDigest> {
  const w = new JsonlWriter(path);
  for (const v of values) w.write(v);
  return w.close();
}

/** Writes pretty JSON with a trailing newline; returns its digest. */
export async function writeJson(path: string, value: unknown): Promise<FileDigest> {
  const text = JSON.stringify(value, null, 2) + '\n';
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
  return {
    sha256: createHash('sha256').update(text).digest('hex'),
    lines: 1,
    bytes: Buffer.byteLength(text),
  };
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

export { join };
