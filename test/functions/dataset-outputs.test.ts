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
