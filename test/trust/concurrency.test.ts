/**
 * Two builds at once, in the same container and on the same queues, served by two
 * host instances: each publishes its own dataset (the one it gives when run alone),
 * under its own prefix, and neither reads the other's batches. And one build twice at
 * once (two planners, two `run`s of one id): the dataset one run gives, every row once.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { describe, expect, inject, it } from 'vitest';
import { LocalQueueHost } from '../../adapters/local/queue-host';
import { runPipeline } from '../../cli/jobs';
import { runLocal } from '../../cli/local-runner';
import { getOutcome, getPlan, startBuild } from '../../functions/lib/build-ops';
import type { Deps } from '../../functions/lib/deps';
import { judgeFor } from '../../functions/lib/judges';
import { createPlanBuild } from '../../functions/plan-build';
import { buildPaths, type BuildSpec } from '../../shared/build/spec';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { DEFAULT_HISTORY } from '../../shared/samples/assemble';
import {
  fastHostConfig,
  queueFunctions,
  specFor,
  telemetryFile,
  testDeps,
} from '../functions/harness';

const uniqueEnv = () => {
  const tag = randomUUID().slice(0, 8);
  return {
    SFT_CONTAINER: `c-${tag}`,
    SFT_PLAN_QUEUE: `cp-${tag}`,
    SFT_SHARD_QUEUE: `cs-${tag}`,
    SFT_FANIN_QUEUE: `cf-${tag}`,
    SFT_RUNNER_LEASE_SECONDS: '5',
  };
};

async function alone(path: string, spec: BuildSpec, out: string) {
  await runPipeline(path, out, spec.config, {
    pipeline: spec.pipeline,
    history: spec.history,
    judge: judgeFor(spec),
    batchSize: spec.judge.batchSize,
    quiet: true,
  });
  return readFile(join(out, 'train.jsonl'), 'utf8');
}

describe('two builds at once', () => {
  it('keep separate outputs, each equal to the build run alone', async () => {
    const deps = testDeps({ SFT_SHARD_BYTES: '16384' });
    const a = await telemetryFile(250, 71);
    const b = await telemetryFile(250, 72);
    const specA = specFor(deps, 'twin-a', { total: 120, seed: 1 }, { kind: 'file', path: a.path });
    const specB = specFor(
      deps,
      'twin-b',
      { pipeline: 'conversation', total: 200, ratio: 0.7, seed: 2 },
      { kind: 'file', path: b.path },
    );
    await Promise.all([startBuild(deps, specA), startBuild(deps, specB)]);
    const hosts = [0, 1].map(
      () =>
        new LocalQueueHost({
          service: deps.clients.queues,
          functions: queueFunctions(deps),
          config: fastHostConfig(),
          leaseSeconds: 5,
        }),
    );
    hosts.forEach((h) => h.start());
    try {
      const deadline = Date.now() + 90_000;
      while (!((await getOutcome(deps, specA.id)) && (await getOutcome(deps, specB.id)))) {
        if (Date.now() > deadline) throw new Error('the builds did not finish in time');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await Promise.all(hosts.map((h) => h.stop()));
    }
    for (const [spec, t] of [
      [specA, a],
      [specB, b],
    ] as const) {
      const p = buildPaths(spec.id);
      expect(await getOutcome(deps, spec.id)).toMatchObject({ state: 'succeeded', samplesLost: 0 });
      const manifest = JSON.parse((await deps.store.get(p.manifest))!.toString());
      expect(manifest.build.id).toBe(spec.id);
      expect(manifest.selected.total).toBe(spec.config.total);
      expect((await deps.store.get(p.train))!.toString()).toBe(
        await alone(t.path, spec, join(t.dir, 'alone')),
      );
    }
    const latest = JSON.parse((await deps.store.get('datasets/latest.json'))!.toString());
    expect([specA.id, specB.id]).toContain(latest.buildId);
  }, 120_000);
});

const ctx = () =>
  new InvocationContext({
    invocationId: 'test',
    functionName: 'planBuild',
    triggerMetadata: { dequeueCount: 1 },
  });

/** Generated telemetry uploaded as a blob: its chunks arrive as the network cuts them. */
async function blobTelemetry(deps: Deps, conversations: number, seed: number) {
  const t = await telemetryFile(conversations, seed);
  await deps.store.ensureContainer();
  await deps.store.uploadFile('sources/t.jsonl', t.path);
  const lines = (await readFile(t.path, 'utf8')).split('\n').filter((l) => l !== '').length;
  return { ...t, lines, source: { kind: 'blob', path: 'sources/t.jsonl' } as const };
}

