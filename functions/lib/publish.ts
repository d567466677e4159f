/**
 * The fan-in's publishing steps, each one read or write around a decision of the core
 * (shared/build/publish.ts, shared/report/build-manifest.ts): read the round, balance
 * the batch results, write the dataset and its digests, write the manifest and the
 * report, record the outcome, point latest.json at the build. functions/fan-in.ts
 * runs them in order under its claim lease.
 */
import { createHash } from 'node:crypto';
import type { InvocationContext } from '@azure/functions';
import {
  StreamingBalancer,
  type BalanceResult,
  type QuarantineRecord,
} from '../../shared/balance/balancer';
import {
  LATEST_PATH,
  LatestSchema,
  buildPaths,
  roundCompletion,
  type BuildSpec,
  type Outcome,
  type PublishDecision,
} from '../../shared/build/spec';
import { parseBatchRows } from '../../shared/build/batch';
import type { PublishFacts, RoundResults } from '../../shared/build/publish';
import type { AnnotatedRow, QuarantineReason } from '../../shared/contracts/rows';
import { BalanceError, NearDedupRefillError } from '../../shared/errors/index';
import { failedManifest } from '../../shared/report/build-manifest';
import { ProfileBuilder, type Profile } from '../../shared/report/profile';
import { toJsonl } from '../../shared/util/jsonl';
import { renderReport, REPORT_FILE } from '../../adapters/files/report';
import { errorText, getPlan, readMarkers, recordOutcome } from './build-ops';
import type { Deps } from './deps';
import { publishFailedQuarantine } from './fail-quarantine';
import { rejudgeBatch } from './rejudge';

/** Scans of the results at most: the margin at least doubles each time (docs/dedup.md "Passes"). */
export const MAX_PASSES = 6;

/** The first round of a build: its markers and completion (null when it has no plan). */
export async function readRound(deps: Deps, buildId: string): Promise<RoundResults | null> {
  const plan = await getPlan(deps, buildId);
  if (!plan) return null;
  const { summaries, failures } = await readMarkers(deps, buildId);
  const completion = roundCompletion(
    plan.shards.map((s) => s.id),
    { summaries, failures },
  );
  return {
    completion,
    done: summaries.filter((s) => completion.doneIds.includes(s.shardId)),
    failed: failures.filter((f) => completion.failedIds.includes(f.shardId)),
  };
}

/** The outcome of a build that publishes nothing: a failed manifest (why, and the config). */
export async function failBuild(
  deps: Deps,
  spec: BuildSpec,
  sections: PublishFacts['sections'],
  decision: PublishDecision,
  reason: string,
  more: Record<string, unknown> = {},
): Promise<Outcome> {
  const manifest = {
    ...failedManifest({ command: 'build', reason, sections, config: spec.config }),
    ...more,
  };
  await deps.store.put(buildPaths(spec.id).manifest, JSON.stringify(manifest, null, 2) + '\n');
  // The reasons lines were set aside are not lost with the build (quarantine.jsonl).
  await publishFailedQuarantine(deps, spec.id);
  const outcome: Outcome = {
    buildId: spec.id,
    state: 'failed',
    stage: 'fanin',
    reason,
    completedAt: deps.now().toISOString(),
    judgedShare: decision.judgedShare,
    samplesLost: decision.samplesLost,
  };
  await recordOutcome(deps, outcome);
  return outcome;
}

/** What the balance step returns: the balanced rows, or why the build fails. */
export type Balanced =
  | {
      result: BalanceResult;
      before: Profile;
      quarantine: QuarantineRecord[];
      rejudged: { shardId: string; cause: string }[];
    }
  /** Why the build fails; the batches judged again before a failed balance are listed. */
  | { reason: string; rejudged: { shardId: string; cause: string }[] };

/**
 * Balances the done batches' results. Results stream in shard order, prefetching a
 * few blobs ahead; order does not change the dataset, only how long this takes. A
 * missing or corrupt results blob is judged again (the verdict cache makes that cheap)
 * rather than publish without it or fail the build. A wave-judged build's first round
 * judged nothing: the rows are the waves', the planner's selection offered. When
 * near-dedup runs out of a stratum's candidates, the results stream again through a
 * balancer with the wider margin the error asks for (at most MAX_PASSES scans).
 */
