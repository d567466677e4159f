/**
 * The dataset card: README.md with Hugging Face YAML front matter (configs with the
 * data files of every split, task category, size category, annotation creators,
 * license) and a body that says where the data came from and how it was balanced,
 * read from the build's manifest. Pure: the caller says which files it wrote.
 */
import { z } from 'zod';
import { LABEL_NAMES } from '../contracts/rows';
import type { ChatSplitReport } from './chat';
import { toYaml, type YamlValue } from './yaml';
import type { TableColumn } from './table';
import { DEFAULT_CHAT_MAX_TOKENS, DEFAULT_LABEL_WORDS } from '../contracts/dataset-settings';
import { probeSectionLines } from '../probe/dataset';

/** One config of the card: a format's files, one per split, paths relative to the card. */
export interface CardConfig {
  name: string;
  /** What a reader finds in the files, e.g. "Parquet table", "chat JSONL". */
  description: string;
  files: { split: string; path: string }[];
}

export interface DatasetCardInput {
  /** The build's manifest.json, as parsed JSON; sections it lacks are left out of the body. */
  manifest: unknown;
  /** The configs written; the first is the default one. */
  configs: CardConfig[];
  /** Rows per split in the JSONL record, and per label. */
  splits: { name: string; rows: number; byLabel: Record<string, number> }[];
  /** A Hugging Face license id (`mit`, `cc-by-4.0`, `other`, ...). */
  license: string;
  prettyName?: string;
  /** The earliest and latest sample timestamps, when the manifest names no window. */
  timestamps?: { first: string; last: string } | null;
  chat?: {
    systemPrompt: string;
    labelWords: readonly [string, string];
    maxTokens: number;
    bySplit: Record<string, ChatSplitReport>;
  } | null;
  /** The separator joining history and message in `text` (classifier, Parquet). */
  separator?: string;
  /**
   * The dataset settings of the build, stated in the body (the label words also name
   * the ClassLabel): by default the defaults.
   */
  settings?: {
    systemPrompt?: string;
    labelWords: readonly [string, string];
    chatMaxTokens: number;
  };
  /** The Parquet table's columns, when the `parquet` config was written: its `dataset_info.features`. */
  tableColumns?: readonly TableColumn[] | null;
}

const Window = z.looseObject({ from: z.string().optional(), to: z.string().optional() });
const sections = {
  tool: z.looseObject({ name: z.string(), version: z.string() }),
  command: z.string(),
  source: z.unknown(),
  build: z.looseObject({
    id: z.string().optional(),
    source: z.unknown(),
    window: Window.optional(),
  }),
  window: Window,
  pipeline: z.looseObject({ name: z.string(), history: z.unknown() }),
  judge: z.looseObject({
    name: z.string().optional(),
    model: z.string().optional(),
    rubricVersion: z.string().optional(),
  }),
  config: z.looseObject({
    ratio: z.number().optional(),
    total: z.number().optional(),
    stratify: z.array(z.string()).optional(),
    allocation: z.string().optional(),
    onShortfall: z.string().optional(),
    seed: z.union([z.number(), z.string()]).optional(),
    nearDedup: z.boolean().optional(),
  }),
  input: z.looseObject({
    rows: z.number().optional(),
    duplicatesRemoved: z.number().optional(),
    byLabelStratum: z
      .record(z.string(), z.record(z.string(), z.looseObject({ unique: z.number() })))
      .optional(),
  }),
  targets: z.looseObject({ byLabel: z.record(z.string(), z.number()) }),
  selected: z.looseObject({
    byLabel: z.record(z.string(), z.number()).optional(),
    byLabelStratum: z.record(z.string(), z.record(z.string(), z.number())).optional(),
    upsampled: z.number().optional(),
  }),
  shortfalls: z.looseObject({
    strata: z
      .array(z.looseObject({ label: z.number(), stratum: z.string(), nominal: z.number() }))
      .optional(),
  }),
  nearDuplicates: z.looseObject({
    threshold: z.number(),
    removed: z.number(),
    byLabelStratum: z.record(z.string(), z.record(z.string(), z.number())),
    note: z.string().optional(),
  }),
  dedup: z.record(z.string(), z.unknown()),
  probe: z.record(z.string(), z.unknown()),
};
type Sections = { [K in keyof typeof sections]?: z.infer<(typeof sections)[K]> };

