/**
 * Judge batch (queue trigger on SFT_SHARD_QUEUE): reads its shard, builds samples,
 * quarantines bad rows, judges, and writes the annotated rows under names that
 * derive from the build and shard; a create-only done marker commits the batch.
 * In a wave-judged build (shared/build/waves.ts) the first round writes planner
 * items instead of judging, and a wave's batch judges only the samples listed for it.
 *
 * At least once: a redelivered batch finds its marker and only re-runs the
 * completion check. A permanent judge error (PermanentError) records the batch
 * failed at once; any other judge failure is rethrown (the queue retries it) until
 * the last allowed delivery, which records the batch failed with the samples it held,
 * so the build never waits on it forever.
 */
import type { InvocationContext } from '@azure/functions';
import {
  ShardMessageSchema,
  buildPaths,
  type BatchFailure,
  type BatchSummary,
  type BuildSpec,
} from '../shared/build/spec';
import { annotateSamples } from '../shared/judge/annotate';
import { countBy, type PreparedShard } from '../shared/build/batch';
import { itemsText, waveSamples } from '../shared/build/waves';
import { waveItems } from '../shared/waves/judge';
import {
  checkCompletion,
  dequeueCountOf,
  errorText,
  getOutcome,
  getSpec,
  parseMessage,
  recordOutcome,
  settledBatch,
} from './lib/build-ops';
import { SourceChangedError } from '../adapters/storage/source';
import type { Deps } from './lib/deps';
import { PermanentError, TransientError } from '../shared/errors';
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

/** One delivery of a batch message: what its steps share. */
interface Batch {
  deps: Deps;
  spec: BuildSpec;
  shardId: string;
  wave: number;
  attempt: number;
  context: InvocationContext;
  /** Records the batch failed for good (create-only) and lets the build move on. */
  fail: (reason: string, samplesLost: number | null, via: BatchFailure['via']) => Promise<void>;
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
    const fail: Batch['fail'] = (reason, samplesLost, via) =>
      recordBatchFailure(deps, {
        buildId,
        shardId,
        reason,
        attempts: attempt,
        samplesLost,
        via,
        ...(wave > 0 ? { wave } : {}),
      });
    const batch: Batch = { deps, spec, shardId, wave, attempt, context, fail };
    const ids = wave > 0 ? await readWaveIds(deps, buildId, wave, shardId) : null;
    if (wave > 0 && ids === null) {
      await fail(
        `wave ids ${p.waveIds(wave, shardId)} are missing or unreadable`,
        null,
        'permanent',
      );
      return;
    }
    let prepared;
    try {
      prepared = await readShard(deps, spec, shardId, ids ?? undefined);
    } catch (err) {
      if (!(err instanceof SourceChangedError)) throw err;
      // The planned bytes are gone: no batch can read them, so the build fails now.
      context.error(`judge: ${shardId} of ${buildId}: ${err.message}`);
      await recordOutcome(deps, {
        buildId,
        state: 'failed',
        stage: 'plan',
        reason: err.message,
        completedAt: deps.now().toISOString(),
      });
      await fail(err.message, ids?.length ?? null, 'permanent');
      return;
    }
    if (prepared === null) {
      await fail(`shard ${shardId} is missing from the plan`, ids?.length ?? null, 'permanent');
      return;
    }
    // The scan round of a wave-judged build: planner items instead of verdicts.
    if (spec.waves && wave === 0) return scanBatch(batch, prepared);
    const chosen = ids ? waveSamples(prepared, ids) : { samples: prepared.samples, missing: [] };
    const judge = deps.judgeFor(spec);
    const judged = await judgeOrFail(batch, judge, chosen);
    if (judged) await commitJudged(batch, judge, prepared, chosen, judged);
  };
}

