/**
 * writeDatasetFormats on real demo datasets (both pipelines, built in-process by the
 * CLI), and on crafted ones for the failure paths.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  DatasetFormatsError,
  writeDatasetFormats,
  type DatasetFormatsResult,
} from '../../adapters/files/dataset-formats';
import { InputFileError } from '../../adapters/files/lines';
import { parquetInfo, readParquetRowGroups } from '../../adapters/files/parquet';
import { main } from '../../cli/main';
import type { DatasetLine } from '../../shared/contracts/rows';
import {
  checkChatExample,
  joinTurns,
  parseFormats,
  sizeCategory,
  turnsOf,
} from '../../shared/dataset/index';

const root = mkdtempSync(join(tmpdir(), 'sftb-formats-'));
const ALL = parseFormats('chat,classifier,parquet');
const jsonl = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);

function quiet() {
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
}
afterEach(() => vi.restoreAllMocks());

/** Files other than those a run wrote: temp and staging leftovers. */
const leftovers = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.tmp') || f.includes('.formats-'),
  );

const demos: Record<string, { dir: string; result: DatasetFormatsResult; built: string }> = {};

beforeAll(async () => {
  quiet();
  for (const pipeline of ['session', 'conversation']) {
    const out = join(root, pipeline);
    expect(
      await main([
        'demo',
        '--in-process',
        '--conversations',
        '1500',
        '--pipeline',
        pipeline,
        '--out',
        out,
        '-q',
      ]),
    ).toBe(0);
    // A second build of the same rows with a validation split, so two splits are converted.
    const dir = join(out, 'split');
    expect(
      await main([
        'balance',
        '--input',
        join(out, 'dataset', 'annotated.jsonl'),
        '--out',
        dir,
        '--total',
        '1200',
        '--validation',
        '0.1',
        '--stratify',
        pipeline === 'conversation' ? 'turnBucket,position' : 'turnBucket',
        '-q',
      ]),
    ).toBe(0);
    const built = join(out, 'dataset');
    await writeDatasetFormats(built, { formats: ALL });
    demos[pipeline] = {
      dir,
      built,
      result: await writeDatasetFormats(dir, { formats: ALL, license: 'mit' }),
    };
  }
  vi.restoreAllMocks();
}, 120_000);

