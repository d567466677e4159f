/**
 * Issue 16 through the command line: `--format` writes the chat, classifier and Parquet
 * files and the card beside the record, `--split` writes train / validation / test at
 * the class ratio with no conversation in two splits, the summary counts per split, and
 * bad values are usage errors naming the flag. balance, run --in-process and the runner
 * give the same bytes.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { main } from '../../cli/main';
import { o200kTokenLength } from '../../adapters/files/dataset-formats';
import { chatTokens } from '../../shared/dataset/index';

const dir = mkdtempSync(join(tmpdir(), 'sftb-dataset-'));
const annotated = join(dir, 'annotated.jsonl');
const telemetry = join(dir, 'telemetry.jsonl');
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    const code = await main(argv);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    vi.restoreAllMocks();
  }
}

/** Every file under `d`, by relative path. */
function files(d: string): string[] {
  const all: string[] = [];
  const walk = (x: string) => {
    for (const n of readdirSync(x)) {
      const p = join(x, n);
      if (statSync(p).isDirectory()) walk(p);
      else all.push(relative(d, p));
    }
  };
  walk(d);
  return all.sort();
}

const lines = (p: string) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; label: number; conversationId: string });

afterEach(() => vi.restoreAllMocks());

beforeAll(async () => {
  expect(
    (await cli('generate', '--conversations', '3000', '--annotated', '--out', annotated, '-q'))
      .code,
  ).toBe(0);
  expect((await cli('generate', '--conversations', '600', '--out', telemetry, '-q')).code).toBe(0);
});

describe('balance --split --format', () => {
  it('writes three splits at the class ratio, every format and the card, listed in the manifest', async () => {
    const out = join(dir, 'all');
    const args = [
      'balance',
      '--input',
      annotated,
      '--out',
      out,
      '--total',
      '1000',
      '--ratio',
      '0.6',
    ];
    const r = await cli(...args, '--split', '0.8,0.1,0.1', '--format', 'chat,classifier,parquet');
    expect(r.code).toBe(0);
    // The summary counts per split, not the whole dataset as "train.jsonl".
    expect(r.stdout).toContain(
      'train.jsonl 800 (480 / 320), validation.jsonl 100 (60 / 40), test.jsonl 100 (60 / 40)',
    );
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.split).toMatchObject({ train: 800, validation: 100, test: 100 });
    expect(m.split.byLabel).toEqual({
      train: { '0': 480, '1': 320 },
      validation: { '0': 60, '1': 40 },
      test: { '0': 60, '1': 40 },
    });
    expect(m.split.deviation.total).toBe(0);
    const split = Object.fromEntries(
      ['train', 'validation', 'test'].map((s) => [s, lines(join(out, `${s}.jsonl`))]),
    );
    expect(split.train).toHaveLength(800);
    expect(split.test).toHaveLength(100);
    const owner = new Map<string, string>();
    for (const [s, ls] of Object.entries(split))
      for (const l of ls) {
        expect(owner.get(l.conversationId) ?? s, l.conversationId).toBe(s);
        owner.set(l.conversationId, s);
      }
    // Every file written is in the manifest with its digest, and derived line for line.
    const written = files(out).filter(
      (n) => !['manifest.json', 'report.html', '.sft-balancer-output.json'].includes(n),
    );
    expect(written).toContain('README.md');
    expect(written).toContain('data/test-00000-of-00001.parquet');
    expect(written).toContain('chat/validation.jsonl');
    expect(Object.keys(m.outputs).sort()).toEqual(written);
    for (const name of written) expect(m.outputs[name].sha256, name).toBe(sha(join(out, name)));
    const cls = lines(join(out, 'classifier', 'test.jsonl'));
    expect(cls.map((l) => l.label)).toEqual(split.test!.map((l) => l.label));
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toContain('configs:');

    // Run again into the same directory: the folders are the tool's own, and replaced.
    expect((await cli(...args, '--split', '0.8,0.1,0.1', '-q')).code).toBe(0);
    expect(existsSync(join(out, 'chat'))).toBe(false);
    expect(existsSync(join(out, 'README.md'))).toBe(false);
    expect(existsSync(join(out, 'test.jsonl'))).toBe(true);
  });

  it('--validation keeps working, now at the class ratio in each split', async () => {
    const out = join(dir, 'validation');
    const r = await cli(
      'balance',
      '--input',
      annotated,
      '--out',
      out,
      '--total',
      '1000',
      '--validation',
      '0.2',
      '-q',
    );
    expect(r.code).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.split.byLabel.validation).toEqual({ '0': 100, '1': 100 });
    expect(existsSync(join(out, 'test.jsonl'))).toBe(false);
  });

  it.each([
    [['--split', '0.9,0.2,0.05'], '--split: shares sum to'],
    [['--split', '0.9,0.1'], '--split: expected 3 shares'],
    [['--split', '0,0.5,0.5'], '--split: the train share must be above 0'],
    [['--split', '0.8,0.1,0.1', '--validation', '0.1'], 'give --split or --validation, not both'],
    [['--format', 'chat,xml'], '--format: unknown format "xml"'],
  ])('%j is a usage error naming the flag', async (bad, message) => {
    const out = join(dir, 'bad');
    const r = await cli('balance', '--input', annotated, '--out', out, ...bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(existsSync(out)).toBe(false);
  });
});

