/**
 * Writes a dataset's other formats beside its JSONL record. Reads each split file
 * (train.jsonl, validation.jsonl, test.jsonl: whichever exist) once, line by line, and
 * feeds every chosen format at the same time; memory holds one line per format plus a
 * Parquet row group, never a split.
 *
 * Layout (relative to the dataset folder):
 *   chat/{split}.jsonl                      {"messages": [system, user, assistant]}
 *   chat/excluded.jsonl                     ids left out of chat, with the reason
 *   classifier/{split}.jsonl                {"text", "label"}
 *   data/{split}-00000-of-00001.parquet     the table (shared/dataset/table.ts)
 *   README.md                               the dataset card
 *
 * Each format is staged in a private folder and moved into place only when all its
 * splits are complete: a format that fails (a value Parquet cannot hold, a folder that
 * cannot be created) leaves no file behind, the other formats and the card are still
 * written, and the call ends with a DatasetFormatsError naming the format.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatasetLineSchema, type DatasetLine } from '../../shared/contracts/rows';
import {
  ChatOptionsSchema,
  ChatTally,
  DEFAULT_TURN_SEPARATOR,
  OPENAI_MIN_EXAMPLES,
  chatOutcome,
  datasetCard,
  defaultSystemPrompt,
  tableColumns,
  tableRowOf,
  toClassifierExample,
  type CardConfig,
  type ChatOptions,
  type ChatOptionsInput,
  type ChatSplitReport,
  type OutputFormat,
  type TableColumn,
  type TokenLength,
} from '../../shared/dataset/index';
import { InputFileError, readFileLines } from './lines';
import { JsonlWriter, type FileDigest } from './output';
import type { ParquetTableWriter } from './parquet';
import { PermanentError } from '../../shared/errors';

export const SPLITS = ['train', 'validation', 'test'] as const;
export const CARD_FILE = 'README.md';
export const chatPath = (split: string) => `chat/${split}.jsonl`;
export const CHAT_EXCLUDED = 'chat/excluded.jsonl';
export const classifierPath = (split: string) => `classifier/${split}.jsonl`;
export const parquetPath = (split: string) => `data/${split}-00000-of-00001.parquet`;

export interface DatasetFormatsOptions {
  /** From parseFormats; `jsonl` is the record itself and is not rewritten. */
  formats: readonly OutputFormat[];
  chat?: ChatOptionsInput;
  /** Joins history and message in the classifier's and the table's `text`. */
  separator?: string;
  /** The card's license id (default `other`). */
  license?: string;
  prettyName?: string;
  /** The manifest; by default DIR/manifest.json when it exists. */
  manifest?: unknown;
  /** Stratum columns of the table; by default the manifest's config.stratify, else the first line's strata. */
  strata?: readonly string[];
  rowGroupRows?: number;
  rowGroupBytes?: number;
  /** Token length of a text; by default gpt-tokenizer's o200k_base (the gpt-4o family). */
  tokenLength?: TokenLength;
  /** Write README.md (default true). */
  card?: boolean;
}

export interface DatasetFormatsResult {
  splits: { name: string; rows: number; byLabel: Record<string, number> }[];
  /** Every file written, by path relative to the dataset folder. */
  files: Record<string, FileDigest>;
  chat: {
    bySplit: Record<string, ChatSplitReport>;
    excluded: number;
    /** E.g. fewer training examples than OpenAI accepts. */
    warnings: string[];
  } | null;
  failed: { format: string; message: string }[];
}

