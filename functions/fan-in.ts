/**
 * Fan-in (queue trigger on SFT_FANIN_QUEUE): when every batch is done or failed for
 * good, one fan-in balances all batch results with the core's streaming balancer
 * (order-independent: the dataset does not depend on which batch finished first)
 * and writes datasets/{buildId}/train.jsonl, manifest.json and datasets/latest.json.
 *
 * A wave-judged build comes here after each round: the fan-in then replays the wave
 * planner (functions/lib/wave-ops.ts) and queues the next wave's batches, or balances the
 * rows it selects.
 *
 * Exactly one publishes: a lease on a claim blob admits one fan-in at a time (it
 * lapses if its holder dies), outputs are deterministic overwrites, and a
 * create-only outcome.json is the commit; a later delivery finds it and stops.
 */
import { createHash } from 'node:crypto';
import type { InvocationContext } from '@azure/functions';
import { StreamingBalancer, type QuarantineRecord } from '../shared/balance/balancer';
import {
  FaninMessageSchema,
  LATEST_PATH,
  LatestSchema,
  buildPaths,
  completionOf,
  decidePublish,
  addUsage,
  emptyUsage,
  sumBatches,
  usageByWave,
  type JudgeUsage,
  type BuildSpec,
  type Outcome,
} from '../shared/build/spec';
import type { AnnotatedRow, QuarantineReason } from '../shared/contracts/rows';
import { judgeShard, parseBatchRows } from '../shared/build/batch';
import { BalanceError } from '../shared/errors/index';
import { redactionSummary } from '../shared/samples/redact';
import {
  errorText,
  getOutcome,
  getPlan,
  getSpec,
  parseMessage,
  readMarkers,
  recordOutcome,
} from './lib/build-ops';
import type { Deps } from './lib/deps';
import { readShard } from './lib/shards';
import { costSection } from '../shared/judge/prices';
import { describeJudge } from '../shared/judge/types';
import { advanceWaves } from './lib/wave-ops';
import { renderReport, REPORT_FILE } from '../adapters/files/report';
import { ProfileBuilder, profileRows } from '../shared/report/profile';
import { publishBuildFormats } from '../adapters/files/dataset-outputs';
import { probeStepToStore } from './lib/probe-step';

const TOOL = { name: 'sft-balancer', version: '0.1.0' };

const digest = (text: string) => {
  const buf = Buffer.from(text, 'utf8');
  let lines = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++;
  return { sha256: createHash('sha256').update(buf).digest('hex'), lines, bytes: buf.length };
};

const jsonl = (items: readonly unknown[]) => {
  const parts: string[] = [];
  for (const x of items) parts.push(JSON.stringify(x) + '\n');
  return parts.join('');
};

/** Points datasets/latest.json at this build unless a later build already took it. */
export async function updateLatest(deps: Deps, outcome: Outcome): Promise<void> {
  if (outcome.state !== 'succeeded') return;
  const current = await deps.store.getJson(LATEST_PATH, LatestSchema);
  if (current && current.buildId === outcome.buildId) return;
  if (current && Date.parse(current.completedAt) > Date.parse(outcome.completedAt)) return;
  const p = buildPaths(outcome.buildId);
  await deps.store.put(
    LATEST_PATH,
    JSON.stringify(
      {
        buildId: outcome.buildId,
        completedAt: outcome.completedAt,
        train: p.train,
        manifest: p.manifest,
      },
      null,
      2,
    ) + '\n',
  );
}

function buildInfo(spec: BuildSpec) {
  return {
    id: spec.id,
    createdBy: spec.createdBy,
    source: spec.source,
    ...(spec.window ? { window: spec.window } : {}),
    minJudgedShare: spec.minJudgedShare,
  };
}

