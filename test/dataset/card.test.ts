import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  cardFrontMatter,
  datasetCard,
  sizeCategory,
  tableColumns,
  toYaml,
  type DatasetCardInput,
  type YamlValue,
} from '../../shared/dataset/index';

const input = (over: Partial<DatasetCardInput> = {}): DatasetCardInput => ({
  manifest: {},
  configs: [
    {
      name: 'parquet',
      description: 'Parquet table',
      files: [
        { split: 'train', path: 'data/train-00000-of-00001.parquet' },
        { split: 'test', path: 'data/test-00000-of-00001.parquet' },
      ],
    },
    { name: 'chat', description: 'chat', files: [{ split: 'train', path: 'chat/train.jsonl' }] },
  ],
  splits: [
    { name: 'train', rows: 900, byLabel: { '0': 450, '1': 450 } },
    { name: 'test', rows: 100, byLabel: { '0': 50, '1': 50 } },
  ],
  license: 'cc-by-4.0',
  ...over,
});

const frontMatter = (text: string) =>
  parseYaml(/^---\n([\s\S]*?)\n---\n/.exec(text)![1]!) as Record<string, unknown>;

describe('toYaml', () => {
  it('writes strings that YAML reads back unchanged, whatever they hold', () => {
    const tricky = [
      'yes',
      'no',
      '1.0',
      'null',
      'a: b',
      '- x',
      '#c',
      'quote " and \\',
      'line\nbreak',
      '😀 ünï',
      '',
      "it's",
    ];
    const doc: { [key: string]: YamlValue } = {
      list: tricky,
      'odd key': 'v',
      nested: [{ a: 1, b: ['x'] }, { c: true }],
      empty: [],
      none: null,
    };
    expect(parseYaml(toYaml(doc))).toEqual(doc);
  });
});

describe('sizeCategory', () => {
  it.each([
    [0, 'n<1K'],
    [999, 'n<1K'],
    [1000, '1K<n<10K'],
    [9999, '1K<n<10K'],
    [10_000, '10K<n<100K'],
    [2_500_000, '1M<n<10M'],
  ])('%d rows → %s', (n, cat) => expect(sizeCategory(n)).toBe(cat));
});

describe('datasetCard', () => {
  it('front matter: configs with every split file, the first as default, and the card fields', () => {
    const fm = frontMatter(datasetCard(input({ prettyName: 'Router: "v2"' })));
    expect(fm).toEqual(cardFrontMatter(input({ prettyName: 'Router: "v2"' })));
    expect(fm).toMatchObject({
      pretty_name: 'Router: "v2"',
      license: 'cc-by-4.0',
      task_categories: ['text-classification'],
      annotations_creators: ['machine-generated'],
      size_categories: ['1K<n<10K'],
      configs: [
        {
          config_name: 'default',
          data_files: [
            { split: 'train', path: 'data/train-00000-of-00001.parquet' },
            { split: 'test', path: 'data/test-00000-of-00001.parquet' },
          ],
        },
        { config_name: 'chat', data_files: [{ split: 'train', path: 'chat/train.jsonl' }] },
      ],
    });
  });

  it('states the build window, judge model and rubric version, targets and probe figures when the manifest has them', () => {
    const text = datasetCard(
      input({
        manifest: {
          command: 'build',
          build: {
            id: 'b-1',
            source: { kind: 'kusto', table: 'Turns' },
            window: { from: '2026-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z' },
          },
          pipeline: { name: 'conversation', history: { historyTurns: 3 } },
          judge: { name: 'llm', model: 'gpt-4.1-mini', rubricVersion: 'router-rubric-v1' },
          config: {
            ratio: 0.7,
            stratify: ['turnBucket'],
            allocation: 'equal',
            onShortfall: 'shrink',
            seed: 42,
          },
          input: { duplicatesRemoved: 12, byLabelStratum: { '0': { A: { rows: 10, unique: 9 } } } },
          targets: { byLabel: { '0': 700, '1': 300 } },
          selected: { byLabel: { '0': 650, '1': 300 }, byLabelStratum: { '0': { A: 9 } } },
          shortfalls: {
            strata: [{ label: 0, stratum: 'A', nominal: 233.33, available: 9, selected: 9 }],
          },
          probe: { accuracy: 0.91, byClass: { reasoning: { recall: 0.88 } } },
        },
        timestamps: { first: '2026-10-02T00:00:00Z', last: '2026-10-30T00:00:00Z' },
      }),
    );
    expect(text).toContain('- Source: `{"kind":"kusto","table":"Turns"}`');
    expect(text).toContain('- Window: 2026-10-01T00:00:00Z to 2026-11-01T00:00:00Z');
    expect(text).toContain('- Pipeline: conversation (history: {"historyTurns":3})');
    expect(text).toContain('- Judge: llm, model gpt-4.1-mini; rubric version: router-rubric-v1');
    expect(text).toContain('- Target ratio: 70% reasoning (label 0), 30% non_reasoning (label 1)');
    expect(text).toContain('| reasoning (0) | 700 | 650 |');
    expect(text).toContain('| reasoning | A | 9 | 233.33 | 9 |');
    expect(text).toContain(
      'Exact duplicates removed (same normalized user message within a class and stratum): 12',
    );
    expect(text).toContain('- `probe.accuracy`: 0.91');
    expect(text).toContain('- `probe.byClass.reasoning.recall`: 0.88');
    expect(text).toContain('pd.read_parquet("data/train-00000-of-00001.parquet")');
    expect(text).toContain(
      'client.files.create(file=open("chat/train.jsonl", "rb"), purpose="fine-tune")',
    );
  });

  it('states the near-duplicates removed per class × stratum, or that removal was off', () => {
    const text = datasetCard(
      input({
        manifest: {
          nearDuplicates: {
            threshold: 0.8,
            removed: 7,
            byLabelStratum: { '0': { A: 3, B: 0 }, '1': { A: 4 } },
            passes: 2,
            note: 'among the walked candidates, not a census of the population',
          },
        },
      }),
    );
    expect(text).toContain('estimated Jaccard ≥ 0.8');
    expect(text).toContain(': 7 (reasoning/A 3, reasoning/B 0, non_reasoning/A 4)');
    expect(text).toContain('`duplicates.jsonl`');
    expect(text).toContain('not a census of the population');
    const off = datasetCard(input({ manifest: { config: { nearDedup: false } } }));
    expect(off).toContain('Near-duplicate removal was off');
    expect(off).not.toContain('Near-duplicates removed');
  });

  it('skips a manifest section of an unexpected shape instead of failing', () => {
    const text = datasetCard(
      input({ manifest: { judge: 'not an object', config: { ratio: 'x' } } }),
    );
    expect(text).not.toContain('- Judge:');
    expect(text).not.toContain('Target ratio');
    expect(frontMatter(text).license).toBe('cc-by-4.0');
  });
});