export async function balanceResults(
  deps: Deps,
  spec: BuildSpec,
  round: RoundResults,
  sums: PublishFacts['sums'],
  waved: { judged: AnnotatedRow[]; offered: AnnotatedRow[] } | null,
  context: InvocationContext,
): Promise<Balanced> {
  let margin: number | undefined;
  for (let pass = 1; ; pass++) {
    const balancer = new StreamingBalancer(spec.config, {
      ...(margin !== undefined ? { margin } : {}),
      pass,
    });
    for (const [reason, n] of Object.entries(sums.quarantineByReason))
      for (let i = 0; i < (n ?? 0); i++) balancer.recordQuarantine(reason as QuarantineReason);
    const streamed = await streamResults(deps, spec, round, balancer, context);
    if ('reason' in streamed) return streamed;
    const { before, quarantine, rejudged } = streamed;
    if (waved) {
      for (const row of waved.judged) before.add(row);
      for (const row of waved.offered) balancer.offer(row);
    }
    try {
      const result = balancer.finish();
      quarantine.sort((a, b) => a.line - b.line);
      return { result, before: before.snapshot(), quarantine, rejudged };
    } catch (err) {
      if (err instanceof NearDedupRefillError && pass < MAX_PASSES) {
        context.log(`fan-in: build ${spec.id}: ${err.message} (pass ${pass + 1})`);
        margin = err.margin;
        continue;
      }
      if (err instanceof BalanceError) return { reason: errorText(err), rejudged };
      throw err;
    }
  }
}

/** Streams every done batch's results into `balancer`: the profile, quarantine and re-judged batches. */
async function streamResults(
  deps: Deps,
  spec: BuildSpec,
  round: RoundResults,
  balancer: StreamingBalancer,
  context: InvocationContext,
): Promise<
  | { before: ProfileBuilder; quarantine: QuarantineRecord[]; rejudged: Balanced['rejudged'] }
  | { reason: string; rejudged: Balanced['rejudged'] }
> {
  const p = buildPaths(spec.id);
  const quarantine: QuarantineRecord[] = [];
  const before = new ProfileBuilder(spec.config);
  const ids = round.completion.doneIds;
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
      const cause = results;
      context.warn(`fan-in: results of ${sid} ${cause}; judging the shard again`);
      try {
        results = await rejudgeBatch(deps, spec, sid);
      } catch (err) {
        return {
          reason: `results of ${sid} ${cause}, and judging the shard again failed: ${errorText(err)}`,
          rejudged: [],
        };
      }
      rejudged.push({ shardId: sid, cause });
    }
    for (const row of results.rows) {
      before.add(row);
      balancer.offer(row);
    }
    quarantine.push(...results.quarantine);
  }
  return { before, quarantine, rejudged };
}

/**
 * A batch's committed results, checked line by line; a string naming the first
 * problem when a blob is missing or a line is not what the batch writes.
 */
export function parseResults(
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

/** SHA-256, line count and size of a text written. */
export const digest = (text: string) => {
  const buf = Buffer.from(text, 'utf8');
  let lines = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++;
  return { sha256: createHash('sha256').update(buf).digest('hex'), lines, bytes: buf.length };
};

/** Writes train (and validation) and the dataset's quarantine; their digests by file name. */
export async function writeDataset(
  deps: Deps,
  spec: BuildSpec,
  result: BalanceResult,
  quarantine: readonly QuarantineRecord[],
): Promise<{
  outputs: Record<string, ReturnType<typeof digest>>;
  splitTexts: Record<string, string>;
}> {
  const p = buildPaths(spec.id);
  const outputs: Record<string, ReturnType<typeof digest>> = {};
  const splitTexts: Record<string, string> = {};
  for (const split of ['train', 'validation', 'test'] as const) {
    const share = split === 'validation' ? spec.config.validation : (spec.config.test ?? 0);
    if (split !== 'train' && !(share > 0)) continue;
    const text = toJsonl(result[split]);
    splitTexts[split] = text;
    outputs[`${split}.jsonl`] = digest(text);
    await deps.store.put(`${p.datasetPrefix}${split}.jsonl`, text);
  }
  if (spec.config.nearDedup) {
    // The near-duplicates the selection walk removed, beside the dataset (docs/dedup.md).
    const text = toJsonl(result.duplicates);
    outputs['duplicates.jsonl'] = digest(text);
    await deps.store.put(`${p.datasetPrefix}duplicates.jsonl`, text);
  }
  const quarantineText = toJsonl(quarantine);
  outputs['quarantine.jsonl'] = digest(quarantineText);
  await deps.store.put(p.datasetQuarantine, quarantineText);
  return { outputs, splitTexts };
}

/**
 * Writes manifest.json and report.html. The report is a view of the manifest: failing
 * to draw it must not cost the dataset (a storage error writing it is transient and
 * retried like any other).
 */
export async function writeManifest(
  deps: Deps,
  buildId: string,
  manifest: Record<string, unknown>,
  context: InvocationContext,
): Promise<void> {
  const p = buildPaths(buildId);
  await deps.store.put(p.manifest, JSON.stringify(manifest, null, 2) + '\n');
  let report: string | null = null;
  try {
    report = await renderReport(manifest);
  } catch (err) {
    context.error(`fan-in: build ${buildId}: report.html not drawn: ${errorText(err)}`);
  }
  if (report !== null) await deps.store.put(`${p.datasetPrefix}${REPORT_FILE}`, report);
}

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