/** Balances, writes the dataset and commits the outcome. Runs under the claim lease. */
async function publish(
  deps: Deps,
  spec: BuildSpec,
  context: InvocationContext,
): Promise<Outcome | null> {
  const id = spec.id;
  const p = buildPaths(id);
  const plan = (await getPlan(deps, id))!;
  const { summaries, failures } = await readMarkers(deps, id);
  const c = completionOf(
    plan.shards.map((s) => s.id),
    [
      ...summaries.map((s) => ({ shardId: s.shardId, kind: 'done' as const })),
      ...failures.map((f) => ({ shardId: f.shardId, kind: 'failed' as const })),
    ],
  );
  if (!c.complete) {
    context.log(`fan-in: build ${id} has ${c.pending} batch(es) pending; not yet`);
    return null;
  }
  const done = summaries.filter((s) => c.doneIds.includes(s.shardId));
  const failed = failures.filter((f) => c.failedIds.includes(f.shardId));
  const sums = sumBatches(done);
  // A wave-judged build: the scan round is complete; judge the next wave, or balance.
  const waves = spec.waves ? await advanceWaves(deps, spec, c.doneIds, context) : null;
  if (waves?.kind === 'wait' || waves?.kind === 'queued') {
    context.log(
      waves.kind === 'wait'
        ? `fan-in: build ${id} wave ${waves.wave} has ${waves.pending} batch(es) pending; not yet`
        : `fan-in: build ${id} wave ${waves.wave} queued`,
    );
    return null;
  }
  const waved = waves?.kind === 'done' ? waves : null;
  const waveSums = waved ? sumBatches(waved.summaries) : null;
  const judgeSums = waveSums ?? sums;
  // Judged share: of the samples sent to the judge (all of them, or the waves' ones).
  const decision = waved
    ? decidePublish(waved.summaries, [...failed, ...waved.failures], spec.minJudgedShare)
    : decidePublish(done, failed, spec.minJudgedShare);
  const batches: Record<string, unknown> = {
    planned: c.planned,
    done: c.done,
    failed: c.failed,
    failedShards: failed.map((f) => ({
      shardId: f.shardId,
      reason: f.reason,
      samplesLost: f.samplesLost,
      via: f.via,
    })),
    samplesLost: decision.samplesLost,
    batchesWithUnknownLoss: decision.batchesWithUnknownLoss,
    judgedShare: decision.judgedShare,
    minJudgedShare: spec.minJudgedShare,
  };
  if (waved) {
    batches.waveBatches = {
      done: waved.summaries.length,
      failed: waved.failures.length,
      failedBatches: waved.failures.map((f) => ({
        wave: f.wave,
        shardId: f.shardId,
        reason: f.reason,
        samplesLost: f.samplesLost,
        via: f.via,
      })),
      ...(waved.rejudged.length > 0 ? { rejudged: waved.rejudged } : {}),
    };
  }
  // Which judge labelled the data, and what its calls cost (tokens × the price table).
  const labelledBy = describeJudge(deps.judgeFor(spec));
  const usage = [sums.usage, waveSums?.usage]
    .filter((u): u is JudgeUsage => !!u)
    .reduce<JudgeUsage | null>((a, u) => addUsage(a ?? emptyUsage(), u), null);
  const common = {
    tool: TOOL,
    command: 'build',
    build: buildInfo(spec),
    pipeline: {
      name: spec.pipeline,
      history: spec.pipeline === 'conversation' ? spec.history : null,
      assembly: sums.assembly,
    },
    judge: {
      name: spec.judge.name,
      calls: judgeSums.judgeCalls,
      batchSize: spec.judge.batchSize,
      samplesJudged: judgeSums.samples,
      labelled: judgeSums.labelled,
      unlabeled: judgeSums.unlabeled,
      unlabeledByCause: judgeSums.unlabeledByCause,
      labelledBy,
      ...(usage
        ? {
            cost: costSection(
              usage,
              labelledBy.pricing,
              waved ? usageByWave(waved.summaries) : undefined,
            ),
          }
        : {}),
    },
    telemetry: { rows: sums.rows, validTurns: sums.turns, outsideWindow: sums.outsideWindow },
    redaction: redactionSummary(spec.redact, sums.redactions),
    batches,
  };
  const fail = async (reason: string, more: Record<string, unknown> = {}): Promise<Outcome> => {
    await deps.store.put(
      p.manifest,
      JSON.stringify(
        { status: 'failed', reason, ...common, config: spec.config, ...more },
        null,
        2,
      ) + '\n',
    );
    const outcome: Outcome = {
      buildId: id,
      state: 'failed',
      stage: 'fanin',
      reason,
      completedAt: deps.now().toISOString(),
      judgedShare: decision.judgedShare,
      samplesLost: decision.samplesLost,
    };
    await recordOutcome(deps, outcome);
    return outcome;
  };
  if (waves?.kind === 'fail') return fail(waves.reason);
  if (!decision.publish) return fail(decision.reason ?? 'not enough samples were judged');

  const balancer = new StreamingBalancer(spec.config);
  for (const [reason, n] of Object.entries(sums.quarantineByReason))
    for (let i = 0; i < (n ?? 0); i++) balancer.recordQuarantine(reason as QuarantineReason);
  const quarantine: QuarantineRecord[] = [];
  const before = new ProfileBuilder(spec.config);
  // Results stream in shard order, prefetching a few blobs ahead; order does not
  // change the dataset, only how long this takes.
  const ids = c.doneIds;
  const fetch = (sid: string) =>
    Promise.all([deps.store.get(p.rows(sid)), deps.store.get(p.quarantine(sid))]);
  const ahead: Promise<[Buffer | null, Buffer | null]>[] = [];
  for (let i = 0; i < Math.min(4, ids.length); i++) ahead.push(fetch(ids[i]!));
  const rejudged: { shardId: string; cause: string }[] = [];
  for (let i = 0; i < ids.length; i++) {
    const sid = ids[i]!;
    const [rows, q] = await ahead.shift()!;
    if (i + 4 < ids.length) ahead.push(fetch(ids[i + 4]!));
    let results = parseResults(rows, q);
    if (typeof results === 'string') {
      // A missing or corrupt results blob: judge the shard again (the verdict cache
      // makes that cheap) rather than publish without it or fail the build.
      const cause = results;
      context.warn(`fan-in: results of ${sid} ${cause}; judging the shard again`);
      try {
        results = await rejudge(deps, spec, sid, waved !== null);
      } catch (err) {
        return fail(
          `results of ${sid} ${cause}, and judging the shard again failed: ${errorText(err)}`,
        );
      }
      rejudged.push({ shardId: sid, cause });
    }
    for (const row of results.rows) {
      before.add(row);
      balancer.offer(row);
    }
    quarantine.push(...results.quarantine);
  }
  if (rejudged.length > 0) batches.rejudged = rejudged;
  if (waved) {
    // The first round judged nothing: the rows are the waves', the planner's selection offered.
    for (const row of waved.judged) before.add(row);
    for (const row of waved.offered) balancer.offer(row);
  }
  let result;
  try {
    result = balancer.finish();
  } catch (err) {
    if (err instanceof BalanceError) return fail(errorText(err));
    throw err;
  }
  quarantine.sort((a, b) => a.line - b.line);
  const quarantineText = jsonl(quarantine);
  const outputs: Record<string, ReturnType<typeof digest>> = {};
  const splitTexts: Record<string, string> = {};
  for (const split of ['train', 'validation', 'test'] as const) {
    const share = split === 'validation' ? spec.config.validation : (spec.config.test ?? 0);
    if (split !== 'train' && !(share > 0)) continue;
    const text = jsonl(result[split]);
    splitTexts[split] = text;
    outputs[`${split}.jsonl`] = digest(text);
    await deps.store.put(`${p.datasetPrefix}${split}.jsonl`, text);
  }
  outputs['quarantine.jsonl'] = digest(quarantineText);
  await deps.store.put(p.datasetQuarantine, quarantineText);
  // The router probe on the delivered dataset (docs/probe.md): its blobs join the dataset's.
  const probe = await probeStepToStore(
    deps.store,
    p.datasetPrefix,
    {
      train: result.train,
      ...(spec.config.validation > 0 ? { validation: result.validation } : {}),
    },
    spec.probe,
  );
  Object.assign(outputs, probe.outputs);
  context.log(`fan-in: build ${id} ${probe.lines.join('\n')}`);
  if (probe.failure) return fail(probe.failure, probe.manifest);
  deps.failpoint('fanin:written');
  const delivered = [...result.train, ...result.validation, ...result.test];
  const profile = {
    before: before.snapshot(),
    after: profileRows(spec.config, delivered),
  };
  const wavesReport = waved
    ? { waves: waved.planner.report(delivered.map((l) => ({ id: l.id, label: l.label }))) }
    : {};
  const manifest: Record<string, unknown> = {
    status: 'succeeded',
    ...common,
    ...wavesReport,
    ...result.manifest,
    profile,
    ...probe.manifest,
    outputs,
  };
  // The other formats and the card, as blobs beside the dataset (same bytes as in process).
  const formats = await publishBuildFormats(
    (rel, data) => deps.store.put(`${p.datasetPrefix}${rel}`, data),
    splitTexts,
    manifest,
    spec.config,
  );
  if (formats) {
    Object.assign(outputs, formats.outputs);
    manifest.formats = formats.section;
  }
  await deps.store.put(p.manifest, JSON.stringify(manifest, null, 2) + '\n');
  // The report is a view of the manifest: failing to draw it must not cost the dataset
  // (a storage error writing it is transient and retried like any other).
  let report: string | null = null;
  try {
    report = await renderReport(manifest);
  } catch (err) {
    context.error(`fan-in: build ${id}: report.html not drawn: ${errorText(err)}`);
  }
  if (report !== null) await deps.store.put(`${p.datasetPrefix}${REPORT_FILE}`, report);
  const outcome: Outcome = {
    buildId: id,
    state: 'succeeded',
    stage: 'fanin',
    completedAt: deps.now().toISOString(),
    judgedShare: decision.judgedShare,
    samplesLost: decision.samplesLost,
    selected: result.manifest.selected.total,
  };
  await recordOutcome(deps, outcome);
  context.log(`fan-in: build ${id} published ${outcome.selected} samples`);
  return (await getOutcome(deps, id)) ?? outcome;
}