describe('datasetCard: the label as a ClassLabel, and the dataset settings', () => {
  const withTable = (over: Partial<DatasetCardInput> = {}) =>
    input({
      configs: [
        ...input().configs,
        {
          name: 'classifier',
          description: 'text + label',
          files: [{ split: 'train', path: 'classifier/train.jsonl' }],
        },
      ],
      tableColumns: tableColumns(['turnBucket']),
      settings: {
        systemPrompt: 'Route it. Use ```fences``` freely.',
        labelWords: ['think', 'quick'],
        chatMaxTokens: 4096,
      },
      ...over,
    });

  it('declares dataset_info per flat config: label as class_label named by the label words, dtypes of the Parquet schema, splits', () => {
    const fm = frontMatter(datasetCard(withTable()));
    type Info = {
      config_name: string;
      features: Record<string, unknown>[];
      splits: { name: string; num_examples: number }[];
    };
    const info = fm.dataset_info as Info[];
    expect(info.map((i) => i.config_name)).toEqual(['default', 'classifier']);
    const [parquet, classifier] = info as [Info, Info];
    const label = {
      name: 'label',
      dtype: { class_label: { names: { '0': 'think', '1': 'quick' } } },
    };
    expect(parquet.features.find((f) => f.name === 'label')).toEqual(label);
    // Every Parquet column, in order, with the dtype its physical type reads as.
    const want: Record<string, unknown> = {
      string: { dtype: 'string' },
      int32: { dtype: 'int32' },
      double: { dtype: 'float64' },
      boolean: { dtype: 'bool' },
      string_list: { sequence: 'string' },
    };
    expect(parquet.features).toEqual(
      tableColumns(['turnBucket']).map((c) =>
        c.name === 'label' ? label : { name: c.name, ...(want[c.type] as object) },
      ),
    );
    expect(parquet.splits).toEqual([
      { name: 'train', num_examples: 900 },
      { name: 'test', num_examples: 100 },
    ]);
    expect(classifier.features).toEqual([{ name: 'text', dtype: 'string' }, label]);
    expect(classifier.splits).toEqual([{ name: 'train', num_examples: 900 }]);
    // The chat and records configs hold nested JSON: no declaration for them.
    expect(cardFrontMatter(withTable()).dataset_info).toEqual(fm.dataset_info);
  });

  it('without a Parquet table declares only the classifier; the default label words name the classes', () => {
    const fm = frontMatter(datasetCard(withTable({ tableColumns: null, settings: undefined })));
    const info = fm.dataset_info as { config_name: string; features: unknown[] }[];
    expect(info.map((i) => i.config_name)).toEqual(['classifier']);
    expect(info[0]!.features[1]).toEqual({
      name: 'label',
      dtype: { class_label: { names: { '0': 'reasoning', '1': 'fast' } } },
    });
    expect(frontMatter(datasetCard(input())).dataset_info).toBeUndefined();
  });

  it('states the system prompt verbatim, the label words, the token limit and the license in the body', () => {
    const text = datasetCard(withTable());
    expect(text).toContain(
      "- Label words (the chat assistant's answer, and the class names): `think`, `quick`",
    );
    expect(text).toContain('- Chat token limit: 4096 tokens per example');
    expect(text).toContain('- License: `cc-by-4.0`');
    // A fence longer than the prompt's own backtick runs keeps it verbatim.
    expect(text).toContain('````text\nRoute it. Use ```fences``` freely.\n````');
  });
});
