/**
 * Writing outputs to disk. A JSONL or JSON file is written to a temp file beside it and
 * renamed into place, hashed while written, so the manifest can name each file's sha256.
 * A dataset directory is built whole in a staging directory beside it and swapped in
 * (withOutputDir): readers see the previous build's complete set or the new one's, never
 * a mix, and never a file an earlier build left behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  openSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { PermanentError } from '../../shared/errors';

/** An output path that cannot be written, or a directory that is not ours to replace. */
export class OutputPathError extends PermanentError {}

const FS_REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EEXIST: 'a file is in the way',
  EISDIR: 'it is a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or directory',
  ENAMETOOLONG: 'the name is too long',
  EBUSY: 'the path is busy (a mount point?)',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  EXDEV: 'not on the same file system',
};

/** A Node system error (fs, net): one with a string `code` such as EACCES. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return (
    err instanceof Error &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    /^E[A-Z0-9]+$/.test((err as NodeJS.ErrnoException).code!)
  );
}

/** One line for a system error: what was done, to which path, and why it failed. */
export function describeSystemError(err: NodeJS.ErrnoException & { code: string }): string {
  const { dest } = err as { dest?: string };
  const reason = FS_REASONS[err.code] ?? err.message.split('\n')[0]!;
  const what = err.syscall ? `${err.syscall} ` : '';
  const where = err.path ? `${err.path}${dest ? ` → ${dest}` : ''}` : '';
  return `${what}${where}${what || where ? ': ' : ''}${reason} (${err.code})`;
}

/** The process kills itself (SIGKILL) right after writing `file` when SFT_FAILPOINT=wrote:<file>. */
function afterWrite(path: string): void {
  if (process.env.SFT_FAILPOINT !== `wrote:${basename(path)}`) return;
  process.stderr.write(`failpoint wrote:${basename(path)}: killing the process\n`);
  process.kill(process.pid, 'SIGKILL');
}

/** A fresh temp name beside `path` (same directory, so the final rename is atomic). */
const tempBeside = (path: string) =>
  join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);

/** JsonlWriter's chunk: written (and hashed) when the next line might not fit. */
const CHUNK_BYTES = 1 << 21;

export interface FileDigest {
  sha256: string;
  lines: number;
  bytes: number;
}

/**
 * A JSONL file being written: `write` objects, then `close` for its digest (or `abort`
 * to leave nothing). Writes go to a temp file beside the target, synchronously a
 * megabyte at a time, so memory holds one chunk, never a queue of them (a stream would
 * buffer everything a fast producer writes ahead of the disk).
 */
export class JsonlWriter {
  private fd: number;
  private readonly temp: string;
  private readonly hash = createHash('sha256');
  private lines = 0;
  private bytes = 0;
  /** Lines are encoded straight into this chunk (no string joining, no second copy). */
  private readonly chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;

  constructor(private readonly path: string) {
    this.temp = tempBeside(path);
    this.fd = openSync(this.temp, 'wx');
  }

  write(value: unknown): void {
    const text = JSON.stringify(value);
    this.lines++;
    // A UTF-16 code unit takes at most 3 bytes in UTF-8 (a surrogate pair 4 for 2 units).
    if (this.used + text.length * 3 + 1 > CHUNK_BYTES) {
      this.flush();
      if (text.length * 3 + 1 > CHUNK_BYTES) {
        this.put(Buffer.from(text + '\n', 'utf8'));
        return;
      }
    }
    this.used += this.chunk.write(text, this.used, 'utf8');
    this.chunk[this.used++] = 10;
  }

  /** Writes bytes [start, end) of `bytes` as one line (they hold no newline): as {@link write} would. */
  writeRaw(bytes: Uint8Array, start: number, end: number): void {
    const len = end - start;
    this.lines++;
    if (this.used + len + 1 > CHUNK_BYTES) {
      this.flush();
      if (len + 1 > CHUNK_BYTES) {
        const line = Buffer.allocUnsafe(len + 1);
        line.set(bytes.subarray(start, end));
        line[len] = 10;
        this.put(line);
        return;
      }
    }
    this.chunk.set(bytes.subarray(start, end), this.used);
    this.used += len;
    this.chunk[this.used++] = 10;
  }