describe.each(['session', 'conversation'])('a real %s-pipeline dataset', (pipeline) => {
  const get = () => demos[pipeline]!;
  const records = (split: string) => jsonl(join(get().dir, `${split}.jsonl`)) as DatasetLine[];

  it('writes every chat line so that it passes the cookbook checks with alternating roles', () => {
    const { dir, result } = get();
    expect(result.splits.map((s) => s.name)).toEqual(['train', 'validation']);
    for (const split of ['train', 'validation']) {
      const chat = jsonl(join(dir, 'chat', `${split}.jsonl`));
      expect(chat.length).toBe(records(split).length);
      for (const ex of chat) {
        expect(checkChatExample(ex)).toEqual({
          errors: {},
          missingSystem: false,
          missingUser: false,
        });
        expect(Object.keys(ex as object)).toEqual(['messages']);
      }
      expect(result.chat!.bySplit[split]!.written).toBe(chat.length);
    }
    expect(readFileSync(join(dir, 'chat', 'excluded.jsonl'), 'utf8')).toBe('');
    expect(result.chat!.warnings).toEqual([]);
  });

  it('chat: the user message is the router input, the answer the label word', () => {
    const { dir } = get();
    const chat = jsonl(join(dir, 'chat', 'train.jsonl')) as {
      messages: { role: string; content: string }[];
    }[];
    const lines = records('train');
    if (pipeline === 'conversation') expect(lines.some((l) => l.messages.length > 1)).toBe(true);
    lines.forEach((l, i) => {
      const { history, message } = turnsOf(l);
      expect(chat[i]!.messages[1]!.content).toBe(joinTurns(history, message));
      expect(chat[i]!.messages[2]!.content).toBe(l.label === 0 ? 'reasoning' : 'fast');
    });
  });

  it('classifier lines align with the record: text and integer label', () => {
    const { dir } = get();
    for (const split of ['train', 'validation']) {
      const lines = records(split);
      const cls = jsonl(join(dir, 'classifier', `${split}.jsonl`)) as {
        text: string;
        label: number;
      }[];
      expect(cls.length).toBe(lines.length);
      cls.forEach((c, i) => {
        expect(Object.keys(c)).toEqual(['text', 'label']);
        expect(c.label).toBe(lines[i]!.label);
        const { history, message } = turnsOf(lines[i]!);
        expect(c.text).toBe(joinTurns(history, message));
      });
    }
  });

  it('Parquet round trip: rows, columns, types and values match the record', async () => {
    const { dir } = get();
    const stratify = (
      JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
        config: { stratify: string[] };
      }
    ).config.stratify;
    for (const split of ['train', 'validation']) {
      const path = join(dir, 'data', `${split}-00000-of-00001.parquet`);
      const lines = records(split);
      const { rows, metadata } = await parquetInfo(path);
      expect(rows).toBe(lines.length);
      const names = metadata.schema
        .slice(1)
        .filter((s) => s.name !== 'list' && s.name !== 'element')
        .map((s) => s.name);
      expect(names).toEqual([
        'id',
        'text',
        'message',
        'history',
        'label',
        'labelName',
        ...stratify.map((s) => `stratum_${s}`),
        'weight',
        'conversationId',
        'turnIndex',
        'turnCount',
        'model',
        'numRequests',
        'turnDurationMs',
        'promptTokenDelta',
        'tools',
        'timestamp',
        'upsampled',
        'duplicateOf',
        'metadata',
      ]);
      let i = 0;
      for await (const group of readParquetRowGroups(path)) {
        for (const r of group) {
          const l = lines[i++]!;
          expect(r.id).toBe(l.id);
          expect(r.label).toBe(l.label);
          expect(r.weight).toBe(l.weight);
          expect(r.history).toEqual(turnsOf(l).history);
          expect(r.tools).toEqual(l.tools);
          for (const s of stratify) expect(r[`stratum_${s}`]).toBe(l.strata[s]);
          expect(JSON.parse(r.metadata as string)).toEqual(l.metadata);
        }
      }
      expect(i).toBe(lines.length);
    }
  });

  it('the card front matter parses as YAML and lists every split file that exists', () => {
    const { dir, result } = get();
    const text = readFileSync(join(dir, 'README.md'), 'utf8');
    const m = /^---\n([\s\S]*?)\n---\n/.exec(text);
    expect(m).not.toBeNull();
    const fm = parseYaml(m![1]!) as {
      license: string;
      task_categories: string[];
      annotations_creators: string[];
      size_categories: string[];
      configs: { config_name: string; data_files: { split: string; path: string }[] }[];
    };
    expect(fm.license).toBe('mit');
    expect(fm.task_categories).toEqual(['text-classification']);
    expect(fm.annotations_creators).toEqual(['machine-generated']);
    expect(fm.size_categories).toEqual([
      sizeCategory(result.splits.reduce((n, s) => n + s.rows, 0)),
    ]);
    expect(fm.configs.map((c) => c.config_name)).toEqual([
      'default',
      'records',
      'chat',
      'classifier',
    ]);
    const listed = fm.configs.flatMap((c) => c.data_files.map((f) => f.path));
    for (const p of listed) expect(existsSync(join(dir, p))).toBe(true);
    const splitFiles = Object.keys(result.files).filter(
      (f) => f !== 'README.md' && f !== 'chat/excluded.jsonl',
    );
    expect(listed.sort()).toEqual([...splitFiles, 'train.jsonl', 'validation.jsonl'].sort());
    for (const c of fm.configs)
      expect(c.data_files.map((f) => f.split)).toEqual(['train', 'validation']);
    expect(leftovers(dir)).toEqual([]);
  });

  it('the card declares the Parquet columns as the file holds them, label a ClassLabel, rows per split', async () => {
    const { dir, result } = get();
    const text = readFileSync(join(dir, 'README.md'), 'utf8');
    const fm = parseYaml(/^---\n([\s\S]*?)\n---\n/.exec(text)![1]!) as {
      dataset_info: {
        config_name: string;
        features: { name: string; dtype?: unknown; sequence?: string }[];
        splits: { name: string; num_examples: number }[];
      }[];
    };
    const info = fm.dataset_info.find((i) => i.config_name === 'default')!;
    const { metadata } = await parquetInfo(join(dir, 'data', 'train-00000-of-00001.parquet'));
    // The top-level fields of the file's schema: a LIST group or a leaf with its physical type.
    const fields: { name: string; kind: string }[] = [];
    const schema = metadata.schema;
    for (let i = 1; i < schema.length;) {
      const el = schema[i]!;
      if (el.num_children) {
        fields.push({ name: el.name, kind: 'list' });
        let skip = 1;
        for (let left = el.num_children; left > 0; left--) {
          const child = schema[i + skip]!;
          skip += 1 + (child.num_children ?? 0);
        }
        i += skip;
      } else {
        fields.push({ name: el.name, kind: String(el.type) });
        i++;
      }
    }
    const dtypeOf: Record<string, unknown> = {
      BYTE_ARRAY: 'string',
      INT32: 'int32',
      DOUBLE: 'float64',
      BOOLEAN: 'bool',
    };
    expect(info.features.map((f) => f.name)).toEqual(fields.map((f) => f.name));
    for (const [i, f] of fields.entries()) {
      const declared = info.features[i]!;
      if (f.name === 'label') {
        expect(f.kind).toBe('INT32');
        expect(declared.dtype).toEqual({
          class_label: { names: { '0': 'reasoning', '1': 'fast' } },
        });
      } else if (f.kind === 'list') expect(declared.sequence, f.name).toBe('string');
      else expect(declared.dtype, f.name).toBe(dtypeOf[f.kind]);
    }
    expect(info.splits).toEqual(result.splits.map((s) => ({ name: s.name, num_examples: s.rows })));
  });

  it('the card of the demo build states source, window, pipeline, judge, ratio and dedup', () => {
    const { built } = get();
    const card = readFileSync(join(built, 'README.md'), 'utf8');
    expect(card).toContain(`- Pipeline: ${pipeline}`);
    expect(card).toContain('- Judge: signals-v1; rubric version: not recorded');
    expect(card).toMatch(/- Window: no window was set; the samples' timestamps run from 2026-/);
    expect(card).toContain('- Target ratio: 50% reasoning (label 0), 50% non_reasoning (label 1)');
    expect(card).toMatch(/- Exact duplicates removed .*: \d+/);
    // Every build runs the router probe: the card states its verdict, not every leaf.
    expect(card).toMatch(/## Probe\n\n- probe: /);
    expect(card).toContain('`probe.json`');
    expect(card).not.toContain('probe.settings');
    for (const l of jsonl(join(built, 'chat', 'train.jsonl')))
      expect(checkChatExample(l).errors).toEqual({});
  });
});

// ---- crafted datasets ----

function lineOf(i: number, over: Partial<DatasetLine> = {}): DatasetLine {
  return {
    id: `c${i}:1`,
    label: (i % 2) as 0 | 1,
    labelName: i % 2 === 0 ? 'reasoning' : 'non_reasoning',
    messages: [{ role: 'user', content: `message ${i} 😀` }],
    strata: { turnBucket: 'A' },
    weight: 1.5,
    conversationId: `c${i}`,
    turnIndex: 1,
    turnCount: 3,
    model: 'gpt-4o',
    numRequests: 1,
    turnDurationMs: 100,
    promptTokenDelta: 10,
    tools: [],
    timestamp: `2026-10-0${1 + (i % 9)}T00:00:00.000Z`,
    ...over,
  };
}

function dataset(name: string, splits: Record<string, DatasetLine[]>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [s, lines] of Object.entries(splits))
    writeFileSync(join(dir, `${s}.jsonl`), lines.map((l) => JSON.stringify(l) + '\n').join(''));
  return dir;
}

