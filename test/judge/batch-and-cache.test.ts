/**
 * Batch API mode through the real SDK (files, batches, failed lines resubmitted,
 * files deleted) and the verdict cache in the real Azurite (hits on a second build,
 * replay from the cache).
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createBlobStore } from '../../adapters/storage/blob-store';
import { containerBlobStore } from '../../adapters/storage/judge-cache';
import { createJudge, llmJudgeFactory } from '../../adapters/judge/factory';
import type { Verdict } from '../../shared/judge/types';
import {
  oracleLabel,
  samplesOf,
  startFakeOpenAI,
  type ChatBody,
  type FakeOpenAI,
} from './fake-openai';
import { input, inputs, openaiSettings, staticCredential } from './helpers';

let fake: FakeOpenAI;
beforeEach(async () => {
  fake = await startFakeOpenAI();
});
afterEach(async () => {
  await fake.close();
});

const labels = (vs: Verdict[]) => vs.map((v) => v.label);
const expected = (n: number) => inputs(n).map((s) => oracleLabel(s.userMessage));

/** The JSONL request files the client uploaded, in order. */
const uploads = () =>
  fake.requests
    .filter((r) => r.method === 'POST' && r.path.endsWith('/files'))
    .map((r) =>
      (r.body as Map<string, { text: string }>)
        .get('file')!
        .text.trim()
        .split('\n')
        .map(
          (l) => JSON.parse(l) as { custom_id: string; method: string; url: string; body: unknown },
        ),
    );

const batchSettings = (over: Record<string, unknown> = {}) =>
  openaiSettings(fake.url, {
    mode: 'batch',
    batchSize: 2,
    batch: { pollIntervalMs: 5, maxRounds: 3, ...over },
  });

describe('Batch API mode', () => {
  it('submits, polls, downloads, resubmits only the failed lines, and deletes every file', async () => {
    fake.batchLine = (customId, batchNumber) =>
      batchNumber === 1 && customId === 'r2' ? 500 : 200;
    const judge = createJudge(batchSettings());
    const vs = await judge.judge(inputs(6));
    expect(labels(vs)).toEqual(expected(6));
    expect(fake.batchesCreated).toBe(2);
    const [first, second] = uploads();
    expect(first!.map((l) => l.custom_id)).toEqual(['r1', 'r2', 'r3']);
    expect(second!.map((l) => l.custom_id)).toEqual(['r2']);
    expect(first![0]).toMatchObject({ method: 'POST', url: '/v1/chat/completions' });
    expect(samplesOf(first![0]!.body as ChatBody).samples).toHaveLength(2);
    expect(fake.files.size).toBe(0); // inputs, outputs and error files all deleted
    // Files a dead run would leave behind expire by themselves (two weeks by default).
    const upload = fake.requests.find((r) => r.method === 'POST' && r.path.endsWith('/files'))!;
    const parts = upload.body as Map<string, { text: string }>;
    expect(parts.get('expires_after[anchor]')?.text).toBe('created_at');
    expect(parts.get('expires_after[seconds]')?.text).toBe('1209600');
    const create = fake.requests.find((r) => r.method === 'POST' && r.path.endsWith('/batches'))!;
    expect(create.body).toMatchObject({
      output_expires_after: { anchor: 'created_at', seconds: 1209600 },
    });
    const s = judge.stats!();
    expect(s.batchCalls).toBe(4); // three lines, one of them twice
    expect(s.labelled).toBe(6);
  });

  it('speaks Azure Global Batch: /openai paths, api-version, deployment as the model, Entra token', async () => {
    const judge = createJudge(
      {
        ...batchSettings(),
        provider: 'azure',
        baseURL: undefined,
        apiKey: undefined,
        endpoint: fake.url,
        model: 'gpt-4o-mini-batch',
      },
      { credential: staticCredential('entra-batch') },
    );
    expect(labels(await judge.judge(inputs(4)))).toEqual(expected(4));
    const create = fake.requests.find((r) => r.method === 'POST' && r.path.endsWith('/batches'))!;
    expect(create.path).toBe('/openai/batches');
    expect(create.query.get('api-version')).toBe('2024-10-21');
    expect(create.headers.authorization).toBe('Bearer entra-batch');
    expect((create.body as { endpoint: string }).endpoint).toBe('/chat/completions');
    const [file] = uploads();
    expect(file![0]).toMatchObject({
      url: '/chat/completions',
      body: { model: 'gpt-4o-mini-batch' },
    });
    expect(fake.files.size).toBe(0);
  });

  it('omits temperature and logprobs when configured (reasoning models refuse them)', async () => {
    const judge = createJudge(openaiSettings(fake.url, { temperature: null, logprobs: false }));
    const vs = await judge.judge(inputs(2));
    const body = fake.chats()[0]!.body as Record<string, unknown>;
    expect(body).not.toHaveProperty('temperature');
    expect(body).not.toHaveProperty('logprobs');
    expect(vs.every((v) => v.label !== null && v.confidence === undefined)).toBe(true);
  });

  it('splits a round into files under the per-file request limit', async () => {
    const judge = createJudge(batchSettings({ maxRequestsPerFile: 2 }));
    expect(labels(await judge.judge(inputs(6)))).toEqual(expected(6));
    expect(uploads().map((f) => f.length)).toEqual([2, 1]);
    expect(fake.batchesCreated).toBe(2);
  });

  it('records lines that keep failing unlabeled with the cause after the last round', async () => {
    fake.batchLine = (customId) => (customId === 'r1' ? 503 : 200);
    const judge = createJudge(batchSettings({ maxRounds: 2 }));
    const vs = await judge.judge(inputs(4));
    expect(labels(vs)).toEqual([null, null, ...expected(4).slice(2)]);
    expect(vs[0]!.label === null && vs[0]!.error).toMatch(/HTTP 503.*after 2 batch rounds/);
    expect(fake.batchesCreated).toBe(2);
  });
});