/** Each section of the manifest that has the expected shape; others are skipped, not fatal. */
function readManifest(manifest: unknown): Sections {
  const out: Record<string, unknown> = {};
  if (typeof manifest !== 'object' || manifest === null) return out;
  const m = manifest as Record<string, unknown>;
  for (const [k, schema] of Object.entries(sections)) {
    if (m[k] === undefined) continue;
    const r = schema.safeParse(m[k]);
    if (r.success) out[k] = r.data;
  }
  return out;
}

/** The Hugging Face size category of a row count. */
export function sizeCategory(rows: number): string {
  const steps = ['1K', '10K', '100K', '1M', '10M', '100M', '1B', '10B', '100B', '1T'];
  if (rows < 1000) return 'n<1K';
  for (let i = 1; i < steps.length; i++)
    if (rows < 1000 * 10 ** i) return `${steps[i - 1]}<n<${steps[i]}`;
  return 'n>1T';
}

/** The front matter as an object (what the YAML says). */
export function cardFrontMatter(input: DatasetCardInput): { [key: string]: YamlValue } {
  const rows = input.splits.reduce((n, s) => n + s.rows, 0);
  const fm: { [key: string]: YamlValue } = {};
  if (input.prettyName) fm.pretty_name = input.prettyName;
  Object.assign(fm, {
    license: input.license,
    task_categories: ['text-classification'],
    annotations_creators: ['machine-generated'],
    size_categories: [sizeCategory(rows)],
    tags: ['model-routing', 'sft', 'synthetic-labels'],
    configs: input.configs.map((c, i) => ({
      config_name: i === 0 ? 'default' : c.name,
      data_files: c.files.map((f) => ({ split: f.split, path: f.path })),
    })),
  });
  const info = datasetInfo(input);
  if (info.length > 0) fm.dataset_info = info;
  return fm;
}

const labelWordsOf = (input: DatasetCardInput): readonly [string, string] =>
  input.settings?.labelWords ?? DEFAULT_LABEL_WORDS;

/** Hugging Face feature dtypes of the table's column types (Parquet int32 → `int32`, double → `float64`). */
const DTYPE = { string: 'string', int32: 'int32', double: 'float64', boolean: 'bool' } as const;

/** One `dataset_info.features` entry; `label` is a ClassLabel named by the label words. */
function feature(c: TableColumn, words: readonly [string, string]): { [key: string]: YamlValue } {
  if (c.name === 'label')
    return { name: 'label', dtype: { class_label: { names: { '0': words[0], '1': words[1] } } } };
  if (c.type === 'string_list') return { name: c.name, sequence: 'string' };
  return { name: c.name, dtype: DTYPE[c.type] };
}

/**
 * `dataset_info`, one entry per config whose columns are flat and known: the Parquet
 * table (its columns as written) and the classifier's `text` + `label`. Each declares
 * `label` as a ClassLabel {0: word 0, 1: word 1} and its splits' num_examples (every
 * row of a split is in these files). The records and chat configs hold nested JSON:
 * `datasets` infers their features.
 */
function datasetInfo(input: DatasetCardInput): YamlValue[] {
  const words = labelWordsOf(input);
  const rows = new Map(input.splits.map((s) => [s.name, s.rows]));
  const out: YamlValue[] = [];
  input.configs.forEach((c, i) => {
    const columns =
      c.name === 'parquet'
        ? input.tableColumns
        : c.name === 'classifier'
          ? ([
              { name: 'text', type: 'string', nullable: false },
              { name: 'label', type: 'int32', nullable: false },
            ] as const)
          : null;
    if (!columns) return;
    out.push({
      config_name: i === 0 ? 'default' : c.name,
      features: columns.map((col) => feature(col, words)),
      splits: c.files.map((f) => ({ name: f.split, num_examples: rows.get(f.split) ?? 0 })),
    });
  });
  return out;
}

