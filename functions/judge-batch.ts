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
import { batchSummaryOf, judgedBatchSummary, type PreparedShard } from '../shared/build/batch';
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

/** The reason of a batch failed because the judge refused its credentials (the CLI reads it). */
export const JUDGE_REFUSED = 'judge refused: ';

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
    const batch = await openBatch(deps, message, context);
    if (!batch) return;
    const ids = await readIdsOrFail(batch);
    if (ids === undefined) return;
    const prepared = await prepareOrFail(batch, ids);
    if (!prepared) return;
    // The scan round of a wave-judged build: planner items instead of verdicts.
    if (batch.spec.waves && batch.wave === 0) return scanBatch(batch, prepared);
    const chosen = ids ? waveSamples(prepared, ids) : { samples: prepared.samples, missing: [] };
    const judge = deps.judgeFor(batch.spec);
    const judged = await judgeOrFail(batch, judge, chosen);
    if (judged) await commitJudged(batch, judge, prepared, chosen, judged);
  };
}

/**
 * Step 1: parses the message and opens the batch it names. Null (the message is
 * dropped) when the message is malformed, the batch is already settled, the build is
 * unknown or does not judge in waves while the message names a wave, or the build
 * already has its outcome.
 */
async function openBatch(
  deps: Deps,
  message: unknown,
  context: InvocationContext,
): Promise<Batch | null> {
  const msg = parseMessage(ShardMessageSchema, message, context);
  if (!msg) return null;
  const { buildId, shardId } = msg;
  const wave = msg.wave ?? 0;
  const attempt = dequeueCountOf(context);
  if (await settledBatch(deps, buildId, shardId, wave)) return null;
  const spec = await getSpec(deps, buildId);
  if (!spec) {
    context.error(`judge: no build ${buildId}; dropping ${shardId}`);
    return null;
  }
  if (wave > 0 && !spec.waves) {
    context.error(
      `judge: build ${buildId} does not judge in waves; dropping ${shardId} wave ${wave}`,
    );
    return null;
  }
  if (await getOutcome(deps, buildId)) return null;
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
  return { deps, spec, shardId, wave, attempt, context, fail };
}

/**
 * Step 2: the sample ids a wave's batch judges (null in round 0: all of the shard).
 * Undefined when a wave's ids are missing or unreadable: the batch is recorded failed.
 */
async function readIdsOrFail(b: Batch): Promise<string[] | null | undefined> {
  if (b.wave === 0) return null;
  const ids = await readWaveIds(b.deps, b.spec.id, b.wave, b.shardId);
  if (ids !== null) return ids;
  const where = buildPaths(b.spec.id).waveIds(b.wave, b.shardId);
  await b.fail(`wave ids ${where} are missing or unreadable`, null, 'permanent');
  return undefined;
}

/**
 * Step 3: reads the shard and builds its samples (only `ids`' conversations in a wave).
 * Null when the batch was recorded failed: the shard is missing from the plan, or its
 * planned bytes changed (then no batch can read them, and the build fails now).
 */
async function prepareOrFail(b: Batch, ids: string[] | null): Promise<PreparedShard | null> {
  const { deps, spec, shardId } = b;
  let prepared;
  try {
    prepared = await readShard(deps, spec, shardId, ids ?? undefined);
  } catch (err) {
    if (!(err instanceof SourceChangedError)) throw err;
    b.context.error(`judge: ${shardId} of ${spec.id}: ${err.message}`);
    await recordOutcome(deps, {
      buildId: spec.id,
      state: 'failed',
      stage: 'plan',
      reason: err.message,
      completedAt: deps.now().toISOString(),
    });
    await b.fail(err.message, ids?.length ?? null, 'permanent');
    return null;
  }
  if (prepared === null)
    await b.fail(`shard ${shardId} is missing from the plan`, ids?.length ?? null, 'permanent');
  return prepared;
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
  await commit(b, batchSummaryOf(b.spec.id, b.shardId, prepared, b.attempt));
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
  await commit(
    b,
    judgedBatchSummary({
      buildId: b.spec.id,
      shardId: b.shardId,
      wave,
      attempt: b.attempt,
      prepared,
      held: chosen.samples.length + chosen.missing.length,
      labelled: judged.rows.length,
      unlabeled,
      judgeCalls: judged.calls,
      stats: judge.stats?.(),
    }),
  );
}
