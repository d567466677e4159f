/**
 * Parquet files, written and read with hyparquet-writer / hyparquet: pure JavaScript,
 * no native code and no install scripts (one codebase for Node 20, 22 and 24 and the
 * Functions host), maintained, and the same family reads Parquet back (issue 18's
 * Parquet input). Files are written the way pandas/pyarrow, DuckDB and Hugging Face
 * `datasets` read them: UTF-8 strings (BYTE_ARRAY + STRING), INT32, DOUBLE, BOOLEAN
 * and 3-level LIST<string>, Snappy-compressed, in row groups.
 *
 * Memory is bounded by a row group, never by the file: rows are buffered until
 * `rowGroupRows` rows or about `rowGroupBytes` of text, then encoded, written and
 * dropped; the byte buffer is flushed to disk after each group.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetReadObjects,
  type FileMetaData,
  type SchemaElement,
} from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { TableColumn, TableRow } from '../../shared/dataset/index';
import type { FileDigest } from './output';
import { PermanentError } from '../../shared/errors';

/** A value that does not fit its column, or a file that cannot be written or read. */
export class ParquetFileError extends PermanentError {}

export const DEFAULT_ROW_GROUP_ROWS = 10_000;
export const DEFAULT_ROW_GROUP_BYTES = 32 << 20;

const STRING = {
  type: 'BYTE_ARRAY',
  converted_type: 'UTF8',
  logical_type: { type: 'STRING' },
} as const;