const queueDepth = async (deps: Deps) =>
  (await deps.clients.queues.getQueueClient(deps.settings.queues.shards).getProperties())
    .approximateMessagesCount ?? 0;

describe('two plans of one build at once', () => {
  it('write the shards one planner writes alone, count every row once and queue each shard once', async () => {
    // Shards of about 1.5 MiB: several, each staged in more than one block.
    const env = { SFT_SHARD_BYTES: '1572864' };
    const alone = testDeps(env);
    const twin = testDeps(env);
    const [a, b] = await Promise.all([
      blobTelemetry(alone, 4_000, 81),
      blobTelemetry(twin, 4_000, 81),
    ]);
    const specAlone = specFor(alone, 'plan-twin', { total: 100 }, a.source);
    const specTwin = specFor(twin, 'plan-twin', { total: 100 }, b.source);
    await Promise.all([
      alone.store.put(buildPaths(specAlone.id).spec, JSON.stringify(specAlone)),
      twin.store.put(buildPaths(specTwin.id).spec, JSON.stringify(specTwin)),
    ]);
    await createPlanBuild(alone)({ kind: 'plan', buildId: specAlone.id }, ctx());
    const planner = createPlanBuild(twin);
    await Promise.all([
      planner({ kind: 'plan', buildId: specTwin.id }, ctx()),
      planner({ kind: 'plan', buildId: specTwin.id }, ctx()),
    ]);
    const planAlone = (await getPlan(alone, specAlone.id))!;
    const planTwin = (await getPlan(twin, specTwin.id))!;
    expect(planAlone.shards.length).toBeGreaterThan(4);
    expect(planAlone.shards.every((s) => s.bytes > 1 << 20)).toBe(true);
    // The same shards; each plan names its own blob's ETag (two uploads).
    expect(planTwin.source?.kind).toBe('blob');
    expect({ ...planTwin, source: undefined }).toEqual({ ...planAlone, source: undefined });
    expect(planTwin.rows).toBe(a.lines);
    const p = buildPaths(specTwin.id);
    // Shards reference the source (runs in plan.json or index blobs): no copy of it.
    expect(await twin.store.list(p.shard('').replace(/\.jsonl$/, ''))).toEqual([]);
    for (const s of planAlone.shards) {
      const one = await alone.store.get(p.shardIndex(s.id));
      const two = await twin.store.get(p.shardIndex(s.id));
      expect(two === null).toBe(one === null);
      if (one && two) expect(two.equals(one)).toBe(true);
    }
    expect(await queueDepth(twin)).toBe(planAlone.shards.length);
    // A later duplicate of the plan message finds the plan queued: nothing more.
    await planner({ kind: 'plan', buildId: specTwin.id }, ctx());
    expect(await queueDepth(twin)).toBe(planAlone.shards.length);
  }, 120_000);
});

describe('two runs of one build at once (the local runner, one storage)', () => {
  it('both end with the dataset one run gives, every row counted once', async () => {
    const t = await telemetryFile(4_000, 83);
    const lines = (await readFile(t.path, 'utf8')).split('\n').filter((l) => l !== '').length;
    // Shards of about 1.5 MiB, each staged in more than one block.
    const env = { ...uniqueEnv(), SFT_SHARD_BYTES: '1572864' };
    const config = parseBalanceConfig({ total: 600, seed: 4 });
    const run = (out: string, buildId: string) =>
      runLocal({
        input: t.path,
        out: join(t.dir, out),
        pipeline: 'session',
        history: DEFAULT_HISTORY,
        config,
        storage: inject('azurite').connectionString,
        buildId,
        quiet: true,
        env,
      });
    const [one, two] = await Promise.all([run('one', 'run-twin'), run('two', 'run-twin')]);
    const single = await run('single', 'run-single');
    for (const r of [one, two, single]) expect(r.outcome.state).toBe('succeeded');
    const train = (d: string) => readFile(join(t.dir, d, 'train.jsonl'));
    const expected = await train('single');
    expect((await train('one')).equals(expected)).toBe(true);
    expect((await train('two')).equals(expected)).toBe(true);
    for (const d of ['one', 'two', 'single']) {
      const m = JSON.parse(await readFile(join(t.dir, d, 'manifest.json'), 'utf8'));
      expect(m.telemetry.rows).toBe(lines);
      expect(m.pipeline.assembly.duplicateTurns).toBe(0);
    }
  }, 240_000);
});