  private flush(): void {
    if (this.used === 0) return;
    const filled = this.chunk.subarray(0, this.used);
    this.used = 0;
    this.put(filled);
  }

  private put(bytes: Buffer): void {
    this.hash.update(bytes);
    this.bytes += bytes.length;
    for (let off = 0; off < bytes.length;) off += writeSync(this.fd, bytes, off);
  }

  close(): Promise<FileDigest> {
    try {
      this.flush();
      closeSync(this.fd);
      this.fd = -1;
      renameSync(this.temp, this.path);
    } catch (err) {
      this.abort();
      throw err;
    }
    afterWrite(this.path);
    return Promise.resolve({
      sha256: this.hash.digest('hex'),
      lines: this.lines,
      bytes: this.bytes,
    });
  }

  /** Drops the file being written: the target is left as it was. */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.temp, { force: true });
  }
}

/** Writes a whole JSONL file from an iterable. */
export async function writeJsonl(path: string, values: Iterable<unknown>): Promise<FileDigest> {
  const w = new JsonlWriter(path);
  try {
    for (const v of values) w.write(v);
  } catch (err) {
    w.abort();
    throw err;
  }
  return w.close();
}

/** Writes pretty JSON with a trailing newline; returns its digest. */
export async function writeJson(path: string, value: unknown): Promise<FileDigest> {
  const text = JSON.stringify(value, null, 2) + '\n';
  await writeTextFile(path, text);
  return {
    sha256: createHash('sha256').update(text).digest('hex'),
    lines: 1,
    bytes: Buffer.byteLength(text),
  };
}

/** Writes a text file through a temp file beside it and a rename: all of it or none. */
export async function writeTextFile(path: string, text: string): Promise<void> {
  const temp = tempBeside(path);
  try {
    await writeFile(temp, text, { flag: 'wx' });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  afterWrite(path);
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

// ---- where outputs may go ----

/**
 * Where a path really is: absolute, symbolic links resolved, also for a path that does
 * not exist yet (its nearest existing ancestor is resolved and the rest appended).
 */
export function realPath(path: string): string {
  const tail: string[] = [];
  let head = resolve(path);
  for (;;) {
    try {
      return join(realpathSync(head), ...tail);
    } catch {
      const up = dirname(head);
      if (up === head) return resolve(path);
      tail.unshift(basename(head));
      head = up;
    }
  }
}

const inside = (path: string, dir: string) =>
  path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);

function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

export interface OutputTarget {
  /** How the command line named it, e.g. "--out". */
  flag: string;
  path: string;
  /** A directory the command replaces whole, or a single file. */
  kind: 'dir' | 'file';
}

export interface InputSource {
  flag: string;
  path: string;
}

/**
 * The first input an output would destroy: a file written over (same real path or same
 * inode), or a file inside a directory the command replaces. Null when none.
 */
export function inputOverwrittenBy(
  inputs: readonly InputSource[],
  outputs: readonly OutputTarget[],
): string | null {
  for (const input of inputs) {
    const src = realPath(input.path);
    for (const out of outputs) {
      const dst = realPath(out.path);
      const same = src === dst || sameFile(src, dst);
      if (!same && !(out.kind === 'dir' && inside(src, dst))) continue;
      return !same
        ? `${out.flag} ${out.path} would replace ${input.flag} ${input.path}: the output directory is written whole, and the input is inside it (${src})`
        : `${out.flag} ${out.path} would overwrite ${input.flag} ${input.path} (both are ${src})`;
    }
  }
  return null;
}

/** Files a dataset-writing command puts in its output directory. */
export const OUTPUT_FILES: readonly string[] = [
  'train.jsonl',
  'validation.jsonl',
  'test.jsonl',
  'quarantine.jsonl',
  'manifest.json',
  'report.html',
  'status.json',
  'annotated.jsonl',
  'unlabeled.jsonl',
  // The other formats and the card (adapters/files/dataset-outputs.ts).
  'README.md',
  'chat',
  'classifier',
  'data',
  'duplicates.jsonl',
  // The router probe's (adapters/files/evaluate-step.ts): a build writes them, and
  // `evaluate --dataset DIR` may add them to a dataset directory afterwards.
  'probe.json',
  'label-review.jsonl',
];

/** The temp name tempBeside gives a file: `.<name>.<pid>-<hex>.tmp`. */
const TEMP_OF = /^\.(.+)\.\d+-[0-9a-f]+\.tmp$/;

/** Written last into every output directory: says the directory is ours, and what is in it. */
export const OUTPUT_MARKER = '.sft-balancer-output.json';

/** Names in `dir` that sft-balancer did not write there (empty: the directory is ours to replace). */
async function foreignEntries(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  let listed: string[] = [];
  if (names.includes(OUTPUT_MARKER)) {
    try {
      const marker = JSON.parse(await readFile(join(dir, OUTPUT_MARKER), 'utf8')) as {
        files?: unknown;
      };
      if (Array.isArray(marker.files))
        listed = marker.files.filter((f): f is string => typeof f === 'string');
    } catch {
      // An unreadable marker vouches for nothing beyond the known names.
    }
  }
  const ours = (n: string) =>
    n === OUTPUT_MARKER ||
    OUTPUT_FILES.includes(n) ||
    listed.includes(n) ||
    // A temp file of an interrupted earlier version's write (train.jsonl.tmp).
    (n.endsWith('.tmp') && OUTPUT_FILES.includes(n.slice(0, -'.tmp'.length))) ||
    // A temp file of a write killed in place (evaluate writes into a dataset directory).
    OUTPUT_FILES.includes(TEMP_OF.exec(n)?.[1] ?? '');
  return names.filter((n) => !ours(n)).sort();
}

const code = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Creates `dir` and its parents; a path that cannot hold a directory fails in one line. */
async function makeDir(dir: string, what: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    if (isSystemError(err))
      throw new OutputPathError(`cannot create ${what}: ${describeSystemError(err)}`, {
        cause: err,
      });
    throw err;
  }
}

