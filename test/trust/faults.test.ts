/**
 * Faults against real services: storage going away in the middle of a build (an
 * Azurite of our own, persisted in a directory, stopped and started again on the
 * same ports), a judge endpoint that hangs (the real `openai` SDK against the local
 * fake server), poison messages on every queue, and a corrupted batch result blob.
 * Each ends in a completed build with nothing lost, or in a clear failed state that a
 * new build recovers from; none hangs.
 */
import { mkdtemp, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type AzuriteHandle } from '../../adapters/local/azurite';
import { createJudge } from '../../adapters/judge/factory';
import { LocalQueueHost, type HostEvent } from '../../adapters/local/queue-host';
import { runPipeline } from '../../cli/jobs';
import { getOutcome, getPlan, listMarkers, startBuild } from '../../functions/lib/build-ops';
import { createDeps, type Deps } from '../../functions/lib/deps';
import { createFanin } from '../../functions/fan-in';
import { createJudgeBatch } from '../../functions/judge-batch';
import { judgeFor } from '../../functions/lib/judges';
import { createPlanBuild } from '../../functions/plan-build';
import { buildPaths, type BuildSpec, type Outcome } from '../../shared/build/spec';
import { poisonQueueOf } from '../../shared/build/settings';
import { startFakeOpenAI, oracle, type FakeOpenAI } from '../judge/fake-openai';
import { openaiSettings } from '../judge/helpers';
import {
  fastHostConfig,
  queueFunctions,
  runBuild,
  specFor,
  telemetryFile,
  uniqueSettings,
} from '../functions/harness';

const ctx = () =>
  new InvocationContext({
    invocationId: 'fault',
    functionName: 'fault',
    triggerMetadata: { dequeueCount: 1 },
  });

/** The dataset the in-process run gives for the same file and spec (signals judge). */
async function reference(path: string, spec: BuildSpec, out: string): Promise<string> {
  await runPipeline(path, out, spec.config, {
    pipeline: spec.pipeline,
    history: spec.history,
    judge: judgeFor(spec),
    batchSize: spec.judge.batchSize,
    quiet: true,
  });
  return readFile(join(out, 'train.jsonl'), 'utf8');
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | null | false>) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a manifest read back to assert on
const manifestOf = async (deps: Deps, id: string): Promise<any> =>
  JSON.parse((await deps.store.get(buildPaths(id).manifest))!.toString('utf8'));

describe('storage unavailable in the middle of a build', () => {
  let dir: string;
  let azurite: AzuriteHandle;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sftb-azurite-'));
    azurite = await startAzurite({ location: dir });
  });
  afterAll(async () => {
    await azurite.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('completes after Azurite is stopped and restarted, with nothing lost', async () => {
    const t = await telemetryFile(400, 31);
    const deps = createDeps(
      uniqueSettings({
        AzureWebJobsStorage: azurite.connectionString,
        SFT_SHARD_BYTES: '16384',
      }),
    );
    const spec = specFor(deps, 'outage', { total: 150 }, { kind: 'file', path: t.path });
    await startBuild(deps, spec);
    const events: HostEvent[] = [];
    const host = new LocalQueueHost({
      service: deps.clients.queues,
      functions: queueFunctions(deps),
      config: fastHostConfig(),
      leaseSeconds: 5,
      onEvent: (e) => events.push(e),
    });
    host.start();
    try {
      // Stop storage once some batches have committed and others have not.
      const plan = await waitFor('the plan', 30_000, () => getPlan(deps, spec.id));
      expect(plan.shards.length).toBeGreaterThan(4);
      await waitFor(
        'two batches',
        30_000,
        async () => (await listMarkers(deps, spec.id)).length >= 2,
      );
      expect(await getOutcome(deps, spec.id)).toBeNull();
      const blobPort = Number(new URL(azurite.blobEndpoint).port);
      const queuePort = Number(new URL(azurite.queueEndpoint).port);
      await azurite.stop();
      await new Promise((r) => setTimeout(r, 2_500));
      azurite = await startAzurite({ blobPort, queuePort, location: dir });
      const outcome = await waitFor('the outcome', 90_000, () => getOutcome(deps, spec.id));
      expect(outcome).toMatchObject({ state: 'succeeded', samplesLost: 0 });
    } finally {
      await host.stop();
    }
    const manifest = await manifestOf(deps, spec.id);
    expect(manifest.batches).toMatchObject({ failed: 0, samplesLost: 0 });
    expect((await deps.store.get(buildPaths(spec.id).train))!.toString()).toBe(
      await reference(t.path, spec, join(t.dir, 'ref')),
    );
  }, 150_000);
});

