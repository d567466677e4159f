/**
 * The scheduled build: the timer starts a build with the configured defaults, once
 * per schedule slot even when the timer fires twice.
 */
import { InvocationContext, type Timer } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { createScheduledBuild } from '../../functions/scheduled-build';
import { BuildSpecSchema, buildPaths } from '../../shared/build/spec';
import { testDeps } from './harness';

const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: { last: '', next: '', lastUpdated: '' },
};

describe('scheduledBuild', () => {
  it('starts one build per slot with the configured defaults', async () => {
    const deps = testDeps(
      { SFT_TOTAL: '777', SFT_SOURCE: 'blob:exports/weekly.jsonl' },
      { now: () => new Date('2026-11-30T03:00:07.123Z') },
    );
    const handler = createScheduledBuild(deps);
    const ctx = new InvocationContext({ invocationId: 't', functionName: 'scheduledBuild' });
    await handler(timer, ctx);
    await handler(timer, ctx);
    const specs = (await deps.store.list('builds/')).filter((n) => n.endsWith('/build.json'));
    expect(specs).toEqual([buildPaths('sched-20261130t0300').spec]);
    const spec = await deps.store.getJson(specs[0]!, BuildSpecSchema);
    expect(spec).toMatchObject({
      createdBy: 'timer',
      source: { kind: 'blob', path: 'exports/weekly.jsonl' },
      config: { total: 777 },
    });
    const queue = deps.clients.queues.getQueueClient(deps.settings.queues.plan);
    expect((await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toHaveLength(1);
  });
});