const code = (s: string) => '`' + s.replace(/`/g, "'") + '`';
const cell = (v: unknown) => String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const table = (head: string[], rows: unknown[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');

/** Up to 40 scalar leaves of an object as `a.b: value` lines, for sections of unknown shape. */
function leaves(v: unknown, prefix = '', out: string[] = []): string[] {
  if (out.length >= 40) return out;
  if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.push(`- ${code(prefix)}: ${String(v)}`);
  return out;
}

/** A code fence longer than any run of backticks in `text`, so the text shows verbatim. */
const fence = (text: string) =>
  '`'.repeat(Math.max(3, ...(text.match(/`+/g) ?? []).map((r) => r.length + 1)));

/** The labels and the dataset settings of the build: label words, system prompt, token limit. */
function labelsSection(input: DatasetCardInput): string[] {
  const words = labelWordsOf(input);
  const max = input.settings?.chatMaxTokens ?? input.chat?.maxTokens ?? DEFAULT_CHAT_MAX_TOKENS;
  const prompt = input.settings?.systemPrompt ?? input.chat?.systemPrompt;
  return [
    '## Labels and settings',
    '',
    `- \`label\` is a class label: 0 = ${code(words[0])} (needs a reasoning model), 1 = ${code(words[1])} (a fast model serves it); \`labelName\` in the records and the table keeps the names \`reasoning\` / \`non_reasoning\`.`,
    `- Label words (the chat assistant's answer, and the class names): ${code(words[0])}, ${code(words[1])}`,
    `- Chat token limit: ${max} tokens per example (o200k_base); longer examples are left out of the chat files, never cut.`,
    `- License: ${code(input.license)}`,
    ...(prompt !== undefined
      ? ['- Chat system prompt (verbatim):', '', `${fence(prompt)}text`, prompt, fence(prompt)]
      : []),
    '',
  ];
}

const labelName = (l: string) => LABEL_NAMES[Number(l) as 0 | 1] ?? l;

/** README.md text: front matter, then the body. */
export function datasetCard(input: DatasetCardInput): string {
  const m = readManifest(input.manifest);
  const title = input.prettyName ?? 'Router fine-tuning dataset';
  const out: string[] = [
    '---',
    toYaml(cardFrontMatter(input)).trimEnd(),
    '---',
    '',
    `# ${title}`,
    '',
  ];
  const tool = m.tool ? `${m.tool.name} ${m.tool.version}` : 'sft-balancer';
  out.push(
    'Labelled user requests of a coding assistant for training a model router: label 0 ' +
      '(`reasoning`) means the request needs a reasoning model, label 1 (`non_reasoning`) ' +
      `that a fast model serves it. Built by ${tool}` +
      (m.command ? ` (\`${m.command}\`)` : '') +
      '; the labels are machine-generated by a judge, not by people.',
    '',
    '## Splits',
    '',
    table(
      ['split', 'rows', 'reasoning (0)', 'non_reasoning (1)'],
      input.splits.map((s) => [s.name, s.rows, s.byLabel['0'] ?? 0, s.byLabel['1'] ?? 0]),
    ),
    '',
    '## Files',
    '',
    table(
      ['config', 'what', 'split', 'file'],
      input.configs.flatMap((c, i) =>
        c.files.map((f) => [
          i === 0 ? `default (${c.name})` : c.name,
          c.description,
          f.split,
          code(f.path),
        ]),
      ),
    ),
    '',
  );
  if (input.separator !== undefined)
    out.push(
      `A sample's \`text\` is its earlier user messages in the conversation, oldest first, then the message to route, joined by ${code(JSON.stringify(input.separator))}; a sample without history is just its message.`,
      '',
    );

  out.push(...labelsSection(input));

  out.push(...sourceSection(input, m));
  out.push(...balanceSection(input, m));
  out.push(...dedupProbeSection(input, m));
  out.push(...chatSection(input));
  out.push(...loadSection(input));
  return out.join('\n');
}

/** The card body's source part. */
function sourceSection(input: DatasetCardInput, m: Sections): string[] {
  const out: string[] = [];
  out.push('## Source', '');
  const source = m.build?.source ?? m.source;
  if (source !== undefined)
    out.push(`- Source: ${code(typeof source === 'string' ? source : JSON.stringify(source))}`);
  const window = m.build?.window ?? m.window;
  if (window && (window.from || window.to))
    out.push(
      `- Window: ${window.from ?? 'the beginning'} to ${window.to ?? 'the end'} (from inclusive, to exclusive)`,
    );
  else if (input.timestamps)
    out.push(
      `- Window: no window was set; the samples' timestamps run from ${input.timestamps.first} to ${input.timestamps.last}`,
    );
  if (m.pipeline) {
    const h = m.pipeline.history;
    out.push(
      `- Pipeline: ${m.pipeline.name}` +
        (h && typeof h === 'object' ? ` (history: ${JSON.stringify(h)})` : ''),
    );
  }
  if (m.judge) {
    out.push(
      `- Judge: ${m.judge.name ?? 'not recorded'}` +
        (m.judge.model ? `, model ${m.judge.model}` : '') +
        `; rubric version: ${m.judge.rubricVersion ?? 'not recorded'}`,
    );
  }
  if (m.build?.id) out.push(`- Build: ${code(m.build.id)}`);
  out.push('');
  return out;
}

/** The card body's balance part. */
function balanceSection(input: DatasetCardInput, m: Sections): string[] {
  const out: string[] = [];
  out.push('## Balance', '');
  if (m.config) {
    const c = m.config;
    if (c.ratio !== undefined)
      out.push(
        `- Target ratio: ${Math.round(c.ratio * 1000) / 10}% reasoning (label 0), ${Math.round((1 - c.ratio) * 1000) / 10}% non_reasoning (label 1)`,
      );
    if (c.stratify)
      out.push(
        `- Strata: ${c.stratify.length ? c.stratify.join(', ') : 'none'}; allocation ${c.allocation ?? 'n/a'}; on shortfall: ${c.onShortfall ?? 'n/a'}; seed ${c.seed ?? 'n/a'}`,
      );
  }
  if (m.targets && m.selected?.byLabel) {
    const t = m.targets.byLabel;
    const s = m.selected.byLabel;
    out.push(
      '',
      table(
        ['class', 'target', 'delivered'],
        Object.keys(t).map((l) => [`${labelName(l)} (${l})`, t[l], s[l] ?? 0]),
      ),
    );
  }
  const cells = m.selected?.byLabelStratum;
  if (cells) {
    const nominal = new Map(
      (m.shortfalls?.strata ?? []).map((s) => [`${s.label}/${s.stratum}`, s.nominal]),
    );
    const rows: unknown[][] = [];
    for (const [l, byStratum] of Object.entries(cells))
      for (const [stratum, delivered] of Object.entries(byStratum))
        rows.push([
          labelName(l),
          stratum,
          m.input?.byLabelStratum?.[l]?.[stratum]?.unique ?? 'n/a',
          nominal.get(`${l}/${stratum}`) ?? 'met',
          delivered,
        ]);
    out.push(
      '',
      'Strata, targets against delivered: a stratum whose supply fell short of its nominal target shows that target (its shortfall went to the other strata of its class); "met" means it received at least its share.',
      '',
      table(['class', 'stratum', 'available', 'nominal target (if short)', 'delivered'], rows),
    );
  }
  if (m.selected?.upsampled)
    out.push('', `- Upsampled (repeated) samples: ${m.selected.upsampled}`);
  out.push('');
  return out;
}

/** The card body's dedupProbe part. */
function dedupProbeSection(input: DatasetCardInput, m: Sections): string[] {
  const out: string[] = [];
  out.push('## Deduplication', '');
  if (m.input?.duplicatesRemoved !== undefined)
    out.push(
      `- Exact duplicates removed (same normalized user message within a class and stratum): ${m.input.duplicatesRemoved}`,
    );
  const near = m.nearDuplicates;
  if (near) {
    const cells = Object.entries(near.byLabelStratum).flatMap(([l, by]) =>
      Object.entries(by).map(
        ([st, n]) => `${l === '0' ? 'reasoning' : 'non_reasoning'}/${st} ${n}`,
      ),
    );
    out.push(
      `- Near-duplicates removed (MinHash over character 5-grams, 16 × 7 LSH, estimated Jaccard ≥ ${near.threshold}; ` +
        `each removed sample is listed with the selected one it duplicates in \`duplicates.jsonl\`): ${near.removed}` +
        (cells.length ? ` (${cells.join(', ')})` : ''),
      `- Counted ${near.note ?? 'among the walked candidates, not a census of the population'}; no two selected samples are verified near-duplicates, so none straddles two splits.`,
    );
  } else if (m.config?.nearDedup === false)
    out.push(
      '- Near-duplicate removal was off for this build (near-duplicate clusters kept within one split).',
    );
  if (m.dedup) out.push(...leaves(m.dedup, 'dedup'));
  if (m.input?.duplicatesRemoved === undefined && !m.nearDuplicates && !m.dedup)
    out.push('No deduplication figures recorded.');
  out.push('');

  out.push('## Probe', '');
  out.push(
    ...(!m.probe
      ? ['No probe figures recorded for this build.']
      : typeof m.probe.status === 'string'
        ? [
            // This project's probe: its verdict and AUCs; every figure is in probe.json.
            ...probeSectionLines(m.probe).map((l) => `- ${l}`),
            '- All figures: `probe.json`; the samples to review: `label-review.jsonl`.',
          ]
        : leaves(m.probe, 'probe')),
    '',
  );
  return out;
}

/** The card body's chat part. */
function chatSection(input: DatasetCardInput): string[] {
  const out: string[] = [];
  if (input.chat) {
    const ch = input.chat;
    out.push(
      '## Chat format',
      '',
      `Each line is \`{"messages": [system, user, assistant]}\`: the system prompt above, one user message holding the router input (earlier user turns merged into it, so roles alternate), and the label as one word: ${code(ch.labelWords[0])} for label 0, ${code(ch.labelWords[1])} for label 1. Examples over ${ch.maxTokens} tokens (o200k_base, counted as OpenAI's cookbook counts) are left out, never cut; so are examples failing a cookbook check.`,
      '',
      table(
        [
          'split',
          'written',
          'over token limit',
          'failing a check',
          'tokens (total)',
          'tokens p50 / p95 / max',
        ],
        Object.entries(ch.bySplit).map(([s, r]) => [
          s,
          r.written,
          r.overTokenLimit,
          r.invalid,
          r.tokens.total,
          `${r.tokens.p50} / ${r.tokens.p95} / ${r.tokens.max}`,
        ]),
      ),
      '',
    );
  }
  return out;
}

/** The card body's load part. */
function loadSection(input: DatasetCardInput): string[] {
  const out: string[] = [];
  const byName = new Map(input.configs.map((c, i) => [c.name, { c, i }]));
  const pathOf = (name: string, split: string) =>
    byName.get(name)?.c.files.find((f) => f.split === split)?.path;
  out.push('## How to load', '', '```python', 'from datasets import load_dataset', '');
  out.push('ds = load_dataset("path/to/this/folder")  # the default config');
  for (const [name, { i }] of byName)
    if (i > 0)
      out.push(`ds_${name.replace(/\W/g, '_')} = load_dataset("path/to/this/folder", "${name}")`);
  out.push('```', '');
  const pq = pathOf('parquet', 'train');
  if (pq)
    out.push('```python', 'import pandas as pd', '', `df = pd.read_parquet("${pq}")`, '```', '');
  const chatTrain = pathOf('chat', 'train');
  if (chatTrain) {
    const chatVal = pathOf('chat', 'validation');
    out.push(
      'Fine-tuning (OpenAI or Azure OpenAI; the chat files are the training and validation files):',
      '',
      '```python',
      'from openai import OpenAI  # or AzureOpenAI(...)',
      '',
      'client = OpenAI()',
      `train = client.files.create(file=open("${chatTrain}", "rb"), purpose="fine-tune")`,
      ...(chatVal
        ? [`val = client.files.create(file=open("${chatVal}", "rb"), purpose="fine-tune")`]
        : []),
      `job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=train.id${chatVal ? ', validation_file=val.id' : ''})`,
      '```',
      '',
    );
  }
  return out;
}
