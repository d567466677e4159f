/**
 * The manifest of a dataset, assembled in one place for every producer: the fan-in
 * (a deployed build), `run` and `balance` (the CLI, `run --in-process` included).
 * What differs between them is an explicit input: the command, the sections that
 * describe the run (in the order they appear), the wave report, whether a status is
 * stated. Key order is part of the bytes: manifests are compared byte for byte.
 */
import type { BalanceConfig } from '../contracts/config';
import type { BalanceManifest } from '../balance/balancer';
import { costSection, type CostSection } from '../judge/prices';
import type { JudgeDescription } from '../judge/types';
import type { AssemblyStats, HistoryOptions, Pipeline } from '../samples/assemble';
import type { WavePlanner } from '../waves/planner';
import type { Profile } from './profile';

/** The tool that wrote a manifest: the one place its version is written (package.json's). */
export const TOOL = { name: 'sft-balancer', version: '0.1.0' } as const;

export type ManifestCommand = 'build' | 'run' | 'balance';

export interface ManifestParts {
  command: ManifestCommand;
  /** The fan-in states the outcome ('succeeded'); the CLI's manifests have no status. */
  status?: 'succeeded';
  /** What the run was (source or build, telemetry, pipeline, redaction, judge, batches...), in order. */
  sections: Record<string, unknown>;
  /** The wave report of the delivered rows; absent when every sample was judged. */
  waves?: unknown;
  /** The balancer's manifest (config, seed, input, quarantine, targets, selected...). */
  balance: BalanceManifest;
  /** The label profile before the balance (absent for `balance`) and after it. */
  profile: { before?: Profile | undefined; after: Profile };
  /** Sections after the profile (the router probe's), in order. */
  extra?: Record<string, unknown>;
  /** Digest of every file written, by name. */
  outputs: Record<string, unknown>;
}

/** The manifest of a dataset that was written. */
export function buildManifest(p: ManifestParts): Record<string, unknown> {
  return {
    ...(p.status ? { status: p.status } : {}),
    tool: TOOL,
    command: p.command,
    ...p.sections,
    ...(p.waves !== undefined ? { waves: p.waves } : {}),
    ...p.balance,
    profile: { ...(p.profile.before ? { before: p.profile.before } : {}), after: p.profile.after },
    ...p.extra,
    outputs: p.outputs,
  };
}

/** The manifest of a build that failed before a dataset was written: why, and its config. */
export function failedManifest(p: {
  command: ManifestCommand;
  reason: string;
  sections: Record<string, unknown>;
  config: BalanceConfig;
}): Record<string, unknown> {
  return {
    status: 'failed',
    reason: p.reason,
    tool: TOOL,
    command: p.command,
    ...p.sections,
    config: p.config,
  };
}

/** The manifest's `pipeline` section: history options only where they apply. */
export function pipelineSection(name: Pipeline, history: HistoryOptions, assembly: AssemblyStats) {
  return { name, history: name === 'conversation' ? history : null, assembly };
}

/** The manifest's `judge` section; the cost from the tokens used (none when nothing was used). */
export function judgeSection(j: {
  name: string;
  calls: number;
  batchSize: number;
  samplesJudged: number;
  labelled: number;
  unlabeled: number;
  unlabeledByCause: Record<string, number>;
  /** The judge's own counters (the CLI reports them). */
  stats?: unknown;
  labelledBy: JudgeDescription;
  usage: Parameters<typeof costSection>[0] | null;
  byWave?: CostSection['byWave'];
}) {
  return {
    name: j.name,
    calls: j.calls,
    batchSize: j.batchSize,
    samplesJudged: j.samplesJudged,
    labelled: j.labelled,
    unlabeled: j.unlabeled,
    unlabeledByCause: j.unlabeledByCause,
    ...(j.stats !== undefined ? { stats: j.stats } : {}),
    labelledBy: j.labelledBy,
    ...(j.usage ? { cost: costSection(j.usage, j.labelledBy.pricing, j.byWave) } : {}),
  };
}

/** The manifest's `waves` section: the planner's report on the rows delivered. */
export const wavesReport = (
  planner: WavePlanner,
  delivered: readonly { id: string; label: 0 | 1 }[],
): ReturnType<WavePlanner['report']> =>
  planner.report(delivered.map((l) => ({ id: l.id, label: l.label })));
