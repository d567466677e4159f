/**
 * At-least-once delivery: every message sent twice gives a byte-identical dataset
 * (and manifest), and a redelivered batch finds its result instead of judging again.
 */
import { InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import type { HostEvent } from '../../adapters/local/queue-host';
import type { QueueSender } from '../../adapters/storage/queue';
import { createDeps } from '../../functions/lib/deps';
import { createFanin } from '../../functions/fan-in';
import { createJudgeBatch } from '../../functions/judge-batch';
import { createPlanBuild, planQueuedOf } from '../../functions/plan-build';
import { startBuild, getPlan } from '../../functions/lib/build-ops';
import { buildPaths, type BuildSpec } from '../../shared/build/spec';
import { createSignalsJudge } from '../../shared/judge/signals';
import type { Judge } from '../../shared/judge/types';
import { runBuild, specFor, telemetryFile, uniqueSettings } from './harness';

const ctx = (dequeueCount = 1) =>
  new InvocationContext({
    invocationId: 'test',
    functionName: 'test',
    triggerMetadata: { dequeueCount },
  });

describe('every message delivered twice', () => {
  it('gives a byte-identical dataset and manifest, each batch counted once', async () => {
    const t = await telemetryFile(500, 11);
    const source = { kind: 'file', path: t.path } as const;

    const once = createDeps(uniqueSettings());
    const specOnce = specFor(once, 'twice-test', { total: 150 }, source);
    expect((await runBuild(once, specOnce)).state).toBe('succeeded');

    const base = createDeps(uniqueSettings());
    const doubled: QueueSender = {
      async send(queue, message, opts) {
        await base.queues.send(queue, message, opts);
        await base.queues.send(queue, message, opts);
      },
    };
    const twice = { ...base, queues: doubled };
    const events: HostEvent[] = [];
    const specTwice = specFor(twice, 'twice-test', { total: 150 }, source);
    expect((await runBuild(twice, specTwice, { events })).state).toBe('succeeded');

    const p = buildPaths('twice-test');
    const plan = (await getPlan(twice, 'twice-test'))!;
    const judged = events.filter((e) => e.fn === 'judgeBatch' && e.kind === 'succeeded').length;
    expect(judged).toBeGreaterThanOrEqual(2 * plan.shards.length);
    expect((await twice.store.get(p.train))!.equals((await once.store.get(p.train))!)).toBe(true);
    expect((await twice.store.get(p.manifest))!.equals((await once.store.get(p.manifest))!)).toBe(
      true,
    );
    const manifest = JSON.parse((await twice.store.get(p.manifest))!.toString('utf8'));
    expect(manifest.batches.done).toBe(plan.shards.length);
    expect(manifest.judge.samplesJudged).toBe(manifest.pipeline.assembly.complete);
  });
});

describe('a redelivered message', () => {
  async function planned(judge?: Judge) {
    const deps = createDeps(uniqueSettings(), judge ? { judgeFor: () => judge } : {});
    const t = await telemetryFile(200, 12);
    const spec: BuildSpec = specFor(
      deps,
      'redeliver',
      { total: 50 },
      { kind: 'file', path: t.path },
    );
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx());
    return { deps, spec, plan: (await getPlan(deps, spec.id))! };
  }

  it('does not judge a batch again once its result is committed', async () => {
    let calls = 0;
    const signals = createSignalsJudge();
    const counting: Judge = {
      name: 'counting',
      judge: (batch) => {
        calls++;
        return signals.judge(batch);
      },
    };
    const { deps, spec, plan } = await planned(counting);
    const shardId = plan.shards[0]!.id;
    const p = buildPaths(spec.id);
    const handler = createJudgeBatch(deps);
    await handler({ kind: 'shard', buildId: spec.id, shardId }, ctx(1));
    const afterFirst = calls;
    const rows = await deps.store.get(p.rows(shardId));
    const marker = await deps.store.get(p.done(shardId));
    expect(afterFirst).toBeGreaterThan(0);
    await handler({ kind: 'shard', buildId: spec.id, shardId }, ctx(2));
    expect(calls).toBe(afterFirst);
    expect((await deps.store.get(p.rows(shardId)))!.equals(rows!)).toBe(true);
    expect((await deps.store.get(p.done(shardId)))!.equals(marker!)).toBe(true);
  });

  it('re-plans to the same shards and queues only the batches without a result', async () => {
    const { deps, spec, plan } = await planned();
    const p = buildPaths(spec.id);
    // Shards are references into the source: the plan, never a copy of the telemetry.
    expect(await deps.store.list(`${p.plan.replace(/plan\.json$/, '')}shards/`)).toEqual([]);
    const before = (await deps.store.get(p.plan))!;
    await createJudgeBatch(deps)(
      { kind: 'shard', buildId: spec.id, shardId: plan.shards[0]!.id },
      ctx(),
    );
    const queue = deps.clients.queues.getQueueClient(deps.settings.queues.shards);
    const depth0 = (await queue.getProperties()).approximateMessagesCount!;
    // Every batch was queued (plan.queued): a redelivery queues nothing more.
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx(2));
    expect((await queue.getProperties()).approximateMessagesCount).toBe(depth0);
    // A planner that stopped after recording the plan, before it was all queued.
    await deps.clients.blobs
      .getContainerClient(deps.settings.container)
      .deleteBlob(planQueuedOf(spec.id));
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx(2));
    expect((await queue.getProperties()).approximateMessagesCount).toBe(
      depth0 + plan.shards.length - 1,
    );
    expect((await deps.store.get(p.plan))!.equals(before)).toBe(true);
    expect(await deps.store.list(`${p.plan.replace(/plan\.json$/, '')}shards/`)).toEqual([]);
  });

  it('runs the fan-in once: a second delivery finds the outcome and changes nothing', async () => {
    const { deps, spec, plan } = await planned();
    const judge = createJudgeBatch(deps);
    for (const s of plan.shards)
      await judge({ kind: 'shard', buildId: spec.id, shardId: s.id }, ctx());
    const fanin = createFanin(deps);
    await fanin({ kind: 'fanin', buildId: spec.id }, ctx());
    const p = buildPaths(spec.id);
    const outcome = await deps.store.get(p.outcome);
    const train = await deps.store.get(p.train);
    expect(outcome).not.toBeNull();
    await fanin({ kind: 'fanin', buildId: spec.id }, ctx(2));
    expect((await deps.store.get(p.outcome))!.equals(outcome!)).toBe(true);
    expect((await deps.store.get(p.train))!.equals(train!)).toBe(true);
  });
});
