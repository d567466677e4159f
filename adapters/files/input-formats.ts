/**
 * Input formats: JSONL, CSV (RFC 4180) and Parquet, one file or a folder of export
 * parts. CSV and Parquet rows are turned into the same row objects a JSONL line
 * parses to, at this edge, and written as JSONL: balancing, the runner's upload and
 * the builds read JSONL only, so the same rows give the same bytes whatever their
 * format.
 *
 * CSV is read by the small streaming parser below rather than a library: it must
 * report a ragged record or an unterminated quote as a quarantined row and carry on
 * (csv-parse stops at an unterminated quote), it runs on every row of a million-row
 * export, and it keeps the project free of another dependency. It reads RFC 4180:
 * a header row, `,` separators, fields quoted with `"` holding commas, CR/LF and
 * doubled quotes, CRLF or LF record ends, a UTF-8 BOM.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { AsyncBuffer, FileMetaData } from 'hyparquet';
import {
  inputErrorLine,
  MAX_VALUE_DEPTH,
  type ColumnMap,
  type RowShape,
} from '../../shared/contracts/rows';
import { InputFileError } from './lines';

export const INPUT_FORMATS = ['jsonl', 'csv', 'parquet'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** How CSV cells and Parquet values become row fields. */
export interface InputReadOptions {
  /** Format of every part; by extension when absent. */
  format?: InputFormat | undefined;
  /** Contract field → column: CSV and Parquet rows come out under the field names. */
  columns?: ColumnMap | undefined;
  /** CSV: the separator of array cells (`tools`, `history`) that are not JSON text. */
  csvArraySep?: string | undefined;
  /** What a row must carry: a CSV header or Parquet schema without it is refused. */
  shape?: RowShape | undefined;
  /**
   * Rows keep the source's column names (cells still typed by the field they map to):
   * the Functions build, whose plan routes by the mapped id column and whose batch
   * applies the mapping.
   */
  keepColumnNames?: boolean | undefined;
}

/** A CSV record longer than this while a quote is open is taken as an unterminated quote. */
export const MAX_CSV_RECORD_CHARS = 1 << 20;

/** The format of a file by its extension (`.jsonl`, `.json`, `.csv`, `.parquet`, gzip for the text ones). */
export function formatOf(path: string): InputFormat | null {
  const name = path.toLowerCase().replace(/\.gz$/, '');
  if (name.endsWith('.jsonl') || name.endsWith('.json') || name.endsWith('.ndjson')) return 'jsonl';
  if (name.endsWith('.csv')) return 'csv';
  if (name.endsWith('.parquet') && !path.toLowerCase().endsWith('.gz')) return 'parquet';
  return null;
}

/**
 * The parts of an input: the file itself, or a folder's files in sorted name order
 * (names starting with `.` or `_`, such as `_SUCCESS`, are skipped), each with its format.
 */
export async function inputParts(
  path: string,
  format?: InputFormat,
): Promise<{ path: string; format: InputFormat }[]> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (cause) {
    throw new InputFileError(`input file not found: ${path}`, { cause });
  }
  const files = isDir
    ? (await readdir(path))
        .filter((n) => !n.startsWith('.') && !n.startsWith('_'))
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
        .map((n) => join(path, n))
    : [path];
  if (files.length === 0) throw new InputFileError(`input folder ${path} holds no files`);
  return files.map((f) => {
    const fmt = format ?? formatOf(f);
    if (!fmt)
      throw new InputFileError(
        `${f}: unknown input format (use .jsonl, .json, .csv, .parquet, .jsonl.gz, .csv.gz or --input-format)`,
      );
    if (fmt === 'parquet' && f.toLowerCase().endsWith('.gz'))
      throw new InputFileError(
        `${f}: Parquet is compressed inside; a gzipped Parquet file is not read`,
      );
    return { path: f, format: fmt };
  });
}

/** True when the input is one JSONL file the JSONL readers take as it is. */
export async function isPlainJsonl(path: string, format?: InputFormat): Promise<boolean> {
  const parts = await inputParts(path, format);
  return parts.length === 1 && parts[0]!.format === 'jsonl' && parts[0]!.path === path;
}

const NUMBER_FIELDS = new Set([
  'turnIndex',
  'turnCount',
  'numRequests',
  'turnDurationMs',
  'promptTokenDelta',
  'label',
]);
const ARRAY_FIELDS = new Set(['tools', 'history']);
const NUMERIC = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The contract field each column is read as: a mapped column, or a column named like a field. */
function fieldOfColumn(columns: ColumnMap | undefined): (column: string) => string {
  const inverse = new Map<string, string>();
  for (const [field, column] of Object.entries(columns ?? {})) inverse.set(column, field);
  return (c) => inverse.get(c) ?? c;
}