/** One or more formats (or the card) could not be written; the others were. */
export class DatasetFormatsError extends PermanentError {
  constructor(
    message: string,
    readonly result: DatasetFormatsResult,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A format being written: files are staged under `stage` and moved into place by `commit`. */
interface Sink {
  readonly format: string;
  startSplit(split: string): void;
  write(line: DatasetLine, split: string): void;
  endSplit(split: string): void;
  /** Ends the format; returns its staged files (relative paths) and their digests. */
  finish(): Promise<Record<string, FileDigest>>;
  abort(): void;
}

/** The o200k_base token length; special-token text in a message counts as plain text, as the APIs treat it. */
export async function o200kTokenLength(): Promise<TokenLength> {
  const { countTokens } = await import('gpt-tokenizer/encoding/o200k_base');
  const options = { disallowedSpecial: new Set<string>() };
  return (text) => countTokens(text, options);
}

function jsonlSink(
  format: string,
  stage: string,
  pathOf: (split: string) => string,
  toValue: (line: DatasetLine, split: string) => unknown,
  extra?: { finish: () => Promise<Record<string, FileDigest>>; abort: () => void },
): Sink {
  let writer: JsonlWriter | null = null;
  const files: Record<string, FileDigest> = {};
  const pending: Promise<FileDigest>[] = [];
  const names: string[] = [];
  return {
    format,
    startSplit(split) {
      const rel = pathOf(split);
      mkdirSync(dirname(join(stage, rel)), { recursive: true });
      writer = new JsonlWriter(join(stage, rel));
      names.push(rel);
    },
    write(line, split) {
      const v = toValue(line, split);
      if (v !== undefined) writer!.write(v);
    },
    endSplit() {
      pending.push(writer!.close());
      writer = null;
    },
    async finish() {
      const digests = await Promise.all(pending);
      names.forEach((n, i) => (files[n] = digests[i]!));
      return { ...files, ...(extra ? await extra.finish() : {}) };
    },
    abort() {
      // Closes the open file (its descriptor); the staged folder is removed by the caller.
      if (writer) void writer.close();
      writer = null;
      extra?.abort();
    },
  };
}

function parquetSink(
  Writer: typeof ParquetTableWriter,
  stage: string,
  strataOf: (first: DatasetLine | null) => readonly string[],
  separator: string,
  opts: { rowGroupRows?: number; rowGroupBytes?: number },
  table: { columns: TableColumn[] | null },
): Sink {
  let writer: ParquetTableWriter | null = null;
  let strata: readonly string[] | null = null;
  let currentSplit = '';
  const files: Record<string, FileDigest> = {};
  const open = (first: DatasetLine | null) => {
    strata ??= strataOf(first);
    const rel = parquetPath(currentSplit);
    mkdirSync(dirname(join(stage, rel)), { recursive: true });
    table.columns = tableColumns(strata);
    writer = new Writer(join(stage, rel), table.columns, opts);
  };
  return {
    format: 'parquet',
    startSplit(split) {
      currentSplit = split;
    },
    write(line) {
      if (!writer) open(line);
      writer!.write(tableRowOf(line, strata!, separator));
    },
    endSplit() {
      if (!writer) open(null);
      const { sha256, lines, bytes } = writer!.close();
      files[parquetPath(currentSplit)] = { sha256, lines, bytes };
      writer = null;
    },
    finish: () => Promise.resolve(files),
    abort() {
      writer?.abort();
      writer = null;
    },
  };
}

const stratifyOf = (manifest: unknown): string[] | undefined => {
  const s = (manifest as { config?: { stratify?: unknown } } | undefined)?.config?.stratify;
  return Array.isArray(s) && s.every((x) => typeof x === 'string') ? s : undefined;
};

/** DIR/manifest.json parsed, {} when there is none; bad JSON is an InputFileError naming it. */
function readManifest(path: string): unknown {
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new InputFileError(`${path}: not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/** Moves a format's staged files into the dataset folder; on failure removes those already moved. */
function commit(dir: string, stage: string, rels: string[]): void {
  const moved: string[] = [];
  try {
    for (const rel of rels) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      renameSync(join(stage, rel), join(dir, rel));
      moved.push(rel);
    }
  } catch (err) {
    for (const rel of moved) rmSync(join(dir, rel), { force: true });
    throw err;
  }
}

/**
 * Writes the chosen formats and the card beside DIR's split files. Throws an
 * InputFileError when DIR has no train.jsonl or a split line is not a dataset line,
 * and a DatasetFormatsError (after writing everything else) when a format fails.
 */
export async function writeDatasetFormats(
  dir: string,
  opts: DatasetFormatsOptions,
): Promise<DatasetFormatsResult> {
  if (!existsSync(join(dir, 'train.jsonl')))
    throw new InputFileError(`no dataset in ${dir}: train.jsonl not found`);
  const splits = SPLITS.filter((s) => existsSync(join(dir, `${s}.jsonl`)));
  const manifestFile = join(dir, 'manifest.json');
  const manifest = opts.manifest ?? readManifest(manifestFile);
  const separator = opts.separator ?? DEFAULT_TURN_SEPARATOR;
  const chatOpts = ChatOptionsSchema.parse(opts.chat ?? {});
  const wants = new Set(opts.formats);
  const tokenLength = wants.has('chat')
    ? (opts.tokenLength ?? (await o200kTokenLength()))
    : () => 0;

  const stage = join(dir, `.formats-${randomBytes(6).toString('hex')}`);
  const result: DatasetFormatsResult = { splits: [], files: {}, chat: null, failed: [] };
  const sinks: Sink[] = [];
  const tallies: Record<string, ChatTally> = {};
  const table: { columns: TableColumn[] | null } = { columns: null };
  for (const split of splits) tallies[split] = new ChatTally();
  try {
    if (wants.has('chat'))
      sinks.push(
        chatSink(stage, chatOpts, tokenLength, tallies, (excluded) => {
          result.chat = { bySplit: {}, excluded, warnings: [] };
        }),
      );
    if (wants.has('classifier'))
      sinks.push(
        jsonlSink('classifier', stage, classifierPath, (line) =>
          toClassifierExample(line, separator),
        ),
      );
    if (wants.has('parquet')) {
      const strataOf = (first: DatasetLine | null) =>
        opts.strata ?? stratifyOf(manifest) ?? (first ? Object.keys(first.strata) : []);
      // The Parquet writer (hyparquet-writer) loads only when a build asks for Parquet.
      const { ParquetTableWriter: Writer } = await import('./parquet.js');
      sinks.push(
        parquetSink(
          Writer,
          stage,
          strataOf,
          separator,
          {
            ...(opts.rowGroupRows ? { rowGroupRows: opts.rowGroupRows } : {}),
            ...(opts.rowGroupBytes ? { rowGroupBytes: opts.rowGroupBytes } : {}),
          },
          table,
        ),
      );
    }

    const live = new Set(sinks);
    const fail = (sink: Sink, err: unknown) => {
      live.delete(sink);
      try {
        sink.abort();
      } catch {
        // the staged folder goes anyway
      }
      rmSync(join(stage, sink.format === 'parquet' ? 'data' : sink.format), {
        recursive: true,
        force: true,
      });
      result.failed.push({
        format: sink.format,
        message: err instanceof Error ? err.message : String(err),
      });
    };
    const each = (f: (s: Sink) => void) => {
      for (const s of [...live]) {
        try {
          f(s);
        } catch (err) {
          fail(s, err);
        }
      }
    };

    let first: string | null = null;
    let last: string | null = null;
    for (const split of splits) {
      const file = join(dir, `${split}.jsonl`);
      const byLabel: Record<string, number> = { '0': 0, '1': 0 };
      let rows = 0;
      each((s) => s.startSplit(split));
      await readFileLines(file, (text, lineNo) => {
        if (text.length === 0) return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          throw new InputFileError(`${file}:${lineNo}: not valid JSON`);
        }
        const r = DatasetLineSchema.safeParse(parsed);
        if (!r.success) {
          const issue = r.error.issues[0];
          throw new InputFileError(
            `${file}:${lineNo}: not a dataset line: ${issue ? `${issue.path.join('.')}: ${issue.message}` : ''}`,
          );
        }
        const line = r.data;
        rows++;
        byLabel[String(line.label)] = (byLabel[String(line.label)] ?? 0) + 1;
        const ts = line.timestamp;
        if (ts !== undefined && (first === null || ts < first)) first = ts;
        if (ts !== undefined && (last === null || ts > last)) last = ts;
        each((s) => s.write(line, split));
      });
      each((s) => s.endSplit(split));
      result.splits.push({ name: split, rows, byLabel });
    }

    for (const sink of [...live]) {
      let staged: Record<string, FileDigest>;
      try {
        staged = await sink.finish();
        commit(dir, stage, Object.keys(staged));
      } catch (err) {
        fail(sink, err);
        continue;
      }
      Object.assign(result.files, staged);
    }
    if (result.chat && live.has(sinks.find((s) => s.format === 'chat')!)) {
      for (const [split, t] of Object.entries(tallies)) result.chat.bySplit[split] = t.report();
      const written = result.chat.bySplit.train?.written ?? 0;
      if (written < OPENAI_MIN_EXAMPLES)
        result.chat.warnings.push(
          `chat/train.jsonl has ${written} examples; OpenAI fine-tuning needs at least ${OPENAI_MIN_EXAMPLES}`,
        );
    } else result.chat = null;

    if (opts.card !== false) {
      const cardOpts = {
        ...opts,
        manifest,
        splits,
        separator,
        chatOpts,
        tableColumns: table.columns,
        timestamps: first !== null && last !== null ? { first, last } : null,
      };
      writeCard(dir, result, cardOpts);
    }
  } catch (err) {
    for (const s of sinks) {
      try {
        s.abort();
      } catch {
        // removed with the stage below
      }
    }
    throw err;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  if (result.failed.length > 0)
    throw new DatasetFormatsError(
      result.failed.map((f) => `format ${f.format} not written: ${f.message}`).join('; '),
      result,
    );
  return result;
}

/** The chat sink: examples that pass the checks and the token limit, and chat/excluded.jsonl. */
function chatSink(
  stage: string,
  chatOpts: ChatOptions,
  tokenLength: TokenLength,
  tallies: Record<string, ChatTally>,
  onFinish: (excluded: number) => void,
): Sink {
  mkdirSync(join(stage, 'chat'), { recursive: true });
  const excluded = new JsonlWriter(join(stage, CHAT_EXCLUDED));
  let excludedCount = 0;
  return jsonlSink(
    'chat',
    stage,
    chatPath,
    (line, split) => {
      const o = chatOutcome(line, chatOpts, tokenLength);
      tallies[split]!.add(o);
      if (o.kind === 'ok') return o.example;
      excludedCount++;
      excluded.write({
        split,
        id: line.id,
        reason: o.kind,
        ...(o.kind === 'over_token_limit'
          ? { tokens: o.tokens, limit: chatOpts.maxTokens }
          : { errors: o.errors }),
      });
      return undefined;
    },
    {
      finish: async () => {
        onFinish(excludedCount);
        return { [CHAT_EXCLUDED]: await excluded.close() };
      },
      abort: () => void excluded.close(),
    },
  );
}

/** Writes README.md (tmp, then rename) into `result.files`; a failure is recorded in `result.failed`. */
function writeCard(
  dir: string,
  result: DatasetFormatsResult,
  o: DatasetFormatsOptions & {
    manifest: unknown;
    splits: readonly string[];
    separator: string;
    chatOpts: ChatOptions;
    tableColumns: TableColumn[] | null;
    timestamps: { first: string; last: string } | null;
  },
): void {
  const { chatOpts } = o;
  const systemPrompt =
    chatOpts.systemPrompt ?? defaultSystemPrompt(chatOpts.labelWords, chatOpts.separator);
  try {
    const text = datasetCard({
      manifest: o.manifest,
      configs: cardConfigs(result, o.splits),
      splits: result.splits,
      license: o.license ?? 'other',
      ...(o.prettyName ? { prettyName: o.prettyName } : {}),
      timestamps: o.timestamps,
      chat: result.chat
        ? {
            systemPrompt,
            labelWords: chatOpts.labelWords,
            maxTokens: chatOpts.maxTokens,
            bySplit: result.chat.bySplit,
          }
        : null,
      separator: o.separator,
      settings: {
        systemPrompt,
        labelWords: chatOpts.labelWords,
        chatMaxTokens: chatOpts.maxTokens,
      },
      tableColumns: o.tableColumns,
    });
    const path = join(dir, CARD_FILE);
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
    result.files[CARD_FILE] = {
      sha256: createHash('sha256').update(text).digest('hex'),
      lines: text.split('\n').length - 1,
      bytes: Buffer.byteLength(text),
    };
  } catch (err) {
    rmSync(join(dir, `${CARD_FILE}.tmp`), { force: true });
    result.failed.push({
      format: 'card',
      message: err instanceof Error ? err.message : String(err),
    });
  }
}

/** The card's configs, from what was written: Parquet first (the default), then the record, chat, classifier. */
function cardConfigs(result: DatasetFormatsResult, splits: readonly string[]): CardConfig[] {
  const configs: CardConfig[] = [];
  const has = (rel: string) => rel in result.files;
  const add = (name: string, description: string, pathOf: (s: string) => string) => {
    const files = splits.filter((s) => has(pathOf(s))).map((s) => ({ split: s, path: pathOf(s) }));
    if (files.length > 0) configs.push({ name, description, files });
  };
  add('parquet', 'Parquet table', parquetPath);
  configs.push({
    name: 'records',
    description: 'JSONL record (all fields)',
    files: splits.map((s) => ({ split: s, path: `${s}.jsonl` })),
  });
  add('chat', 'chat fine-tuning JSONL', chatPath);
  add('classifier', 'text + label JSONL', classifierPath);
  return configs;
}
