/**
 * Issue 16 through the Functions build: `formats` and `split` in the request body give
 * test.jsonl, the chat / classifier / Parquet files and the card as blobs beside the
 * dataset, listed in the manifest's outputs, with the same bytes as the in-process run.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { createStartBuild } from '../../functions/start-build';
import { runPipeline } from '../../cli/jobs';
import { judgeFor } from '../../functions/lib/judges';
import { BuildRequestSchema, buildPaths, buildSpecOf } from '../../shared/build/spec';
import { loadSettings } from '../../shared/build/settings';
import { runBuild, specFor, telemetryFile, testDeps } from './harness';

const FILES = [
  'train.jsonl',
  'validation.jsonl',
  'test.jsonl',
  'chat/train.jsonl',
  'chat/validation.jsonl',
  'chat/test.jsonl',
  'chat/excluded.jsonl',
  'classifier/train.jsonl',
  'classifier/test.jsonl',
  'data/train-00000-of-00001.parquet',
  'data/test-00000-of-00001.parquet',
];

describe('formats and splits in a Functions build', () => {
  it('writes every format as blobs, lists them in the manifest, same bytes as in process', async () => {
    const deps = testDeps();
    const t = await telemetryFile(900, 5, []);
    await deps.store.ensureContainer();
    await deps.store.uploadFile('telemetry/t.jsonl', t.path);
    const request = BuildRequestSchema.parse({
      total: 300,
      split: '0.8,0.1,0.1',
      formats: ['parquet', 'chat', 'classifier'],
    });
    const spec = specFor(deps, 'formats-split', request, {
      kind: 'blob',
      path: 'telemetry/t.jsonl',
    });
    expect(spec.config).toMatchObject({ validation: 0.1, test: 0.1 });
    expect(spec.config.formats).toEqual(['jsonl', 'chat', 'classifier', 'parquet']);
    const outcome = await runBuild(deps, spec);
    expect(outcome).toMatchObject({ state: 'succeeded' });

    const p = buildPaths(spec.id);
    const manifest = JSON.parse((await deps.store.get(p.manifest))!.toString('utf8'));
    for (const f of [...FILES, 'README.md']) expect(Object.keys(manifest.outputs)).toContain(f);
    expect(manifest.split).toMatchObject({ train: 240, validation: 30, test: 30 });
    expect(manifest.split.byLabel.test).toEqual({ '0': 15, '1': 15 });
    expect(manifest.formats.failed).toEqual([]);
    const card = (await deps.store.get(`${p.datasetPrefix}README.md`))!.toString('utf8');
    expect(card).toMatch(/^---\n/);
    expect(card).toContain('data/test-00000-of-00001.parquet');

    const job = await runPipeline(t.path, join(t.dir, 'inproc'), spec.config, {
      pipeline: spec.pipeline,
      history: spec.history,
      judge: judgeFor(spec),
      batchSize: spec.judge.batchSize,
      quiet: true,
    });
    for (const f of FILES) {
      const blob = await deps.store.get(`${p.datasetPrefix}${f}`);
      expect(blob, f).not.toBeNull();
      expect(blob!.equals(await readFile(join(t.dir, 'inproc', f))), f).toBe(true);
      expect((job.manifest.outputs as Record<string, { sha256: string }>)[f]!.sha256).toBe(
        manifest.outputs[f].sha256,
      );
    }
  });

  it('takes SFT_FORMATS and SFT_SPLIT as the defaults of a build; a bad value names the setting', () => {
    const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
    const s = loadSettings({ ...base, SFT_FORMATS: 'parquet', SFT_SPLIT: '0.9,0.05,0.05' });
    const spec = buildSpecOf({
      id: 'from-settings',
      createdAt: '2026-11-25T00:00:00.000Z',
      createdBy: 'timer',
      request: {},
      defaults: s.defaults,
      source: s.source,
      judge: s.judge,
      minJudgedShare: s.minJudgedShare,
      shardBytes: s.shardBytes,
      maxShards: s.maxShards,
    });
    expect(spec.config).toMatchObject({
      validation: 0.05,
      test: 0.05,
      formats: ['jsonl', 'parquet'],
    });
    expect(() => loadSettings({ ...base, SFT_SPLIT: '0.9,0.05' })).toThrow(
      /SFT_SPLIT: expected 3 shares/,
    );
    expect(() => loadSettings({ ...base, SFT_FORMATS: 'xml' })).toThrow(
      /SFT_FORMATS: unknown format "xml"/,
    );
  });

  it.each([
    ['{"split": "0.9,0.2,0.05"}', 'split', 'shares sum to'],
    ['{"split": [0.5, 0.5]}', 'split', ''],
    ['{"formats": ["chat", "xml"]}', 'formats', ''],
  ])('POST /api/builds answers 400 naming the field for %s', async (body, field, text) => {
    const deps = testDeps();
    const req = new HttpRequest({
      method: 'POST',
      url: 'http://localhost:7071/api/builds',
      body: { string: body },
      headers: { 'content-type': 'application/json' },
    });
    const ctx = new InvocationContext({ invocationId: 't', functionName: 'startBuild' });
    const res = await createStartBuild(deps)(req, ctx);
    expect(res.status).toBe(400);
    const err = res.jsonBody as { message: string; issues: { field: string }[] };
    expect(err.issues.map((i) => i.field.split('.')[0])).toContain(field);
    expect(err.message).toContain(text);
    expect(await deps.store.list('builds/')).toEqual([]);
  });

  it('takes systemPrompt, labelWords, chatMaxTokens and license from the body over the settings', async () => {
    const deps = testDeps();
    const t = await telemetryFile(300, 5, []);
    await deps.store.ensureContainer();
    await deps.store.uploadFile('telemetry/s.jsonl', t.path);
    const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
    const s = loadSettings({
      ...base,
      SFT_SYSTEM_PROMPT: 'From the settings.',
      SFT_LABEL_WORDS: 'deep, shallow',
      SFT_CHAT_MAX_TOKENS: '40',
      SFT_LICENSE: 'Apache-2.0',
    });
    expect(s.defaults.dataset).toEqual({
      systemPrompt: 'From the settings.',
      labelWords: ['deep', 'shallow'],
      chatMaxTokens: 40,
      license: 'apache-2.0',
    });
    const request = BuildRequestSchema.parse({
      total: 100,
      formats: ['chat'],
      systemPrompt: 'Route it.',
      labelWords: ['think', 'quick'],
    });
    const spec = buildSpecOf({
      id: 'dataset-settings',
      createdAt: '2026-12-02T00:00:00.000Z',
      createdBy: 'http',
      request,
      defaults: s.defaults,
      source: { kind: 'blob', path: 'telemetry/s.jsonl' },
      judge: deps.settings.judge,
      minJudgedShare: deps.settings.minJudgedShare,
      shardBytes: deps.settings.shardBytes,
      maxShards: deps.settings.maxShards,
    });
    // The body's fields win; the settings fill the rest.
    expect(spec.config).toMatchObject({
      systemPrompt: 'Route it.',
      labelWords: ['think', 'quick'],
      chatMaxTokens: 40,
      license: 'apache-2.0',
    });
    expect(await runBuild(deps, spec)).toMatchObject({ state: 'succeeded' });
    const p = buildPaths(spec.id);
    const text = async (rel: string) =>
      (await deps.store.get(`${p.datasetPrefix}${rel}`))!.toString('utf8');
    const chat = (await text('chat/train.jsonl'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { messages: { role: string; content: string }[] });
    const excluded = (await text('chat/excluded.jsonl')).split('\n').filter(Boolean);
    expect(chat.length).toBeGreaterThan(0);
    expect(excluded.length).toBeGreaterThan(0);
    for (const c of chat) {
      expect(c.messages[0]).toEqual({ role: 'system', content: 'Route it.' });
      expect(['think', 'quick']).toContain(c.messages.at(-1)!.content);
    }
    for (const e of excluded) expect(JSON.parse(e)).toMatchObject({ limit: 40 });
    const manifest = JSON.parse(await text('manifest.json'));
    expect(manifest.formats.settings).toEqual({
      systemPrompt: 'Route it.',
      labelWords: ['think', 'quick'],
      chatMaxTokens: 40,
      license: 'apache-2.0',
    });
    const card = await text('README.md');
    expect(card).toContain('license: "apache-2.0"');
    expect(card).toContain('- Chat token limit: 40 tokens per example');
    expect(card).toContain('`think`, `quick`');
  }, 120_000);

  it.each([
    ['{"labelWords": ["same", "same"]}', 'labelWords', 'must differ'],
    ['{"labelWords": ["only"]}', 'labelWords', ''],
    ['{"chatMaxTokens": 0}', 'chatMaxTokens', 'positive integer'],
    ['{"chatMaxTokens": 2.5}', 'chatMaxTokens', 'positive integer'],
    ['{"license": "MIT License"}', 'license', 'SPDX-like'],
    ['{"systemPrompt": ""}', 'systemPrompt', 'must not be empty'],
    ['{"systemPrompt": 42}', 'systemPrompt', ''],
  ])('POST /api/builds answers 400 naming the dataset field for %s', async (body, field, text) => {
    const deps = testDeps();
    const req = new HttpRequest({
      method: 'POST',
      url: 'http://localhost:7071/api/builds',
      body: { string: body },
      headers: { 'content-type': 'application/json' },
    });
    const ctx = new InvocationContext({ invocationId: 't', functionName: 'startBuild' });
    const res = await createStartBuild(deps)(req, ctx);
    expect(res.status).toBe(400);
    const err = res.jsonBody as { message: string; issues: { field: string; message: string }[] };
    expect(err.issues.map((i) => i.field.split('.')[0])).toContain(field);
    expect(err.issues.map((i) => i.message).join('; ')).toContain(text);
    expect(await deps.store.list('builds/')).toEqual([]);
  });

  it('a bad dataset setting names the setting', () => {
    const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
    for (const [k, v, msg] of [
      ['SFT_LABEL_WORDS', 'fast,fast', /SFT_LABEL_WORDS: the two label words must differ/],
      ['SFT_LABEL_WORDS', 'one', /SFT_LABEL_WORDS: expected two words/],
      ['SFT_CHAT_MAX_TOKENS', '-5', /SFT_CHAT_MAX_TOKENS: must be a positive integer/],
      ['SFT_LICENSE', 'not a license', /SFT_LICENSE: must be an SPDX-like license id/],
    ] as const)
      expect(() => loadSettings({ ...base, [k]: v }), `${k}=${v}`).toThrow(msg);
  });

  it('refuses a bad split or format in the body, naming the field', () => {
    for (const [body, field] of [
      [{ split: '0.9,0.2,0.05' }, 'split'],
      [{ split: [1, 0, 0, 0] }, 'split'],
      [{ split: [0, 0.5, 0.5] }, 'split'],
      [{ formats: ['xml'] }, 'formats'],
    ] as const) {
      const r = BuildRequestSchema.safeParse(body);
      expect(r.success, JSON.stringify(body)).toBe(false);
      expect(String(r.error!.issues[0]!.path[0])).toBe(field);
    }
  });
});