describe('Batch API resume', () => {
  it('waits out a transient polling error', async () => {
    let polls = 0;
    const judge = createJudge(batchSettings(), {
      clock: {
        now: () => Date.now(),
        random: () => 0.5,
        sleep: (ms) => {
          // The first poll fails with a 503; later ones succeed.
          fake.failRetrieve = ++polls === 1 ? 503 : null;
          return new Promise((r) => setTimeout(r, ms));
        },
      },
    });
    expect(labels(await judge.judge(inputs(2)))).toEqual(expected(2));
    expect(polls).toBeGreaterThan(1);
  });

  it('a run that dies while waiting is resumed on its submitted job, not paid again', async () => {
    const { connectionString } = inject('azurite');
    const service = BlobServiceClient.fromConnectionString(connectionString);
    const name = `judge-${randomUUID()}`;
    const cacheStore = (c: string) =>
      containerBlobStore(service.getContainerClient(`${name}-${c}`));
    fake.failRetrieve = 403; // the first run's polling fails for good: it dies
    const first = createJudge(batchSettings(), { cacheStore });
    await expect(first.judge(inputs(4))).rejects.toThrow();
    expect(fake.batchesCreated).toBe(1);
    fake.failRetrieve = null;
    const second = createJudge(batchSettings(), { cacheStore });
    expect(labels(await second.judge(inputs(4)))).toEqual(expected(4));
    expect(fake.batchesCreated).toBe(1); // reattached, nothing submitted again
    expect(fake.files.size).toBe(0);
    // And the verdicts are cached now: a third run makes no request at all.
    const before = fake.requests.length;
    const third = createJudge(batchSettings(), { cacheStore });
    expect(labels(await third.judge(inputs(4)))).toEqual(expected(4));
    expect(fake.requests.length).toBe(before);
  });
});