/** Proves `dir` takes new entries by making one and removing it (access(2) lies to root). */
async function probeWritable(dir: string, what: string): Promise<void> {
  const probe = join(dir, `.sft-balancer-probe.${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(probe);
    await rmdir(probe);
  } catch (err) {
    if (isSystemError(err))
      throw new OutputPathError(
        `cannot write ${what}: ${dir} takes no new files: ${FS_REASONS[err.code] ?? err.message} (${err.code})`,
        { cause: err },
      );
    throw err;
  }
}

/**
 * Checks, before any work, that `out` can become this command's output directory: its
 * parent can be created and written, and `out` is absent, empty, or holds only files
 * sft-balancer writes. Returns its real path.
 */
export async function checkOutputDir(out: string, flag = '--out'): Promise<string> {
  const target = realPath(out);
  const what = `${flag} ${out}`;
  // Replacing it would pull the working directory out from under the process (and the shell).
  if (inside(realPath(process.cwd()), target))
    throw new OutputPathError(`${what} is (or holds) the working directory; choose a subdirectory`);
  await makeDir(dirname(target), what);
  let isDir = false;
  try {
    const st = await lstat(target);
    if (!st.isDirectory())
      throw new OutputPathError(`${what} is an existing file, not a directory`);
    isDir = true;
  } catch (err) {
    if (code(err) !== 'ENOENT') {
      if (isSystemError(err))
        throw new OutputPathError(`cannot use ${what}: ${describeSystemError(err)}`, {
          cause: err,
        });
      throw err;
    }
  }
  if (isDir) {
    const foreign = await foreignEntries(target);
    if (foreign.length > 0) {
      const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? ', ...' : '');
      throw new OutputPathError(
        `${what} holds files sft-balancer did not write (${shown}); the directory is replaced whole, so choose another ${flag} or move them`,
      );
    }
  }
  await probeWritable(dirname(target), what);
  return target;
}

/**
 * Checks, before any work, that the files in `paths` can be written: their directories
 * can be created and take new files, and none of them is a directory.
 */
export async function checkOutputFiles(paths: readonly string[], flag = '--out'): Promise<void> {
  for (const path of paths) {
    const target = realPath(path);
    const what = `${flag} ${path}`;
    await makeDir(dirname(target), what);
    try {
      if ((await stat(target)).isDirectory())
        throw new OutputPathError(`${what} is a directory, not a file`);
    } catch (err) {
      if (err instanceof OutputPathError) throw err;
      if (code(err) !== 'ENOENT') {
        if (isSystemError(err))
          throw new OutputPathError(`cannot use ${what}: ${describeSystemError(err)}`, {
            cause: err,
          });
        throw err;
      }
    }
    await probeWritable(dirname(target), what);
  }
}

/**
 * Staging and moved-aside names: `.<out>.tmp-<host>-<pid>-<random>`. The host tag keeps a
 * run on another machine sharing the directory (NFS) from taking a live staging directory
 * for a dead one: only this host's pids can be checked.
 */
const LEFTOVER = /^\.(.+)\.(tmp|old)-([0-9a-f]{8})-(\d+)-[0-9a-f]+$/;
const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return code(err) === 'EPERM';
  }
}

/**
 * Removes what a killed earlier run left beside `target`: its staging directory, and its
 * moved-aside previous set (put back first if the swap died between its two renames).
 */
async function sweepLeftovers(target: string): Promise<void> {
  const parent = dirname(target);
  const name = basename(target);
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return;
  }
  for (const entry of entries) {
    const m = LEFTOVER.exec(entry);
    if (!m || m[1] !== name || m[3] !== HOST || alive(Number(m[4]))) continue;
    const path = join(parent, entry);
    if (m[2] === 'old') {
      try {
        await rename(path, target);
        continue;
      } catch {
        // The target is back already: the aside copy is stale.
      }
    }
    await rm(path, { recursive: true, force: true });
  }
}

const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Builds an output directory whole and swaps it in: `write` fills a fresh staging
 * directory beside `out` (same parent, so the renames are atomic); when it resolves, the
 * previous directory (checked to hold only sft-balancer's files) is moved aside, the
 * staging directory renamed to `out`, and the old one removed. If `write` throws, or the
 * process is interrupted, the staging directory is removed and `out` is left as it was.
 * Readers see the old complete set, then (after an instant with no directory) the new one.
 */
export async function withOutputDir<T>(
  out: string,
  write: (staging: string) => Promise<T>,
  flag = '--out',
): Promise<T> {
  await sweepLeftovers(realPath(out));
  const target = await checkOutputDir(out, flag);
  const tag = () => `${HOST}-${process.pid}-${randomBytes(6).toString('hex')}`;
  const staging = join(dirname(target), `.${basename(target)}.tmp-${tag()}`);
  await mkdir(staging);
  const onSignal = (signal: NodeJS.Signals) => {
    rmSync(staging, { recursive: true, force: true });
    for (const s of signals) process.removeListener(s, onSignal);
    process.kill(process.pid, signal);
  };
  for (const s of signals) process.once(s, onSignal);
  try {
    const result = await write(staging);
    const files = (await readdir(staging)).sort();
    await writeFile(
      join(staging, OUTPUT_MARKER),
      JSON.stringify({ tool: 'sft-balancer', files }) + '\n',
    );
    for (let attempt = 0; ; attempt++) {
      // Checked again: someone may have put a file in `out` while this build ran.
      await checkOutputDir(out, flag);
      let aside: string | null = join(dirname(target), `.${basename(target)}.old-${tag()}`);
      try {
        await chmod(staging, (await stat(target)).mode & 0o7777);
        await rename(target, aside);
      } catch (err) {
        if (code(err) !== 'ENOENT') throw err;
        aside = null;
      }
      try {
        await rename(staging, target);
      } catch (err) {
        if (aside) await rename(aside, target).catch(() => undefined);
        // Another run swapped its set in between: check and swap again.
        if ((code(err) === 'ENOTEMPTY' || code(err) === 'EEXIST') && attempt < 3) continue;
        throw err;
      }
      if (aside) await rm(aside, { recursive: true, force: true });
      return result;
    }
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    for (const s of signals) process.removeListener(s, onSignal);
  }
}

export { join };