describe('a judge endpoint that hangs', () => {
  let fake: FakeOpenAI;
  let hangUntil = 0;
  beforeAll(async () => {
    fake = await startFakeOpenAI((body, n, req) =>
      Date.now() < hangUntil ? { delayMs: 20_000 } : oracle(body, n, req),
    );
  });
  afterAll(() => fake.close());

  const build = async (id: string, over: Record<string, unknown>) => {
    const t = await telemetryFile(60, 41);
    const judge = createJudge(openaiSettings(fake.url, { timeoutMs: 250, ...over }));
    const deps = createDeps(uniqueSettings(), { judgeFor: () => judge });
    const spec = specFor(deps, id, { total: 30 }, { kind: 'file', path: t.path });
    const started = Date.now();
    const outcome = await runBuild(deps, spec, { timeoutMs: 60_000 });
    return { deps, spec, outcome, ms: Date.now() - started, stats: judge.stats!() };
  };

  it('for a while: requests time out, are retried, and the build completes with every sample labelled', async () => {
    hangUntil = Date.now() + 1_500;
    const r = await build('hang-brief', { maxRetries: 10 });
    expect(r.outcome).toMatchObject({ state: 'succeeded', samplesLost: 0 });
    expect(r.stats.retries).toBeGreaterThan(0); // it did hang
    const manifest = await manifestOf(r.deps, r.spec.id);
    expect(manifest.judge.unlabeled).toBe(0);
    expect(manifest.judge.labelled).toBe(manifest.judge.samplesJudged);
  }, 90_000);

  it('for good: the build fails in bounded time saying why; a new build succeeds once it answers', async () => {
    hangUntil = Date.now() + 3_600_000;
    const r = await build('hang-forever', { maxRetries: 1 });
    expect(r.outcome.state).toBe('failed');
    expect(r.outcome.reason).toMatch(/no sample was judged|judged share/);
    expect(r.ms).toBeLessThan(45_000);
    const manifest = await manifestOf(r.deps, r.spec.id);
    expect(Object.keys(manifest.judge.unlabeledByCause).join(' ')).toMatch(/timed? ?out|timeout/i);
    hangUntil = 0;
    const again = await build('hang-over', { maxRetries: 1 });
    expect(again.outcome.state).toBe('succeeded');
  }, 90_000);
});

describe('poison messages', () => {
  it('on every queue are dropped without blocking the build or its result', async () => {
    const t = await telemetryFile(200, 51);
    const deps = createDeps(uniqueSettings());
    const spec = specFor(deps, 'poisoned', { total: 80 }, { kind: 'file', path: t.path });
    const q = deps.settings.queues;
    const garbage = [
      'not json at all',
      '{"kind":"shard","buildId":"no-such-build","shardId":"s00000"}',
      '{"kind":"shard","buildId":"poisoned","shardId":"../../etc"}',
      '{"kind":"fanin"}',
      '{"kind":"plan","buildId":"UPPER CASE"}',
      'x'.repeat(48_000),
      '[]',
      'null',
    ];
    for (const name of [q.plan, q.shards, q.fanin]) {
      const client = deps.clients.queues.getQueueClient(name);
      await client.createIfNotExists();
      for (const g of garbage) await client.sendMessage(g);
    }
    const events: HostEvent[] = [];
    const outcome = await runBuild(deps, spec, { events });
    expect(outcome).toMatchObject({ state: 'succeeded', samplesLost: 0 });
    expect(events.filter((e) => e.kind !== 'succeeded')).toEqual([]);
    for (const name of [q.plan, q.shards, q.fanin]) {
      const poison = deps.clients.queues.getQueueClient(poisonQueueOf(name));
      const peek = await poison.peekMessages().catch(() => ({ peekedMessageItems: [] }));
      expect(peek.peekedMessageItems).toEqual([]);
    }
    expect((await deps.store.get(buildPaths(spec.id).train))!.toString()).toBe(
      await reference(t.path, spec, join(t.dir, 'ref')),
    );
  }, 90_000);
});

