/**
 * What a complete build publishes, decided without I/O: whether the judged share
 * allows it, and the manifest sections that describe the build (the fan-in reads the
 * markers and results, calls these, and writes what they return). See
 * shared/report/build-manifest.ts for how the sections become a manifest.
 */
import type { JudgeDescription } from '../judge/types';
import { redactionSummary } from '../samples/redact';
import { judgeSection, pipelineSection } from '../report/build-manifest';
import {
  addUsage,
  decidePublish,
  emptyUsage,
  sumBatches,
  usageByWave,
  type BatchFailure,
  type BatchSummary,
  type BuildSpec,
  type Completion,
  type JudgeUsage,
  type PublishDecision,
} from './spec';

/** The marker bodies of a complete round: the done and failed batches that count. */
export interface RoundResults {
  completion: Completion & { doneIds: string[]; failedIds: string[] };
  done: BatchSummary[];
  failed: BatchFailure[];
}

/** The waves of a wave-judged build once judging is over. */
export interface WavesResults {
  summaries: BatchSummary[];
  failures: BatchFailure[];
  /** Wave batches whose results were missing or corrupt and were judged again. */
  rejudged: { wave: number; shardId: string; cause: string }[];
}

export interface PublishFacts {
  decision: PublishDecision;
  /** The manifest sections before the balance: build, pipeline, judge, telemetry, redaction, batches. */
  sections: Record<string, unknown> & { batches: Record<string, unknown> };
  /** Sums of the first round's batches (row counts, quarantine by reason). */
  sums: ReturnType<typeof sumBatches>;
}

/** The build's identity in the manifest. */
export function buildInfo(spec: BuildSpec) {
  return {
    id: spec.id,
    createdBy: spec.createdBy,
    source: spec.source,
    ...(spec.window ? { window: spec.window } : {}),
    minJudgedShare: spec.minJudgedShare,
  };
}

/**
 * The publish decision and the manifest sections of a complete build. The judged share
 * counts the samples sent to the judge: all of them, or the waves' ones.
 */
export function publishFacts(
  spec: BuildSpec,
  round: RoundResults,
  waved: WavesResults | null,
  labelledBy: JudgeDescription,
): PublishFacts {
  const { completion: c, done, failed } = round;
  const sums = sumBatches(done);
  const waveSums = waved ? sumBatches(waved.summaries) : null;
  const judgeSums = waveSums ?? sums;
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
  const usage = [sums.usage, waveSums?.usage]
    .filter((u): u is JudgeUsage => !!u)
    .reduce<JudgeUsage | null>((a, u) => addUsage(a ?? emptyUsage(), u), null);
  const sections = {
    build: buildInfo(spec),
    pipeline: pipelineSection(spec.pipeline, spec.history, sums.assembly),
    judge: judgeSection({
      name: spec.judge.name,
      calls: judgeSums.judgeCalls,
      batchSize: spec.judge.batchSize,
      samplesJudged: judgeSums.samples,
      labelled: judgeSums.labelled,
      unlabeled: judgeSums.unlabeled,
      unlabeledByCause: judgeSums.unlabeledByCause,
      labelledBy,
      usage,
      ...(waved ? { byWave: usageByWave(waved.summaries) } : {}),
    }),
    telemetry: { rows: sums.rows, validTurns: sums.turns, outsideWindow: sums.outsideWindow },
    redaction: redactionSummary(spec.redact, sums.redactions),
    batches,
  };
  return { decision, sections, sums };
}

/** The sections once first-round batches were judged again at the balance: listed under batches. */
export function withRejudged(
  sections: PublishFacts['sections'],
  rejudged: readonly { shardId: string; cause: string }[],
): PublishFacts['sections'] {
  if (rejudged.length === 0) return sections;
  return { ...sections, batches: { ...sections.batches, rejudged } };
}