/**
 * A batch's committed results, checked line by line; a string naming the first
 * problem when a blob is missing or a line is not what the batch writes.
 */
function parseResults(
  rows: Buffer | null,
  q: Buffer | null,
): { rows: AnnotatedRow[]; quarantine: QuarantineRecord[] } | string {
  if (rows === null) return 'are missing although the batch is marked done';
  const parsed = parseBatchRows(rows.toString('utf8'));
  if (typeof parsed === 'string') return parsed;
  const out = { rows: parsed, quarantine: [] as QuarantineRecord[] };
  const qLines = q?.toString('utf8').split('\n') ?? [];
  for (let n = 0; n < qLines.length; n++) {
    if (qLines[n]!.length === 0) continue;
    let v: unknown;
    try {
      v = JSON.parse(qLines[n]!);
    } catch {
      return `are corrupt: quarantine line ${n + 1} is not JSON`;
    }
    const r = v as Partial<QuarantineRecord> | null;
    if (typeof r?.line !== 'number' || typeof r.reason !== 'string')
      return `are corrupt: quarantine line ${n + 1} is not a quarantine record`;
    out.quarantine.push(v as QuarantineRecord);
  }
  return out;
}

/**
 * Judges a shard again and rewrites its results (deterministic names: an overwrite).
 * The scan round of a wave-judged build judged nothing: it is only read again.
 */
