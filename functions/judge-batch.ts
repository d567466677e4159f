/**
 * Judge batch (queue trigger on SFT_SHARD_QUEUE): reads its shard, builds samples,
 * quarantines bad rows, judges, and writes the annotated rows under names that
 * derive from the build and shard; a create-only done marker commits the batch.
 *
 * At least once: a redelivered batch finds its marker and only re-runs the
 * completion check. A judge failure is rethrown (the queue retries it) until the
 * last allowed delivery, which records the batch failed with the samples it held,
 * so the build never waits on it forever.
 */
import type { InvocationContext } from '@azure/functions';
import {
  ShardMessageSchema,
  buildPaths,
  type BatchFailure,
  type BatchSummary,
  type BuildSpec,
} from '../shared/build';
import { countBy, judgeShard, prepareShard, type PreparedShard } from '../shared/build-batch';
import {
  TransientError,
  checkCompletion,
  dequeueCountOf,
  errorText,
  getOutcome,
  getSpec,
  parseMessage,
} from './build-ops';
import type { Deps } from './deps';

const jsonl = (items: readonly unknown[]) =>
  items.length === 0 ? '' : items.map((x) => JSON.stringify(x)).join('\n') + '\n';

/** Reads and prepares a shard; null when its blob is missing. */
export async function readShard(
  deps: Deps,
  spec: BuildSpec,
  shardId: string,
): Promise<PreparedShard | null> {
  const buf = await deps.store.get(buildPaths(spec.id).shard(shardId));
  if (buf === null) return null;
  return prepareShard(buf.toString('utf8').split('\n'), spec);
}

/** Writes the failed marker (create-only) and lets the build move on. */
export async function recordBatchFailure(deps: Deps, failure: BatchFailure): Promise<void> {
  await deps.store.create(
    buildPaths(failure.buildId).failed(failure.shardId),
    JSON.stringify(failure, null, 2),
  );
  await checkCompletion(deps, failure.buildId);
}

export function createJudgeBatch(deps: Deps) {
  return async function judgeBatchHandler(
    message: unknown,
    context: InvocationContext,
  ): Promise<void> {
    const msg = parseMessage(ShardMessageSchema, message, context);
    if (!msg) return;
    const { buildId, shardId } = msg;
    const p = buildPaths(buildId);
    const attempt = dequeueCountOf(context);
    if (
      (await deps.store.exists(p.done(shardId))) ||
      (await deps.store.exists(p.failed(shardId)))
    ) {
      await checkCompletion(deps, buildId); // the earlier delivery may have stopped before this
      return;
    }
    const spec = await getSpec(deps, buildId);
    if (!spec) {
      context.error(`judge: no build ${buildId}; dropping ${shardId}`);
      return;
    }
    if (await getOutcome(deps, buildId)) return;
    const prepared = await readShard(deps, spec, shardId);
    if (prepared === null) {
      await recordBatchFailure(deps, {
        buildId,
        shardId,
        reason: `shard blob ${p.shard(shardId)} is missing`,
        attempts: attempt,
        samplesLost: null,
        via: 'permanent',
      });
      return;
    }
    let judged;
    try {
      judged = await judgeShard(prepared, deps.judgeFor(spec), spec.judge.batchSize);
    } catch (err) {
      if (attempt >= deps.settings.maxDequeueCount) {
        context.error(
          `judge: ${shardId} of ${buildId} failed on its last delivery (${attempt}): ${errorText(err)}`,
        );
        await recordBatchFailure(deps, {
          buildId,
          shardId,
          reason: `judge failed on all ${attempt} deliveries; last error: ${errorText(err)}`,
          attempts: attempt,
          samplesLost: prepared.samples.length,
          via: 'retries-exhausted',
        });
        return;
      }
      throw new TransientError(`judge: ${shardId} of ${buildId} failed (delivery ${attempt})`, {
        cause: err,
      });
    }
    await Promise.all([
      deps.store.put(p.rows(shardId), jsonl(judged.annotated)),
      deps.store.put(p.quarantine(shardId), jsonl(judged.quarantine)),
      deps.store.put(p.unlabeled(shardId), jsonl(judged.unlabeled)),
    ]);
    deps.failpoint('judge:written');
    const summary: BatchSummary = {
      buildId,
      shardId,
      rows: judged.rows,
      turns: judged.turns,
      outsideWindow: judged.outsideWindow,
      quarantined: judged.quarantine.length,
      quarantineByReason: countBy(judged.quarantine, (q) => q.reason),
      assembly: judged.assembly,
      samples: judged.samples.length,
      labelled: judged.annotated.length,
      unlabeled: judged.unlabeled.length,
      unlabeledByCause: countBy(judged.unlabeled, (u) => u.error),
      judgeCalls: judged.judgeCalls,
      redactions: judged.redactions,
      attempt,
    };
    await deps.store.create(p.done(shardId), JSON.stringify(summary, null, 2));
    deps.failpoint('judge:committed');
    await checkCompletion(deps, buildId);
  };
}