describe('a corrupted batch result blob', () => {
  /** Plans and judges every batch by calling the handlers, stopping before the fan-in. */
  async function judged(id: string) {
    const t = await telemetryFile(300, 61);
    const deps = createDeps(uniqueSettings({ SFT_SHARD_BYTES: '16384' }));
    const spec = specFor(deps, id, { total: 120 }, { kind: 'file', path: t.path });
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: id }, ctx());
    const plan = (await getPlan(deps, id))!;
    for (const s of plan.shards)
      await createJudgeBatch(deps)({ kind: 'shard', buildId: id, shardId: s.id }, ctx());
    return { t, deps, spec, plan };
  }

  it('is judged again by the fan-in: the build completes with the dataset a clean build gives', async () => {
    const { t, deps, spec, plan } = await judged('corrupt');
    const p = buildPaths(spec.id);
    const sid = plan.shards[1]!.id;
    const good = (await deps.store.get(p.rows(sid)))!.toString();
    await deps.store.put(p.rows(sid), good.slice(0, Math.floor(good.length / 2)) + '\u0000garbage');
    await deps.store.put(p.quarantine(plan.shards[2]!.id), '{"line": "seven"}\n');
    await createFanin(deps)({ kind: 'fanin', buildId: spec.id }, ctx());
    const outcome = (await getOutcome(deps, spec.id)) as Outcome;
    expect(outcome).toMatchObject({ state: 'succeeded', samplesLost: 0 });
    const manifest = await manifestOf(deps, spec.id);
    expect(manifest.batches.rejudged).toEqual([
      { shardId: sid, cause: expect.stringMatching(/is not JSON/) },
      { shardId: plan.shards[2]!.id, cause: expect.stringMatching(/quarantine line 1/) },
    ]);
    expect((await deps.store.get(p.rows(sid)))!.toString()).toBe(good);
    expect((await deps.store.get(p.train))!.toString()).toBe(
      await reference(t.path, spec, join(t.dir, 'ref')),
    );
  }, 90_000);

  it('with its source changed too, fails the build naming the source; a new build succeeds', async () => {
    const { t, deps, spec, plan } = await judged('corrupt-lost');
    const p = buildPaths(spec.id);
    const sid = plan.shards[0]!.id;
    await deps.store.put(p.rows(sid), '{"not": "a row"}\n');
    // The source changed since the plan (a shard is a reference into it): nothing to
    // judge again from.
    const { mtime } = await stat(t.path);
    await utimes(t.path, mtime, new Date(mtime.getTime() + 60_000));
    await createFanin(deps)({ kind: 'fanin', buildId: spec.id }, ctx());
    const outcome = (await getOutcome(deps, spec.id))!;
    expect(outcome.state).toBe('failed');
    expect(outcome.reason).toContain(`results of ${sid} are corrupt`);
    expect(outcome.reason).toContain(`the telemetry file ${t.path} changed`);
    expect((await manifestOf(deps, spec.id)).status).toBe('failed');

    const again = specFor(deps, 'corrupt-rebuilt', { total: 120 }, { kind: 'file', path: t.path });
    expect(await runBuild(deps, again)).toMatchObject({ state: 'succeeded' });
  }, 90_000);
});