/** A CSV cell as the value of `field`: numbers for the number fields, arrays for tools/history. */
function csvValue(cell: string, field: string, arraySep: string | undefined): unknown {
  if (NUMBER_FIELDS.has(field)) return NUMERIC.test(cell) ? Number(cell) : cell;
  if (ARRAY_FIELDS.has(field)) {
    if (cell.startsWith('[')) {
      try {
        return JSON.parse(cell) as unknown;
      } catch {
        return cell;
      }
    }
    if (arraySep !== undefined) return cell.split(arraySep);
    return cell; // neither JSON nor a stated separator: wrong_type when checked
  }
  return cell;
}

/** Checks a header or schema against the shape and the mapping; the error names the column. */
function checkColumns(file: string, columns: readonly string[], opts: InputReadOptions): void {
  const seen = new Set<string>();
  for (const c of columns) {
    if (c.length === 0) throw new InputFileError(`${file}: the header has an empty column name`);
    if (seen.has(c)) throw new InputFileError(`${file}: column "${c}" appears twice in the header`);
    seen.add(c);
  }
  const list = columns.join(', ');
  for (const [field, column] of Object.entries(opts.columns ?? {})) {
    if (!seen.has(column) && !seen.has(field))
      throw new InputFileError(
        `${file}: the column mapping reads ${field} from column "${column}", which is not in the file (columns: ${list})`,
      );
  }
  const has = (f: string) => seen.has(f) || seen.has(opts.columns?.[f as keyof ColumnMap] ?? f);
  // A row known by id alone is a one-turn conversation: those three fields default.
  const perId = new Set(has('conversationId') ? [] : ['conversationId', 'turnIndex']);
  for (const f of opts.shape?.required ?? []) {
    if (!has(f) && !perId.has(f))
      throw new InputFileError(
        `${file}: no column for ${f}, which this configuration needs (columns: ${list}; map one with --columns ${f}=COLUMN)`,
      );
  }
  if (!has('sampleId') && !has('conversationId') && !seen.has('id'))
    throw new InputFileError(
      `${file}: no id column: give id, sampleId, or conversationId and turnIndex (columns: ${list})`,
    );
}

const errorRow = inputErrorLine;

/** A CSV record: its fields, whether each was quoted, and the file line it starts on. */
interface CsvRecord {
  fields: string[];
  quoted: boolean[];
  line: number;
}

/**
 * A streaming RFC 4180 parser: `push` text as it arrives, `end` at the end; each
 * complete record goes to `emit`, an unterminated quote to `bad`.
 */
export class CsvParser {
  private buf = '';
  private line = 1;
  private first = true;

  constructor(
    private readonly emit: (r: CsvRecord) => void,
    private readonly bad: (line: number, raw: string) => void,
  ) {}

  push(text: string): void {
    this.buf += text;
    if (this.first && this.buf.length > 0) {
      if (this.buf.charCodeAt(0) === 0xfeff) this.buf = this.buf.slice(1);
      this.first = false;
    }
    this.parse(false);
  }

  end(): void {
    this.parse(true);
  }

  private parse(final: boolean): void {
    const s = this.buf;
    const n = s.length;
    let pos = 0;
    for (;;) {
      if (pos >= n) break;
      const start = pos;
      const fields: string[] = [];
      const quoted: boolean[] = [];
      let newlines = 0;
      let complete = false;
      let unterminated = false;
      for (;;) {
        if (s.charCodeAt(pos) === 34) {
          // quoted field
          let j = pos + 1;
          let v = '';
          let closed = -1;
          for (;;) {
            const k = s.indexOf('"', j);
            if (k < 0) break;
            v += s.slice(j, k);
            if (s.charCodeAt(k + 1) === 34) {
              v += '"';
              j = k + 2;
              continue;
            }
            if (k + 1 >= n && !final) break; // the next chunk may start with a quote
            closed = k;
            break;
          }
          if (closed < 0) {
            if (final || n - start > MAX_CSV_RECORD_CHARS) unterminated = true;
            break;
          }
          for (let i = v.indexOf('\n'); i >= 0; i = v.indexOf('\n', i + 1)) newlines++;
          // text between the closing quote and the delimiter is kept (lenient)
          let e = closed + 1;
          while (e < n) {
            const c = s.charCodeAt(e);
            if (c === 44 || c === 10 || c === 13) break;
            e++;
          }
          if (e >= n && !final) break;
          v += s.slice(closed + 1, e);
          fields.push(v);
          quoted.push(true);
          pos = e;
        } else {
          let e = pos;
          while (e < n) {
            const c = s.charCodeAt(e);
            if (c === 44 || c === 10 || c === 13) break;
            e++;
          }
          if (e >= n && !final) break;
          fields.push(s.slice(pos, e));
          quoted.push(false);
          pos = e;
        }
        const c = s.charCodeAt(pos);
        if (c === 44) {
          pos++;
          continue;
        }
        if (c === 13) {
          if (pos + 1 >= n && !final) break;
          pos += s.charCodeAt(pos + 1) === 10 ? 2 : 1;
        } else if (c === 10) pos++;
        complete = true;
        break;
      }
      if (unterminated) {
        const nl = s.indexOf('\n', start);
        const raw = s.slice(start, Math.min(nl < 0 ? n : nl, start + 500));
        this.bad(this.line, raw);
        if (final && (nl < 0 || n - start <= MAX_CSV_RECORD_CHARS)) {
          pos = n; // the quote runs to the end of the file: the rest is this record
          break;
        }
        pos = nl < 0 ? n : nl + 1; // resume after the record's first line
        this.line++;
        continue;
      }
      if (!complete) {
        pos = start;
        break;
      }
      const line = this.line;
      this.line += 1 + newlines;
      // a blank line is no record
      if (!(fields.length === 1 && fields[0] === '' && !quoted[0]))
        this.emit({ fields, quoted, line });
    }
    this.buf = s.slice(pos);
  }
}

