/**
 * Writing outputs to disk: JSONL written through a temp file and renamed into place,
 * hashed while written, so the manifest can name each file's sha256.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FileDigest {
  sha256: string;
  lines: number;
  bytes: number;
}

/** A JSONL file being written: `write` objects, then `close` for its digest. */
export class JsonlWriter {
  private readonly stream: WriteStream;
  private readonly hash = createHash('sha256');
  private lines = 0;
  private bytes = 0;
  private buffer: string[] = [];
  private buffered = 0;

  constructor(private readonly path: string) {
    this.stream = createWriteStream(`${path}.tmp`);
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
    this.stream.write(chunk);
  }

  async close(): Promise<FileDigest> {
    this.flush();
    await new Promise<void>((resolve, reject) => {
      this.stream.on('error', reject);
      this.stream.end(resolve);
    });
    await rename(`${this.path}.tmp`, this.path);
    return { sha256: this.hash.digest('hex'), lines: this.lines, bytes: this.bytes };
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
