/**
 * Judge batch (queue trigger on SFT_SHARD_QUEUE): reads its shard, builds samples,
 * quarantines bad rows, judges, and writes the annotated rows under names that
 * derive from the build and shard; a create-only done marker commits the batch.
 * In a wave-judged build (shared/build/waves.ts) the first round writes planner
 * items instead of judging, and a wave's batch judges only the samples listed for it.
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
} from '../shared/build/spec';
import { annotateSamples } from '../shared/judge/annotate';
import { countBy, type PreparedShard } from '../shared/build/batch';
import { itemLine, waveSamples } from '../shared/build/waves';
import { waveItems } from '../shared/waves/judge';
import {
  TransientError,
  checkCompletion,
  dequeueCountOf,
  errorText,
  getOutcome,
  getSpec,
  parseMessage,
  settledBatch,
} from './lib/build-ops';
import type { Deps } from './lib/deps';
import { readShard, readWaveIds, recordBatchFailure } from './lib/shards';
import { JudgeConfigError } from '../shared/judge/llm';
import type { Judge } from '../shared/judge/types';
import { toJsonl } from '../shared/util/jsonl';


const summaryOf = (
  buildId: string,
  shardId: string,
  prepared: PreparedShard,
  attempt: number,
): BatchSummary => ({
  buildId,
  shardId,
  rows: prepared.rows,
  turns: prepared.turns,
  outsideWindow: prepared.outsideWindow,
  quarantined: prepared.quarantine.length,
  quarantineByReason: countBy(prepared.quarantine, (q) => q.reason),
  assembly: prepared.assembly,
  samples: prepared.samples.length,
  labelled: 0,
  unlabeled: 0,
  unlabeledByCause: {},
  judgeCalls: 0,
  redactions: prepared.redactions,
  attempt,
});

/** The reason of a batch failed because the judge refused its credentials (the CLI reads it). */
export const JUDGE_REFUSED = 'judge refused: ';

/** A judge's tokens and cost for the batch summary (its stats are this shard's own). */
function usageOf(judge: Judge): Pick<BatchSummary, 'usage'> {
  const s = judge.stats?.();
  if (!s || s.calls === 0) return {};
  return {
    usage: {
      promptTokens: s.promptTokens,
      cachedTokens: s.cachedTokens,
      completionTokens: s.completionTokens,
      estimatedCost: s.estimatedCost,
    },
  };
}

export function createJudgeBatch(deps: Deps) {
  return async function judgeBatchHandler(
    message: unknown,
    context: InvocationContext,
  ): Promise<void> {
    const msg = parseMessage(ShardMessageSchema, message, context);
    if (!msg) return;
    const { buildId, shardId } = msg;
    const wave = msg.wave ?? 0;
    const p = buildPaths(buildId);
    const paths = p.batch(shardId, wave);
    const attempt = dequeueCountOf(context);
    if (await settledBatch(deps, buildId, shardId, wave)) return;
    const spec = await getSpec(deps, buildId);
    if (!spec) {
      context.error(`judge: no build ${buildId}; dropping ${shardId}`);
      return;
    }
    if (wave > 0 && !spec.waves) {
      context.error(
        `judge: build ${buildId} does not judge in waves; dropping ${shardId} wave ${wave}`,
      );
      return;
    }
    if (await getOutcome(deps, buildId)) return;
    const fail = (reason: string, samplesLost: number | null, via: BatchFailure['via']) =>
      recordBatchFailure(deps, {
        buildId,
        shardId,
        reason,
        attempts: attempt,
        samplesLost,
        via,
        ...(wave > 0 ? { wave } : {}),
      });
    const ids = wave > 0 ? await readWaveIds(deps, buildId, wave, shardId) : null;
    if (wave > 0 && ids === null) {
      await fail(
        `wave ids ${p.waveIds(wave, shardId)} are missing or unreadable`,
        null,
        'permanent',
      );
      return;
    }
    const prepared = await readShard(deps, spec, shardId, ids ?? undefined);
    if (prepared === null) {
      await fail(`shard blob ${p.shard(shardId)} is missing`, ids?.length ?? null, 'permanent');
      return;
    }
    if (spec.waves && wave === 0) {
      // The scan round of a wave-judged build: planner items instead of verdicts.
      const items = waveItems(prepared.samples, spec.config);
      await Promise.all([
        deps.store.put(p.items(shardId), items.map((it) => itemLine(it) + '\n').join('')),
        deps.store.put(paths.rows, ''),
        deps.store.put(paths.quarantine, toJsonl(prepared.quarantine)),
      ]);
      deps.failpoint('judge:written');
      const summary = summaryOf(buildId, shardId, prepared, attempt);
      await deps.store.create(paths.done, JSON.stringify(summary, null, 2));
      deps.failpoint('judge:committed');
      await checkCompletion(deps, buildId, 0);
      return;
    }
    const chosen = ids ? waveSamples(prepared, ids) : { samples: prepared.samples, missing: [] };
    let judged;
    const judge = deps.judgeFor(spec);
    try {
      judged = await annotateSamples(chosen.samples, judge, {
        batchSize: spec.judge.batchSize,
      });
    } catch (err) {
      if (err instanceof JudgeConfigError) {
        // A refused key or token, a missing credential: no delivery can help.
        context.error(`judge: ${shardId} of ${buildId}: ${err.message}`);
        await fail(
          `${JUDGE_REFUSED}${err.message}`,
          chosen.samples.length + chosen.missing.length,
          'permanent',
        );
        return;
      }
      if (attempt >= deps.settings.maxDequeueCount) {
        context.error(
          `judge: ${shardId}${wave ? ` wave ${wave}` : ''} of ${buildId} failed on its last delivery (${attempt}): ${errorText(err)}`,
        );
        await fail(
          `judge failed on all ${attempt} deliveries; last error: ${errorText(err)}`,
          chosen.samples.length + chosen.missing.length,
          'retries-exhausted',
        );
        return;
      }
      throw new TransientError(
        `judge: ${shardId}${wave ? ` wave ${wave}` : ''} of ${buildId} failed (delivery ${attempt})`,
        { cause: err },
      );
    }
    const unlabeled = [...judged.unlabeled, ...chosen.missing];
    await Promise.all([
      deps.store.put(paths.rows, toJsonl(judged.rows)),
      deps.store.put(paths.unlabeled, toJsonl(unlabeled)),
      ...(wave === 0 ? [deps.store.put(paths.quarantine, toJsonl(prepared.quarantine))] : []),
    ]);
    deps.failpoint('judge:written');
    // A wave batch reads no new telemetry: its row counts are the scan round's.
    const base =
      wave === 0
        ? summaryOf(buildId, shardId, prepared, attempt)
        : summaryOf(buildId, shardId, emptyShard, attempt);
    const summary: BatchSummary = {
      ...base,
      samples: chosen.samples.length + chosen.missing.length,
      labelled: judged.rows.length,
      unlabeled: unlabeled.length,
      unlabeledByCause: countBy(unlabeled, (u) => u.error),
      judgeCalls: judged.calls,
      ...usageOf(judge),
      ...(wave > 0 ? { wave } : {}),
    };
    await deps.store.create(paths.done, JSON.stringify(summary, null, 2));
    deps.failpoint('judge:committed');
    await checkCompletion(deps, buildId, wave);
  };
}

const emptyShard: PreparedShard = {
  rows: 0,
  turns: 0,
  outsideWindow: 0,
  quarantine: [],
  samples: [],
  assembly: { conversations: 0, complete: 0, incomplete: 0, duplicateTurns: 0 },
  redactions: {},
};