/** Writes strings to a file with backpressure, in batches. */
class BatchWriter {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly out: WriteStream) {}
  async line(s: string): Promise<void> {
    this.parts.push(s, '\n');
    this.size += s.length + 1;
    if (this.size >= 1 << 20) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.size = 0;
    if (!this.out.write(chunk))
      await new Promise<void>((resolve) => this.out.once('drain', resolve));
  }
}

/**
 * The rows of one CSV part as JSONL lines, a batch per chunk of `text`: `file` names
 * the part in errors (a header without a needed column throws InputFileError), `label`
 * in the quarantine details of its bad records (`label line N: ...`).
 */
export async function* csvLines(
  file: string,
  text: AsyncIterable<string>,
  opts: InputReadOptions,
  label = basename(file),
): AsyncGenerator<string[]> {
  const fieldOf = fieldOfColumn(opts.columns);
  let header: string[] | null = null;
  let targets: string[] = [];
  let keys: string[] = [];
  const pending: string[] = [];
  const parser = new CsvParser(
    (r) => {
      if (header === null) {
        header = r.fields;
        checkColumns(file, header, opts);
        targets = header.map(fieldOf);
        keys = opts.keepColumnNames ? header : targets;
        return;
      }
      if (r.fields.length !== header.length) {
        pending.push(
          errorRow(
            'csv_ragged_row',
            `${label} line ${r.line}: ${r.fields.length} fields, the header has ${header.length}`,
            r.fields.join(',').slice(0, 500),
          ),
        );
        return;
      }
      const obj: Record<string, unknown> = {};
      for (let i = 0; i < header.length; i++) {
        const cell = r.fields[i]!;
        if (cell.length === 0 && !r.quoted[i]) continue; // an empty unquoted cell is absent
        obj[keys[i]!] = csvValue(cell, targets[i]!, opts.csvArraySep);
      }
      pending.push(JSON.stringify(obj));
    },
    (line, raw) => {
      pending.push(
        errorRow(
          'csv_unterminated_quote',
          `${label} line ${line}: a quoted field is not closed (unterminated quote)`,
          raw,
        ),
      );
    },
  );
  try {
    for await (const chunk of text) {
      parser.push(chunk);
      if (pending.length > 0) yield pending.splice(0);
    }
    parser.end();
  } catch (cause) {
    if (cause instanceof InputFileError) throw cause;
    throw new InputFileError(`${file}: ${(cause as Error).message}`, { cause });
  }
  if (pending.length > 0) yield pending.splice(0);
  if (header === null) throw new InputFileError(`${file}: empty CSV file (no header row)`);
}

/** A local file's text, gunzipped when it ends in `.gz`. */
function fileText(file: string): AsyncIterable<string> {
  const stream = createReadStream(file);
  const text = file.toLowerCase().endsWith('.gz') ? stream.pipe(createGunzip()) : stream;
  text.setEncoding('utf8');
  return text as AsyncIterable<string>;
}

/** A Parquet value as JSON: int64 as a number, a date as ISO 8601, bytes as UTF-8. */
function plain(v: unknown, field: string, depth = 0): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (typeof v === 'string' && ARRAY_FIELDS.has(field) && v.startsWith('[')) {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }
  if (depth > MAX_VALUE_DEPTH) return v;
  if (Array.isArray(v)) return v.map((x) => plain(x, '', depth + 1));
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = plain(x, '', depth + 1);
    return o;
  }
  return v;
}

