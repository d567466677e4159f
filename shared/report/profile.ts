/**
 * A profile of a set of labelled rows: counts per label along the dimensions the
 * report charts (turn count, turn bucket, position, model, complexity tier, judge
 * confidence). The jobs and the fan-in profile the rows they balance ("before") and
 * the rows they selected ("after") and write both into the manifest, so the report
 * reads its numbers from the manifest alone.
 */
import { z } from 'zod';
import type { EmittedSignals } from '../balance/emit';
import type { BalanceConfig } from '../contracts/config';
import {
  complexityScore,
  complexityTier,
  turnBucket,
  turnPosition,
  type SignalRow,
} from '../strata/strata';

const count = z.number().int().min(0);

/** Rows per label: "0" reasoning, "1" non-reasoning. */
export const LabelCountsSchema = z.object({ '0': count, '1': count });
export type LabelCounts = z.infer<typeof LabelCountsSchema>;

const byValue = z.record(z.string(), LabelCountsSchema);

export const ProfileSchema = z.object({
  rows: count,
  byLabel: LabelCountsSchema,
  /** Turn count (as a decimal string) → rows per label. */
  turnCount: byValue,
  /** Turn bucket name (or "outside") → rows per label. */
  turnBucket: byValue,
  position: byValue,
  model: byValue,
  complexity: byValue,
  /** Judge confidence in bins of 0.1 ("0.9" holds [0.9, 1.0]); "none" when the judge gave none. */
  confidence: byValue,
});
export type Profile = z.infer<typeof ProfileSchema>;

/** What profiling needs of a row: an annotated row and a dataset line both have it. */
export interface ProfileRow extends SignalRow {
  label: 0 | 1;
  confidence?: number;
  metadata?: Record<string, unknown>;
}

/**
 * What profiling needs of a row read without building it (shared/balance/emit.ts): the
 * tools as their number of distinct names, the confidence as metadata.confidence reads.
 */
export type ProfileSignals = EmittedSignals;

/** n distinct stand-in tool names: complexityScore reads the tools' diversity only. */
const standIns: string[][] = [];
const toolsOfDiversity = (n: number) =>
  (standIns[n] ??= Array.from({ length: n }, (_, i) => String(i)));

export const OUTSIDE_BUCKETS = 'outside';
export const NO_CONFIDENCE = 'none';

/** The lower edge of a confidence's 0.1-wide bin, as a label ("0.9" holds 1.0 too). */
export function confidenceBin(c: number | undefined): string {
  if (c === undefined || !Number.isFinite(c)) return NO_CONFIDENCE;
  const i = Math.min(9, Math.max(0, Math.floor(c * 10 + 1e-9)));
  return (i / 10).toFixed(1);
}

const sortedKeys = (r: Record<string, LabelCounts>, numeric = false) =>
  Object.fromEntries(
    Object.entries(r).sort(([a], [b]) =>
      numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0,
    ),
  );

/** Accumulates a profile; add order does not change the result. */
export class ProfileBuilder {
  private readonly p: Profile = {
    rows: 0,
    byLabel: { '0': 0, '1': 0 },
    turnCount: {},
    turnBucket: {},
    position: {},
    model: {},
    complexity: {},
    confidence: {},
  };

  constructor(private readonly config: Pick<BalanceConfig, 'buckets' | 'complexity'>) {}

  add(row: ProfileRow): void {
    const c = row.confidence ?? row.metadata?.confidence;
    this.count(row, typeof c === 'number' ? c : undefined);
  }

  /** {@link add} for a row read without building it: the same counts. */
  addSignals(s: ProfileSignals): void {
    const row = this.signalRow;
    row.label = s.label;
    row.turnIndex = s.turnIndex;
    row.turnCount = s.turnCount;
    row.model = s.model;
    row.numRequests = s.numRequests;
    row.turnDurationMs = s.turnDurationMs;
    row.promptTokenDelta = s.promptTokenDelta;
    row.tools = toolsOfDiversity(s.toolDiversity);
    this.count(row, s.confidence);
  }

  private readonly signalRow: ProfileRow = {
    label: 0,
    turnIndex: 0,
    turnCount: 0,
    model: '',
    numRequests: 0,
    turnDurationMs: 0,
    promptTokenDelta: 0,
    tools: [],
  };

  private count(row: ProfileRow, confidence: number | undefined): void {
    const l = row.label === 0 ? '0' : '1';
    const bump = (m: Record<string, LabelCounts>, k: string) => {
      (m[k] ??= { '0': 0, '1': 0 })[l]++;
    };
    this.p.rows++;
    this.p.byLabel[l]++;
    bump(this.p.turnCount, String(row.turnCount));
    bump(this.p.turnBucket, turnBucket(row.turnCount, this.config.buckets) ?? OUTSIDE_BUCKETS);
    bump(this.p.position, turnPosition(row.turnIndex, row.turnCount));
    bump(this.p.model, row.model);
    bump(
      this.p.complexity,
      complexityTier(complexityScore(row, this.config.complexity), this.config.complexity),
    );
    bump(this.p.confidence, confidenceBin(confidence));
  }

  /** The profile with keys in a fixed order, so the manifest is byte-stable. */
  snapshot(): Profile {
    return {
      rows: this.p.rows,
      byLabel: { ...this.p.byLabel },
      turnCount: sortedKeys(this.p.turnCount, true),
      turnBucket: sortedKeys(this.p.turnBucket),
      position: sortedKeys(this.p.position),
      model: sortedKeys(this.p.model),
      complexity: sortedKeys(this.p.complexity),
      confidence: sortedKeys(this.p.confidence),
    };
  }
}

/** Profiles of the rows offered to the balancer and of the rows it selected. */
export function profileRows(
  config: Pick<BalanceConfig, 'buckets' | 'complexity'>,
  rows: Iterable<ProfileRow>,
): Profile {
  const b = new ProfileBuilder(config);
  for (const r of rows) b.add(r);
  return b.snapshot();
}
