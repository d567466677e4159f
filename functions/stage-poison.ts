/**
 * Poison queues (`<queue>-poison`, where the host moves a message after
 * maxDequeueCount failed deliveries). Nothing may hang on a poisoned message:
 * - a shard message becomes a failed marker with the samples its shard held;
 * - a plan or fan-in message ends its build as failed, with the reason.
 */
import type { InvocationContext } from '@azure/functions';
import { FaninMessageSchema, PlanMessageSchema, ShardMessageSchema } from '../shared/build/spec';
import {
  dequeueCountOf,
  errorText,
  getOutcome,
  getSpec,
  parseMessage,
  recordOutcome,
  settledBatch,
} from './lib/build-ops';
import type { Deps } from './lib/deps';
import { readShard, readWaveIds, recordBatchFailure } from './judge-batch';

export function createShardPoison(deps: Deps) {
  return async function shardPoisonHandler(
    message: unknown,
    context: InvocationContext,
  ): Promise<void> {
    const msg = parseMessage(ShardMessageSchema, message, context);
    if (!msg) return;
    const { buildId, shardId } = msg;
    const wave = msg.wave ?? 0;
    if (await settledBatch(deps, buildId, shardId, wave)) return;
    const spec = await getSpec(deps, buildId);
    if (!spec) return;
    let samplesLost: number | null = null;
    try {
      samplesLost =
        wave > 0
          ? ((await readWaveIds(deps, buildId, wave, shardId))?.length ?? null)
          : ((await readShard(deps, spec, shardId))?.samples.length ?? null);
    } catch (err) {
      context.warn(`poison: could not count the samples of ${shardId}: ${errorText(err)}`);
    }
    // Null (uncounted) is recorded as such, never as 0: the fan-in fails the build on it.
    const uncounted = samplesLost === null ? '; its samples could not be counted' : '';
    await recordBatchFailure(deps, {
      buildId,
      shardId,
      reason: `moved to the poison queue after ${deps.settings.maxDequeueCount} failed deliveries${uncounted}`,
      attempts: Math.max(dequeueCountOf(context) - 1, deps.settings.maxDequeueCount),
      samplesLost,
      via: 'poison-queue',
      ...(wave > 0 ? { wave } : {}),
    });
  };
}

export function createStagePoison(deps: Deps, stage: 'plan' | 'fanin') {
  const schema = stage === 'plan' ? PlanMessageSchema : FaninMessageSchema;
  return async function stagePoisonHandler(
    message: unknown,
    context: InvocationContext,
  ): Promise<void> {
    const msg = parseMessage(schema, message, context);
    if (!msg) return;
    if (!(await getSpec(deps, msg.buildId)) || (await getOutcome(deps, msg.buildId))) return;
    await recordOutcome(deps, {
      buildId: msg.buildId,
      state: 'failed',
      stage,
      reason: `the ${stage} step failed on ${deps.settings.maxDequeueCount} deliveries (poison queue)`,
      completedAt: deps.now().toISOString(),
    });
    context.error(`${stage}: build ${msg.buildId} failed (poison queue)`);
  };
}