/** The top-level column names of a Parquet schema (children of a list/struct follow their parent). */
function topColumns(meta: FileMetaData): string[] {
  const top: string[] = [];
  let skip = 0;
  for (const e of meta.schema.slice(1)) {
    if (skip > 0) {
      skip--;
      skip += e.num_children ?? 0;
      continue;
    }
    top.push(e.name);
    skip = e.num_children ?? 0;
  }
  return top;
}

/** The Parquet reader, loaded on the first Parquet part: reading JSONL or CSV never loads it. */
const hyparquet = () => import('hyparquet');

/** The footer of a Parquet part; InputFileError naming `file` when it cannot be read. */
export async function parquetMeta(file: string, buffer: AsyncBuffer): Promise<FileMetaData> {
  const { parquetMetadataAsync } = await hyparquet();
  try {
    return await parquetMetadataAsync(buffer);
  } catch (cause) {
    throw new InputFileError(
      `${file}: not a readable Parquet file (truncated or not Parquet): ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * The rows of one Parquet part as JSONL lines, a row group at a time, read through
 * `buffer` (a file, or ranged reads of a blob): only the footer and the row group at
 * hand are held. A row group that cannot be decoded is one parquet_unreadable line per row.
 */
export async function* parquetLines(
  file: string,
  buffer: AsyncBuffer,
  opts: InputReadOptions,
  label = basename(file),
): AsyncGenerator<string[]> {
  const meta = await parquetMeta(file, buffer);
  const { parquetReadObjects } = await hyparquet();
  const top = topColumns(meta);
  checkColumns(file, top, opts);
  const fieldOf = fieldOfColumn(opts.columns);
  const targets = new Map(top.map((c) => [c, fieldOf(c)]));
  let start = 0;
  for (const g of meta.row_groups) {
    const n = Number(g.num_rows);
    let rows: Record<string, unknown>[] | null = null;
    let why = '';
    try {
      rows = await parquetReadObjects({
        file: buffer,
        metadata: meta,
        rowStart: start,
        rowEnd: start + n,
      });
    } catch (cause) {
      // A blob changed under a ranged read: no row group of it can be trusted.
      if ((cause as Error).name === 'SourceChangedError') throw cause;
      why = (cause as Error).message;
    }
    const out: string[] = [];
    if (rows === null) {
      const detail = `${label} rows ${start + 1}-${start + n}: the row group cannot be decoded: ${why}`;
      for (let i = 0; i < n; i++) out.push(errorRow('parquet_unreadable', detail, ''));
    } else {
      for (const r of rows) {
        const obj: Record<string, unknown> = {};
        for (const k of top) {
          const v = r[k];
          if (v === null || v === undefined) continue; // a null cell is absent
          const f = targets.get(k) ?? k;
          obj[opts.keepColumnNames ? k : f] = plain(v, f);
        }
        out.push(JSON.stringify(obj));
      }
    }
    yield out;
    start += n;
  }
}

/** The lines of a JSONL part, a batch per chunk of `text` (blank lines kept: they number lines). */
export async function* jsonlLines(text: AsyncIterable<string>): AsyncGenerator<string[]> {
  let rest = '';
  for await (const chunk of text) {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    if (parts.length > 0) yield parts.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }
  if (rest.length > 0) yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}

/** The rows of `input` (a file or a folder of parts), as JSONL lines in batches, in order. */
export async function* inputLines(
  input: string,
  opts: InputReadOptions = {},
): AsyncGenerator<string[]> {
  for (const p of await inputParts(input, opts.format)) {
    if (p.format === 'csv') yield* csvLines(p.path, fileText(p.path), opts);
    else if (p.format === 'parquet') {
      const { asyncBufferFromFile } = await hyparquet();
      let buffer: AsyncBuffer;
      try {
        buffer = await asyncBufferFromFile(p.path);
      } catch (cause) {
        throw new InputFileError(`${p.path}: not readable: ${(cause as Error).message}`, { cause });
      }
      yield* parquetLines(p.path, buffer, opts);
    } else yield* jsonlLines(fileText(p.path));
  }
}

/**
 * Writes the parts of `input` (a file or a folder) to `out` as one JSONL file, in
 * order: CSV records and Parquet rows as row objects, JSONL lines as they are. A
 * record that cannot be read becomes a row the checks quarantine with its reason.
 */
export async function convertToJsonl(
  input: string,
  out: string,
  opts: InputReadOptions = {},
): Promise<{ rows: number; parts: number }> {
  const parts = await inputParts(input, opts.format);
  const stream = createWriteStream(out);
  const w = new BatchWriter(stream);
  let rows = 0;
  try {
    for await (const batch of inputLines(input, opts))
      for (const l of batch) {
        await w.line(l);
        rows++;
      }
    await w.flush();
  } finally {
    await new Promise<void>((resolve, reject) =>
      stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
  }
  return { rows, parts: parts.length };
}
