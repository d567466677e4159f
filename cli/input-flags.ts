/**
 * Input flags shared by `balance` and `run`: the format, the column mapping, the CSV
 * array separator; and the step that turns a CSV/Parquet file or a folder of parts
 * into the one JSONL file the jobs read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkColumnMap, type ColumnMap, type RowShape } from '../shared/contracts/rows';
import {
  INPUT_FORMATS,
  convertToJsonl,
  isPlainJsonl,
  type InputFormat,
  type InputReadOptions,
} from '../adapters/files/input-formats';
import { UsageError } from './args';

export const INPUT_OPTIONS = {
  'input-format': { type: 'string' },
  columns: { type: 'string' },
  'label-field': { type: 'string' },
  'csv-array-sep': { type: 'string' },
} as const;

export const INPUT_HELP = `Input options:
  --input-format F          jsonl, csv or parquet (default: by extension: .jsonl/.json/.csv/.parquet,
                            .gz for jsonl/csv); --input may be a folder of parts, read in name order
  --columns MAP             field=column pairs, e.g. userMessage=prompt,conversationId=session_id
                            (setting SFT_COLUMNS; the flag wins)
  --label-field COLUMN      the column holding the 0/1 label, e.g. reasoning_label (= --columns label=COLUMN)
  --csv-array-sep SEP       CSV cells of tools/history not written as JSON arrays are split on SEP`;

/** "userMessage=prompt,conversationId=session_id" as a map; a malformed pair is a usage error. */
export function parseColumns(text: string, origin: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim().length === 0) continue;
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1)
      throw new UsageError(`${origin}: "${pair}" is not field=column`);
    map[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return map;
}

/** The input settings from the flags over the environment (SFT_COLUMNS), validated. */
export function inputSettingsFromFlags(
  v: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): InputReadOptions & { columns?: ColumnMap } {
  const out: InputReadOptions & { columns?: ColumnMap } = {};
  const format = v['input-format'];
  if (typeof format === 'string') {
    if (!(INPUT_FORMATS as readonly string[]).includes(format))
      throw new UsageError(
        `--input-format must be one of ${INPUT_FORMATS.join(', ')}, got "${format}"`,
      );
    out.format = format as InputFormat;
  }
  let columns: Record<string, string> = {};
  if (env.SFT_COLUMNS) columns = parseColumns(env.SFT_COLUMNS, 'SFT_COLUMNS');
  if (typeof v.columns === 'string') columns = parseColumns(v.columns, '--columns');
  if (typeof v['label-field'] === 'string') {
    if (v['label-field'].length === 0) throw new UsageError('--label-field needs a column name');
    columns.label = v['label-field'];
  }
  const problem = checkColumnMap(columns);
  if (problem) throw new UsageError(`--columns: ${problem}`);
  if (Object.keys(columns).length > 0) out.columns = columns;
  if (typeof v['csv-array-sep'] === 'string') {
    if (v['csv-array-sep'].length === 0) throw new UsageError('--csv-array-sep needs a separator');
    out.csvArraySep = v['csv-array-sep'];
  }
  return out;
}

/**
 * Runs `fn` on a JSONL copy of the input: the file itself when it is one JSONL file,
 * else the CSV/Parquet rows or the folder's parts written to one temporary JSONL file
 * (removed afterwards).
 */
export async function withJsonlInput<T>(
  input: string,
  opts: InputReadOptions,
  shape: RowShape,
  fn: (jsonl: string) => Promise<T>,
): Promise<T> {
  if (await isPlainJsonl(input, opts.format)) return fn(input);
  const dir = await mkdtemp(join(tmpdir(), 'sft-input-'));
  try {
    const jsonl = join(dir, 'input.jsonl');
    await convertToJsonl(input, jsonl, { ...opts, shape });
    return await fn(jsonl);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