async function rejudge(deps: Deps, spec: BuildSpec, shardId: string, scanOnly: boolean) {
  const p = buildPaths(spec.id);
  const prepared = await readShard(deps, spec, shardId);
  if (!prepared) throw new Error(`shard blob ${p.shard(shardId)} is missing`);
  if (scanOnly) {
    await deps.store.put(p.rows(shardId), '');
    await deps.store.put(p.quarantine(shardId), jsonl(prepared.quarantine));
    return { rows: [], quarantine: prepared.quarantine };
  }
  const judged = await judgeShard(prepared, deps.judgeFor(spec), spec.judge.batchSize);
  await deps.store.put(p.rows(shardId), jsonl(judged.annotated));
  await deps.store.put(p.quarantine(shardId), jsonl(judged.quarantine));
  return { rows: judged.annotated, quarantine: judged.quarantine };
}

export function createFanin(deps: Deps) {
  return async function faninHandler(message: unknown, context: InvocationContext): Promise<void> {
    const msg = parseMessage(FaninMessageSchema, message, context);
    if (!msg) return;
    const spec = await getSpec(deps, msg.buildId);
    if (!spec) {
      context.error(`fan-in: no build ${msg.buildId}; dropping the message`);
      return;
    }
    const p = buildPaths(spec.id);
    const existing = await getOutcome(deps, spec.id);
    if (existing) {
      await updateLatest(deps, existing); // an earlier fan-in may have stopped before this
      return;
    }
    const plan = await getPlan(deps, spec.id);
    if (!plan) return;
    await deps.store.create(p.faninClaim, JSON.stringify({ buildId: spec.id }));
    const seconds = deps.settings.faninLeaseSeconds;
    const lease = await deps.store.acquireLease(p.faninClaim, seconds);
    if (!lease) {
      // Another fan-in holds the claim. Come back when its lease could have lapsed;
      // a fresh message, so waiting does not use up this one's deliveries.
      await deps.queues.send(deps.settings.queues.fanin, msg, { delaySeconds: seconds });
      context.log(`fan-in: build ${spec.id} is claimed; retrying in ${seconds} s`);
      return;
    }
    const renew = setInterval(
      () => {
        lease
          .renew()
          .catch((err: unknown) => context.warn(`fan-in: lease renewal failed: ${errorText(err)}`));
      },
      (seconds * 1000) / 3,
    );
    try {
      if (await getOutcome(deps, spec.id)) return;
      deps.failpoint('fanin:claimed');
      const outcome = await publish(deps, spec, context);
      if (outcome) await updateLatest(deps, outcome);
    } finally {
      clearInterval(renew);
      await lease.release().catch(() => undefined);
    }
  };
}