describe('verdict cache in blob storage', () => {
  const store = () => {
    const { connectionString } = inject('azurite');
    const name = `judge-${randomUUID()}`;
    return {
      name,
      service: BlobServiceClient.fromConnectionString(connectionString),
      factory: (container: string) =>
        containerBlobStore(
          BlobServiceClient.fromConnectionString(connectionString).getContainerClient(
            `${name}-${container}`.slice(0, 63),
          ),
        ),
    };
  };

  it('a second build pays for nothing: every sample is a cache hit', async () => {
    const s = store();
    const settings = openaiSettings(fake.url, { batchSize: 3 });
    const first = createJudge(settings, { cacheStore: s.factory });
    const a = await first.judge(inputs(7));
    const calls = fake.chats().length;
    expect(calls).toBe(3);
    const second = createJudge(settings, { cacheStore: s.factory });
    const b = await second.judge(inputs(7));
    expect(fake.chats()).toHaveLength(calls);
    expect(b).toEqual(a);
    expect(second.stats!()).toMatchObject({ cacheHits: 7, calls: 0, samplesJudged: 7 });
  });

  it('is keyed by model: another model misses', async () => {
    const s = store();
    await createJudge(openaiSettings(fake.url), { cacheStore: s.factory }).judge(inputs(2));
    const other = createJudge(openaiSettings(fake.url, { model: 'gpt-other' }), {
      cacheStore: s.factory,
    });
    await other.judge(inputs(2));
    expect(other.stats!().cacheHits).toBe(0);
    expect(fake.chats()).toHaveLength(2);
  });

  it('returns verdicts even when the cache cannot be written, and counts the failures', async () => {
    const broken = () => ({
      get: () => Promise.resolve(null),
      put: () => Promise.reject(new Error('storage unavailable')),
    });
    const judge = createJudge(openaiSettings(fake.url), { cacheStore: broken });
    expect(labels(await judge.judge(inputs(3)))).toEqual(expected(3));
    expect(judge.stats!().cacheWriteErrors).toBe(3);
  });

  it('never caches a failure', async () => {
    const s = store();
    fake.chat = () => ({ status: 500, json: { error: { message: 'down' } } });
    const settings = openaiSettings(fake.url, { maxRetries: 0 });
    await createJudge(settings, { cacheStore: s.factory }).judge(inputs(1));
    const again = createJudge(settings, { cacheStore: s.factory });
    await again.judge(inputs(1));
    expect(again.stats!().cacheHits).toBe(0);
  });

  it("works over the build's BlobStore, as the functions' judge table entry", async () => {
    const service = BlobServiceClient.fromConnectionString(inject('azurite').connectionString);
    const prefix = `jb-${randomUUID()}`;
    const storeFor = (c: string) => createBlobStore(service, `${prefix}-${c}`.slice(0, 63));
    const factory = llmJudgeFactory(openaiSettings(fake.url, { batchSize: 4 }), storeFor);
    const a = factory();
    await a.judge(inputs(3));
    const b = factory();
    await b.judge(inputs(3));
    expect(a.stats!()).toMatchObject({ calls: 1, cacheHits: 0 });
    expect(b.stats!()).toMatchObject({ cacheHits: 3, calls: 0 });
  });

  it('replays labels from the cache without a call, and leaves unknown samples unlabeled', async () => {
    const s = store();
    const built = await createJudge(openaiSettings(fake.url), { cacheStore: s.factory }).judge(
      inputs(2),
    );
    const calls = fake.chats().length;
    const replay = createJudge(
      { kind: 'replay', cacheModel: 'gpt-test', cacheContainer: 'judge-cache' },
      { cacheStore: s.factory },
    );
    const vs = await replay.judge([...inputs(2), input('new:1', 'something never judged')]);
    expect(labels(vs)).toEqual([...labels(built), null]);
    expect(fake.chats()).toHaveLength(calls);
  });
});
