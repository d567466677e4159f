/**
 * A batch whose judge always fails: retried by the queue up to maxDequeueCount,
 * then recorded failed with the samples it cost; the build completes or fails by
 * the minimum judged share, and the status and manifest both say so.
 */
import { stat } from 'node:fs/promises';
import { InvocationContext } from '@azure/functions';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlanBuild } from '../../functions/plan-build';
import { createShardPoison } from '../../functions/stage-poison';
import { getPlan, readStatus, startBuild } from '../../functions/lib/build-ops';
import type { HostEvent } from '../../adapters/local/queue-host';
import { createDeps, type Deps } from '../../functions/lib/deps';
import { BatchFailureSchema, buildPaths, shardCount, shardIdOf } from '../../shared/build/spec';
import { failingFor, runBuild, specFor, telemetryFile, uniqueSettings } from './harness';
import { PANEL_JUDGE } from '../../functions/lib/deps';
import { startFakeOpenAI, type FakeOpenAI } from '../judge/fake-openai';

async function build(minShare: string) {
  const t = await telemetryFile(400, 21);
  const { size } = await stat(t.path);
  const settings = uniqueSettings({ SFT_MIN_JUDGED_SHARE: minShare });
  expect(shardCount(size, settings.shardBytes, settings.maxShards)).toBeGreaterThanOrEqual(3);
  const deps: Deps = createDeps(settings, { judgeFor: failingFor('s00001', () => deps) });
  const spec = specFor(
    deps,
    `flaky-${minShare.replace('.', '')}`,
    { total: 100 },
    { kind: 'file', path: t.path },
  );
  const events: HostEvent[] = [];
  const outcome = await runBuild(deps, spec, { events });
  const p = buildPaths(spec.id);
  const failure = await deps.store.getJson(p.failed(shardIdOf(1)), BatchFailureSchema);
  const manifest = JSON.parse((await deps.store.get(p.manifest))!.toString('utf8'));
  const status = (await readStatus(deps, spec.id))!;
  const shards = (await getPlan(deps, spec.id))!.shards.length;
  return { deps, spec, outcome, events, failure, manifest, status, shards };
}

describe('a batch whose judge always fails', () => {
  it('is retried to maxDequeueCount, recorded failed, and the build publishes above the minimum share', async () => {
    const r = await build('0.5');
    const attempts = r.events.filter((e) => e.fn === 'judgeBatch' && e.kind === 'failed');
    expect(attempts.map((e) => e.dequeueCount)).toEqual([1, 2, 3, 4]);
    expect(r.failure).toMatchObject({ shardId: 's00001', attempts: 5, via: 'retries-exhausted' });
    expect(r.failure!.samplesLost).toBeGreaterThan(0);
    expect(r.failure!.reason).toMatch(/judge endpoint unavailable \(503\)/);

    expect(r.outcome).toMatchObject({ state: 'succeeded', samplesLost: r.failure!.samplesLost });
    expect(r.manifest.status).toBe('succeeded');
    expect(r.manifest.batches).toMatchObject({
      planned: r.shards,
      done: r.shards - 1,
      failed: 1,
      samplesLost: r.failure!.samplesLost,
      failedShards: [{ shardId: 's00001', samplesLost: r.failure!.samplesLost }],
    });
    expect(r.manifest.batches.judgedShare).toBeLessThan(1);
    expect(r.status).toMatchObject({
      state: 'succeeded',
      progress: { failed: 1, pending: 0 },
      counts: { samplesLost: r.failure!.samplesLost },
    });
    expect(r.status.errors[0]).toMatchObject({ shardId: 's00001', stage: 'judge' });
  });

  it('fails the build below the minimum judged share; status and manifest say why', async () => {
    const r = await build('0.99');
    expect(r.outcome.state).toBe('failed');
    expect(r.outcome.reason).toMatch(/judged share .* is below the minimum 0\.99/);
    expect(r.manifest).toMatchObject({ status: 'failed', batches: { failed: 1 } });
    expect(r.manifest.reason).toBe(r.outcome.reason);
    expect(r.status.state).toBe('failed');
    expect(r.status.errors.map((e) => e.stage)).toEqual(['judge', 'fanin']);
    expect(r.status.outputs).toEqual({
      manifest:
        r.deps.store.url(buildPaths(r.spec.id).manifest) === ''
          ? ''
          : buildPaths(r.spec.id).manifest,
    });
    expect(await r.deps.store.exists(buildPaths(r.spec.id).train)).toBe(false);
    expect(await r.deps.store.exists('datasets/latest.json')).toBe(false);
  });
});

describe('a shard message on the poison queue', () => {
  it('becomes a failed marker with the samples its shard held', async () => {
    const t = await telemetryFile(100, 22);
    const deps = createDeps(uniqueSettings());
    const spec = specFor(deps, 'poisoned', { total: 20 }, { kind: 'file', path: t.path });
    const ctx = new InvocationContext({
      invocationId: 'x',
      functionName: 'x',
      triggerMetadata: { dequeueCount: 1 },
    });
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx);
    const plan = (await getPlan(deps, spec.id))!;
    await createShardPoison(deps)(
      { kind: 'shard', buildId: spec.id, shardId: plan.shards[0]!.id },
      ctx,
    );
    const failure = await deps.store.getJson(
      buildPaths(spec.id).failed(plan.shards[0]!.id),
      BatchFailureSchema,
    );
    expect(failure).toMatchObject({ via: 'poison-queue', attempts: 5 });
    expect(failure!.samplesLost).toBeGreaterThan(0);
  });
});

describe('a batch whose judge fails with a permanent error', () => {
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(() => fake.close());

  it('is recorded failed on its first delivery (no retry), with the cause', async () => {
    // A panel of the LLM judge (the local OpenAI wire server) and a replay judge whose
    // recorded-labels file does not exist: every judge call rejects with an
    // InputFileError, a PermanentError that no redelivery can cure.
    const t = await telemetryFile(60, 23);
    const missing = join(t.dir, 'no-such-labels.jsonl');
    const settings = uniqueSettings({ SFT_JUDGE: PANEL_JUDGE });
    const env = {
      JUDGE_SETTINGS: JSON.stringify({
        kind: 'panel',
        judges: [
          {
            kind: 'openai',
            model: 'gpt-test',
            baseURL: `${fake.url}/v1`,
            apiKey: 'sk-test',
            cache: { enabled: false },
          },
          { kind: 'replay', source: missing },
        ],
      }),
    };
    const deps = createDeps(settings, {}, env);
    const spec = specFor(deps, 'permanent-judge', { total: 20 }, { kind: 'file', path: t.path });
    const events: HostEvent[] = [];
    const outcome = await runBuild(deps, spec, { events });

    const judged = events.filter((e) => e.fn === 'judgeBatch');
    expect(judged.filter((e) => e.kind !== 'succeeded')).toEqual([]);
    expect(judged.every((e) => e.dequeueCount === 1)).toBe(true);
    const plan = (await getPlan(deps, spec.id))!;
    for (const shard of plan.shards) {
      const failure = await deps.store.getJson(
        buildPaths(spec.id).failed(shard.id),
        BatchFailureSchema,
      );
      expect(failure).toMatchObject({ shardId: shard.id, attempts: 1, via: 'permanent' });
      expect(failure!.reason).toContain(`input file not found: ${missing}`);
      expect(failure!.samplesLost).toBeGreaterThan(0);
    }
    expect(outcome.state).toBe('failed');
    expect(outcome.reason).toBe('no sample was judged');
  });
});