describe('writeDatasetFormats on crafted datasets', () => {
  it('leaves out chat examples over the token limit, lists them, and counts them', async () => {
    const lines = Array.from({ length: 12 }, (_, i) =>
      lineOf(i, i % 4 === 0 ? { messages: [{ role: 'user', content: 'long '.repeat(400) }] } : {}),
    );
    const dir = dataset('limit', { train: lines });
    const r = await writeDatasetFormats(dir, { formats: ALL, chat: { maxTokens: 300 } });
    expect(r.chat!.bySplit.train).toMatchObject({ written: 9, overTokenLimit: 3, invalid: 0 });
    expect(r.chat!.excluded).toBe(3);
    expect(r.chat!.warnings).toEqual([
      'chat/train.jsonl has 9 examples; OpenAI fine-tuning needs at least 10',
    ]);
    const excluded = jsonl(join(dir, 'chat', 'excluded.jsonl'));
    expect(excluded).toEqual(
      [0, 4, 8].map((i) => ({
        split: 'train',
        id: `c${i}:1`,
        reason: 'over_token_limit',
        tokens: expect.any(Number),
        limit: 300,
      })),
    );
    const chat = jsonl(join(dir, 'chat', 'train.jsonl')) as { messages: { content: string }[] }[];
    expect(chat).toHaveLength(9);
    expect(chat.every((c) => !c.messages[1]!.content.startsWith('long'))).toBe(true);
    // Other formats keep every line.
    expect(jsonl(join(dir, 'classifier', 'train.jsonl'))).toHaveLength(12);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain('| train | 9 | 3 | 0 |');
  });

  it('writes a test split beside train and validation, and the card lists it', async () => {
    const dir = dataset('three', {
      train: [lineOf(1), lineOf(2)],
      validation: [lineOf(3)],
      test: [lineOf(4)],
    });
    const r = await writeDatasetFormats(dir, { formats: ALL });
    expect(r.chat!.warnings).toEqual([
      'chat/train.jsonl has 2 examples; OpenAI fine-tuning needs at least 10',
    ]);
    expect(r.splits.map((s) => [s.name, s.rows])).toEqual([
      ['train', 2],
      ['validation', 1],
      ['test', 1],
    ]);
    expect((await parquetInfo(join(dir, 'data', 'test-00000-of-00001.parquet'))).rows).toBe(1);
    const card = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(card).toContain('path: "data/test-00000-of-00001.parquet"');
    expect(card).toContain('path: "chat/test.jsonl"');
    expect(card).toContain('license: "other"');
  });

  it('a format that cannot be written fails alone: clear error, the others intact, no partial file', async () => {
    const dir = dataset('blocked', { train: [lineOf(1), lineOf(2)], validation: [lineOf(3)] });
    writeFileSync(join(dir, 'data'), 'a file where the parquet folder should go');
    const err = await writeDatasetFormats(dir, { formats: ALL }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatsError);
    expect((err as Error).message).toMatch(/^format parquet not written: /);
    const result = (err as DatasetFormatsError).result;
    expect(result.failed.map((f) => f.format)).toEqual(['parquet']);
    expect(jsonl(join(dir, 'chat', 'train.jsonl'))).toHaveLength(2);
    expect(jsonl(join(dir, 'classifier', 'validation.jsonl'))).toHaveLength(1);
    const card = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(card).not.toContain('.parquet');
    expect(card).toContain('config_name: "default"');
    expect(leftovers(dir)).toEqual([]);
  });

  it('the chat format blocked leaves the classifier, Parquet and card in place', async () => {
    const dir = dataset('chat-blocked', { train: [lineOf(1), lineOf(2)] });
    writeFileSync(join(dir, 'chat'), 'not a folder');
    const err = await writeDatasetFormats(dir, { formats: ALL }).catch((e: unknown) => e);
    expect((err as DatasetFormatsError).result.failed.map((f) => f.format)).toEqual(['chat']);
    expect((err as DatasetFormatsError).result.chat).toBeNull();
    expect(readFileSync(join(dir, 'chat'), 'utf8')).toBe('not a folder');
    expect((await parquetInfo(join(dir, 'data', 'train-00000-of-00001.parquet'))).rows).toBe(2);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).not.toContain('chat/train.jsonl');
    expect(leftovers(dir)).toEqual([]);
  });

  it('a value Parquet cannot hold in a later split removes that format’s earlier files too', async () => {
    const dir = dataset('misfit', {
      train: [lineOf(1), lineOf(2)],
      validation: [lineOf(3, { promptTokenDelta: 2 ** 40 })],
    });
    const err = await writeDatasetFormats(dir, { formats: ALL }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /format parquet not written: .*validation-00000-of-00001\.parquet: row 1: column "promptTokenDelta" is not a 32-bit integer/,
    );
    expect(existsSync(join(dir, 'data'))).toBe(false);
    expect(jsonl(join(dir, 'chat', 'validation.jsonl'))).toHaveLength(1);
    expect(leftovers(dir)).toEqual([]);
  });

  it('a broken line in a split is an error naming file and line, and writes nothing', async () => {
    const dir = dataset('broken', { train: [lineOf(1)] });
    copyFileSync(join(dir, 'train.jsonl'), join(dir, 'validation.jsonl'));
    writeFileSync(
      join(dir, 'validation.jsonl'),
      JSON.stringify({ ...lineOf(2), label: 7 }) + '\n',
      { flag: 'a' },
    );
    const err = await writeDatasetFormats(dir, { formats: ALL }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputFileError);
    expect((err as Error).message).toMatch(/validation\.jsonl:2: not a dataset line: label/);
    expect(readdirSync(dir).sort()).toEqual(['train.jsonl', 'validation.jsonl']);
  });

  it('no train.jsonl is an InputFileError', async () => {
    const dir = join(root, 'nothing');
    mkdirSync(dir);
    await expect(writeDatasetFormats(dir, { formats: ALL })).rejects.toThrow(
      /train\.jsonl not found/,
    );
  });
});