/** Commits a batch: its done marker (create-only), then the completion check. */
async function commit(b: Batch, summary: BatchSummary): Promise<void> {
  const paths = buildPaths(b.spec.id).batch(b.shardId, b.wave);
  await b.deps.store.create(paths.done, JSON.stringify(summary, null, 2));
  b.deps.failpoint('judge:committed');
  await checkCompletion(b.deps, b.spec.id, b.wave);
}

/** The scan round of a wave-judged build: writes planner items, no rows, and the quarantine. */
async function scanBatch(b: Batch, prepared: PreparedShard): Promise<void> {
  const p = buildPaths(b.spec.id);
  const paths = p.batch(b.shardId, 0);
  const items = waveItems(prepared.samples, b.spec.config);
  await Promise.all([
    b.deps.store.put(p.items(b.shardId), itemsText(items)),
    b.deps.store.put(paths.rows, ''),
    b.deps.store.put(paths.quarantine, toJsonl(prepared.quarantine)),
  ]);
  b.deps.failpoint('judge:written');
  await commit(b, summaryOf(b.spec.id, b.shardId, prepared, b.attempt));
}

type Chosen = ReturnType<typeof waveSamples>;

/**
 * Judges the chosen samples. A permanent error (any PermanentError: a refused
 * credential, a missing labels file, ...) fails the batch at once: no delivery can
 * help. Any other failure is rethrown as transient (the queue retries it) until the
 * last delivery, which records the batch failed. Null when the batch was recorded failed.
 */
async function judgeOrFail(b: Batch, judge: Judge, chosen: Chosen) {
  const held = chosen.samples.length + chosen.missing.length;
  try {
    return await annotateSamples(chosen.samples, judge, { batchSize: b.spec.judge.batchSize });
  } catch (err) {
    const what = `judge: ${b.shardId}${b.wave ? ` wave ${b.wave}` : ''} of ${b.spec.id}`;
    if (err instanceof PermanentError) {
      b.context.error(`${what}: ${err.message}`);
      // A refused key or token keeps its own prefix: the CLI reads it.
      const reason =
        err instanceof JudgeConfigError
          ? `${JUDGE_REFUSED}${err.message}`
          : `judge failed for good: ${errorText(err)}`;
      await b.fail(reason, held, 'permanent');
      return null;
    }
    if (b.attempt >= b.deps.settings.maxDequeueCount) {
      b.context.error(`${what} failed on its last delivery (${b.attempt}): ${errorText(err)}`);
      await b.fail(
        `judge failed on all ${b.attempt} deliveries; last error: ${errorText(err)}`,
        held,
        'retries-exhausted',
      );
      return null;
    }
    throw new TransientError(`${what} failed (delivery ${b.attempt})`, { cause: err });
  }
}

/** Writes the judged rows, the unlabeled and (round 0) the quarantine, then commits. */
async function commitJudged(
  b: Batch,
  judge: Judge,
  prepared: PreparedShard,
  chosen: Chosen,
  judged: Awaited<ReturnType<typeof annotateSamples>>,
): Promise<void> {
  const { deps, wave } = b;
  const paths = buildPaths(b.spec.id).batch(b.shardId, wave);
  const unlabeled = [...judged.unlabeled, ...chosen.missing];
  await Promise.all([
    deps.store.put(paths.rows, toJsonl(judged.rows)),
    deps.store.put(paths.unlabeled, toJsonl(unlabeled)),
    ...(wave === 0 ? [deps.store.put(paths.quarantine, toJsonl(prepared.quarantine))] : []),
  ]);
  deps.failpoint('judge:written');
  // A wave batch reads no new telemetry: its row counts are the scan round's.
  const base = summaryOf(b.spec.id, b.shardId, wave === 0 ? prepared : emptyShard, b.attempt);
  await commit(b, {
    ...base,
    samples: chosen.samples.length + chosen.missing.length,
    labelled: judged.rows.length,
    unlabeled: unlabeled.length,
    unlabeledByCause: countBy(unlabeled, (u) => u.error),
    judgeCalls: judged.calls,
    ...usageOf(judge),
    ...(wave > 0 ? { wave } : {}),
  });
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