/** The Parquet schema (flattened, root first) of a table's columns. */
export function parquetSchemaOf(columns: readonly TableColumn[]): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }];
  for (const c of columns) {
    const repetition_type = c.nullable ? 'OPTIONAL' : 'REQUIRED';
    switch (c.type) {
      case 'string':
        schema.push({ name: c.name, ...STRING, repetition_type });
        break;
      case 'int32':
        schema.push({ name: c.name, type: 'INT32', repetition_type });
        break;
      case 'double':
        schema.push({ name: c.name, type: 'DOUBLE', repetition_type });
        break;
      case 'boolean':
        schema.push({ name: c.name, type: 'BOOLEAN', repetition_type });
        break;
      case 'string_list':
        schema.push(
          {
            name: c.name,
            repetition_type,
            num_children: 1,
            converted_type: 'LIST',
            logical_type: { type: 'LIST' },
          },
          { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
          { name: 'element', ...STRING, repetition_type: 'REQUIRED' },
        );
        break;
    }
  }
  return schema;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Why `v` does not fit column `c`, or null when it does. */
function misfit(c: TableColumn, v: unknown): string | null {
  if (v === null || v === undefined) return c.nullable ? null : 'is missing';
  switch (c.type) {
    case 'string':
      return typeof v === 'string' ? null : 'is not a string';
    case 'int32':
      return typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX
        ? null
        : 'is not a 32-bit integer';
    case 'double':
      return typeof v === 'number' && Number.isFinite(v) ? null : 'is not a finite number';
    case 'boolean':
      return typeof v === 'boolean' ? null : 'is not a boolean';
    case 'string_list':
      return Array.isArray(v) && v.every((x) => typeof x === 'string')
        ? null
        : 'is not a list of strings';
  }
  return 'has an unknown column type';
}

/** A ByteWriter that writes its bytes to a file descriptor, hashing them, whenever it is flushed. */
class FileByteWriter extends ByteWriter {
  readonly hash = createHash('sha256');
  constructor(private readonly fd: number) {
    super(1 << 20);
  }
  override ensure(size: number): void {
    if (this.index > 1 << 20) this.flush();
    super.ensure(size);
  }
  flush(): void {
    const bytes = new Uint8Array(this.buffer, 0, this.index);
    this.hash.update(bytes);
    for (let off = 0; off < bytes.length;) off += writeSync(this.fd, bytes, off);
    this.index = 0;
  }
  override finish(): void {
    this.flush();
  }
}

export interface ParquetDigest extends FileDigest {
  rowGroups: number;
}

/**
 * One Parquet file written row by row: `write` rows, then `close` (written to
 * `path.tmp`, renamed into place) or `abort` (the temp file removed).
 */
export class ParquetTableWriter {
  private readonly fd: number;
  private readonly out: FileByteWriter;
  private readonly pw: ParquetWriter;
  private buffered: TableRow[] = [];
  private bufferedBytes = 0;
  private rows = 0;
  private groups = 0;
  private done = false;

  constructor(
    private readonly path: string,
    private readonly columns: readonly TableColumn[],
    private readonly opts: { rowGroupRows?: number; rowGroupBytes?: number } = {},
  ) {
    try {
      this.fd = openSync(`${path}.tmp`, 'w');
    } catch (cause) {
      throw new ParquetFileError(`cannot write ${path}: ${(cause as Error).message}`, { cause });
    }
    this.out = new FileByteWriter(this.fd);
    this.pw = new ParquetWriter({
      writer: this.out,
      schema: parquetSchemaOf(columns),
      createdBy: 'sft-balancer (hyparquet-writer)',
    });
  }

  /** Adds a row; a value that does not fit its column is a ParquetFileError naming both. */
  write(row: TableRow): void {
    let bytes = 0;
    for (const c of this.columns) {
      const v = row[c.name];
      const why = misfit(c, v);
      if (why)
        throw new ParquetFileError(`${this.path}: row ${this.rows + 1}: column "${c.name}" ${why}`);
      if (typeof v === 'string') bytes += v.length;
      else if (Array.isArray(v)) for (const s of v) bytes += s.length + 4;
      else bytes += 8;
    }
    this.buffered.push(row);
    this.bufferedBytes += bytes;
    this.rows++;
    if (
      this.buffered.length >= (this.opts.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS) ||
      this.bufferedBytes >= (this.opts.rowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES)
    )
      this.flushGroup();
  }

  private flushGroup(): void {
    const rows = this.buffered;
    if (rows.length === 0) return;
    this.buffered = [];
    this.bufferedBytes = 0;
    const columnData = this.columns.map((c) => {
      const values = rows.map((r) => r[c.name] ?? null);
      const data =
        c.type === 'int32' && !c.nullable
          ? Int32Array.from(values as number[])
          : c.type === 'double' && !c.nullable
            ? Float64Array.from(values as number[])
            : values;
      return { name: c.name, data, ...(c.freeText ? { statistics: false } : {}) };
    });
    // One call, one row group: rowGroupSize is at least the rows given.
    void this.pw.write({ columnData, rowGroupSize: rows.length });
    this.groups++;
  }

  /** Finishes the file and renames it into place. */
  close(): ParquetDigest {
    if (this.done) throw new ParquetFileError(`${this.path}: already closed`);
    try {
      this.flushGroup();
      void this.pw.finish();
      closeSync(this.fd);
      this.done = true;
      renameSync(`${this.path}.tmp`, this.path);
    } catch (cause) {
      this.abort();
      throw cause instanceof ParquetFileError
        ? cause
        : new ParquetFileError(`cannot write ${this.path}: ${(cause as Error).message}`, { cause });
    }
    return {
      sha256: this.out.hash.digest('hex'),
      lines: this.rows,
      bytes: this.out.offset,
      rowGroups: this.groups,
    };
  }

  /** Drops the file being written; nothing is left behind. */
  abort(): void {
    if (!this.done) {
      this.done = true;
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    rmSync(`${this.path}.tmp`, { force: true });
  }
}

/** A Parquet file's row count, row groups and schema; a truncated or foreign file is a ParquetFileError. */
export async function parquetInfo(
  path: string,
): Promise<{ rows: number; rowGroups: number[]; metadata: FileMetaData }> {
  try {
    const file = await asyncBufferFromFile(path);
    const metadata = await parquetMetadataAsync(file);
    return {
      rows: Number(metadata.num_rows),
      rowGroups: metadata.row_groups.map((g) => Number(g.num_rows)),
      metadata,
    };
  } catch (cause) {
    throw new ParquetFileError(
      `${path}: not a readable Parquet file: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * Reads a Parquet file one row group at a time (memory bounded by a row group), as
 * plain objects; `columns` picks a subset.
 */
export async function* readParquetRowGroups(
  path: string,
  opts: { columns?: string[] } = {},
): AsyncGenerator<Record<string, unknown>[]> {
  const { rowGroups, metadata } = await parquetInfo(path);
  const file = await asyncBufferFromFile(path);
  let start = 0;
  for (const n of rowGroups) {
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({
        file,
        metadata,
        rowStart: start,
        rowEnd: start + n,
        ...(opts.columns ? { columns: opts.columns } : {}),
      });
    } catch (cause) {
      throw new ParquetFileError(
        `${path}: rows ${start + 1}-${start + n}: ${(cause as Error).message}`,
        { cause },
      );
    }
    start += n;
    yield rows;
  }
}