describe('dataset settings: --system-prompt(-file), --label-words, --chat-max-tokens, --license', () => {
  it('reach the chat file, the manifest and the card', async () => {
    const promptFile = join(dir, 'prompt.txt');
    // A byte-order mark and the final newline are dropped; the rest is kept as written.
    const prompt = 'Route this request: $(rm -rf /) is text here.\nAnswer `think` or `quick`.';
    writeFileSync(promptFile, `\uFEFF${prompt}\n`);
    const out = join(dir, 'settings');
    const r = await cli(
      ...['balance', '--input', annotated, '--out', out, '--total', '400'],
      ...['--format', 'chat,parquet', '--system-prompt-file', promptFile],
      ...['--label-words', 'think,quick', '--chat-max-tokens', '60', '--license', 'CC-BY-4.0'],
      '-q',
    );
    expect(r.code, r.stderr).toBe(0);
    const records = lines(join(out, 'train.jsonl'));
    const chat = readFileSync(join(out, 'chat', 'train.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { messages: { role: string; content: string }[] });
    const excluded = readFileSync(join(out, 'chat', 'excluded.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; tokens: number; limit: number });
    // Some examples fit the limit, some are left out, none is cut.
    expect(chat.length).toBeGreaterThan(0);
    expect(excluded.length).toBeGreaterThan(0);
    expect(chat.length + excluded.length).toBe(records.length);
    const count = await o200kTokenLength();
    for (const c of chat) expect(chatTokens(c.messages, count)).toBeLessThanOrEqual(60);
    for (const e of excluded) expect(e).toMatchObject({ limit: 60, tokens: expect.any(Number) });
    expect(excluded.every((e) => e.tokens > 60)).toBe(true);
    // The system prompt verbatim, the label word of each kept record.
    const byId = new Map(records.map((l) => [l.id, l.label]));
    const kept = records.filter((l) => !excluded.some((e) => e.id === l.id));
    chat.forEach((c, i) => {
      expect(c.messages[0]).toEqual({ role: 'system', content: prompt });
      expect(c.messages.at(-1)!.content).toBe(['think', 'quick'][byId.get(kept[i]!.id)!]);
    });
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.config).toMatchObject({
      systemPrompt: prompt,
      labelWords: ['think', 'quick'],
      chatMaxTokens: 60,
      license: 'cc-by-4.0',
    });
    expect(m.formats.settings).toEqual({
      systemPrompt: prompt,
      labelWords: ['think', 'quick'],
      chatMaxTokens: 60,
      license: 'cc-by-4.0',
    });
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    expect(card).toContain('license: "cc-by-4.0"');
    expect(card).toContain('"0": "think"');
    expect(card).toContain('- Chat token limit: 60 tokens per example');
    expect(card).toContain('```text\n' + prompt + '\n```');
  }, 120_000);

  const big = join(dir, 'big-prompt.txt');
  const binary = join(dir, 'binary-prompt.bin');
  it.each([
    [['--label-words', 'same,same'], '--label-words: the two label words must differ'],
    [['--label-words', 'think'], '--label-words: expected two words'],
    [['--label-words', 'think,'], '--label-words (1): a label word must not be empty'],
    [['--chat-max-tokens', '0'], '--chat-max-tokens: must be a positive integer'],
    [['--chat-max-tokens', '1.5'], '--chat-max-tokens: must be a positive integer'],
    [['--chat-max-tokens', 'lots'], '--chat-max-tokens: must be a positive integer'],
    [['--license', 'MIT License'], '--license: must be an SPDX-like license id'],
    [['--system-prompt', '   '], '--system-prompt: must not be empty'],
    [['--system-prompt', 'a', '--system-prompt-file', big], 'give --system-prompt or'],
    [['--system-prompt-file', join(dir, 'nope.txt')], '--system-prompt-file: cannot read'],
    [['--system-prompt-file', dir], '--system-prompt-file: ' + dir + ' is not a regular file'],
    [['--system-prompt-file', big], 'a system prompt may have at most 32768'],
    [['--system-prompt-file', binary], 'is not UTF-8 text'],
  ])('%j is a usage error naming the flag', async (bad, message) => {
    writeFileSync(big, 'x'.repeat(32 * 1024 + 1));
    writeFileSync(binary, Buffer.from([0x52, 0xff, 0xfe, 0x00, 0x41]));
    const out = join(dir, 'bad-settings');
    const r = await cli('balance', '--input', annotated, '--out', out, '--format', 'chat', ...bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr.split('\n')[0]).toContain(message);
    expect(existsSync(out)).toBe(false);
  });
});

describe('demo --format --split', () => {
  it('refuses a bad value before generating anything, and passes good ones to run', async () => {
    const bad = join(dir, 'demo-bad');
    const r = await cli('demo', '--out', bad, '--split', '0.5,0.6,0', '-q');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--split: shares sum to');
    expect(existsSync(bad)).toBe(false);
    const out = join(dir, 'demo');
    const ok = await cli(
      'demo',
      '--out',
      out,
      '--conversations',
      '400',
      '--total',
      '100',
      '--in-process',
      '--split',
      '0.8,0.1,0.1',
      '--format',
      'classifier',
      '-q',
    );
    expect(ok.code).toBe(0);
    expect(lines(join(out, 'dataset', 'classifier', 'test.jsonl'))).toHaveLength(10);
  });
});

describe('run: in-process and the runner give the same bytes', () => {
  it('writes the formats and test.jsonl both ways, byte for byte', async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    // With dataset settings, so the runner's spec is shown to carry them to the fan-in.
    const flags = [
      ...['--input', telemetry, '--total', '200', '--split', '0.8,0.1,0.1', '-q'],
      ...['--label-words', 'think,quick', '--system-prompt', 'Route it.', '--license', 'mit'],
    ];
    const inproc = join(dir, 'inproc');
    const runner = join(dir, 'runner');
    expect(
      (await cli('run', '--in-process', '--out', inproc, ...flags, '--format', 'parquet,chat'))
        .code,
    ).toBe(0);
    vi.stubEnv('SFT_CONTAINER', `d-${tag}`);
    vi.stubEnv('SFT_PLAN_QUEUE', `dp-${tag}`);
    vi.stubEnv('SFT_SHARD_QUEUE', `ds-${tag}`);
    vi.stubEnv('SFT_FANIN_QUEUE', `df-${tag}`);
    try {
      const storage = ['--storage', inject('azurite').connectionString];
      expect(
        (await cli('run', '--out', runner, ...flags, ...storage, '--format', 'parquet,chat')).code,
      ).toBe(0);
    } finally {
      vi.unstubAllEnvs();
    }
    for (const f of [
      'train.jsonl',
      'validation.jsonl',
      'test.jsonl',
      'chat/train.jsonl',
      'chat/test.jsonl',
      'data/train-00000-of-00001.parquet',
      'data/validation-00000-of-00001.parquet',
      'README.md',
    ])
      expect(existsSync(join(runner, f)) && sha(join(runner, f)), f).toEqual(
        f === 'README.md' ? expect.any(String) : sha(join(inproc, f)),
      );
    const first = JSON.parse(
      readFileSync(join(runner, 'chat', 'train.jsonl'), 'utf8').split('\n')[0]!,
    );
    expect(first.messages[0]).toEqual({ role: 'system', content: 'Route it.' });
    expect(['think', 'quick']).toContain(first.messages.at(-1).content);
    expect(readFileSync(join(runner, 'README.md'), 'utf8')).toContain('license: "mit"');
  }, 180_000);
});
