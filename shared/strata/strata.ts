/**
 * Stratifiers: the seed's cheap signals turned into stratum values. Each is a pure
 * function of one row; a stratum key combines the values of the chosen stratifiers.
 */
import type { Bucket, BalanceConfig, ComplexityConfig, StratifierName } from '../contracts/config';

export interface SignalRow {
  turnIndex: number;
  turnCount: number;
  model: string;
  numRequests: number;
  turnDurationMs: number;
  promptTokenDelta: number;
  tools: readonly string[];
}

/** The index of the first bucket whose [min, max] holds `turnCount`, or -1 when none does. */
export function bucketIndex(turnCount: number, buckets: readonly Bucket[]): number {
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i]!;
    if (turnCount >= b.min && turnCount <= b.max) return i;
  }
  return -1;
}

/** Strategy 1: the bucket whose [min, max] holds `turnCount`, or null when none does. */
export function turnBucket(turnCount: number, buckets: readonly Bucket[]): string | null {
  return buckets[bucketIndex(turnCount, buckets)]?.name ?? null;
}

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
const ramp = (value: number, [low, high]: readonly [number, number]) =>
  high === low ? (value >= high ? 1 : 0) : clamp01((value - low) / (high - low));

/** Distinct tool names used in a turn. */
export function toolDiversity(tools: readonly string[]): number {
  if (tools.length < 2) return tools.length;
  return new Set(tools).size;
}

/**
 * Strategy 2: a complexity score in [0, 1], the mean of four capped signals, so a
 * flood of tool calls alone reaches at most 0.25.
 */
export function complexityScore(row: SignalRow, c: ComplexityConfig): number {
  const s =
    ramp(row.numRequests, c.numRequests) +
    ramp(row.turnDurationMs, c.turnDurationMs) +
    ramp(toolDiversity(row.tools), c.toolDiversity) +
    ramp(row.promptTokenDelta, c.promptTokenDelta);
  return s / 4;
}

export type ComplexityTier = 'low' | 'medium' | 'high';

export function complexityTier(score: number, c: ComplexityConfig): ComplexityTier {
  if (score < c.tiers[0]) return 'low';
  if (score < c.tiers[1]) return 'medium';
  return 'high';
}

/** Strategy 3: "reasoning" when the chosen model starts with a listed prefix, else "fast". */
export function modelFamily(
  model: string,
  reasoningModels: readonly string[],
): 'reasoning' | 'fast' {
  const m = model.toLowerCase();
  for (const p of reasoningModels) if (m.startsWith(p.toLowerCase())) return 'reasoning';
  return 'fast';
}

export type Position = 'early' | 'mid' | 'late';

/** Where a turn sits in its conversation, in thirds. */
export function turnPosition(turnIndex: number, turnCount: number): Position {
  const f = turnIndex / turnCount;
  if (f <= 1 / 3) return 'early';
  if (f <= 2 / 3) return 'mid';
  return 'late';
}

export type Strata = Record<string, string>;

/**
 * The stratum values of a row for the chosen stratifiers, or null when the row falls
 * outside them (a turn count in no bucket): such rows are counted and excluded.
 */
export function strataOf(
  row: SignalRow,
  stratify: readonly StratifierName[],
  cfg: Pick<BalanceConfig, 'buckets' | 'reasoningModels' | 'complexity'>,
): Strata | null {
  const out: Strata = {};
  for (const name of stratify) {
    switch (name) {
      case 'turnBucket': {
        const b = turnBucket(row.turnCount, cfg.buckets);
        if (b === null) return null;
        out.turnBucket = b;
        break;
      }
      case 'complexity':
        out.complexity = complexityTier(complexityScore(row, cfg.complexity), cfg.complexity);
        break;
      case 'modelFamily':
        out.modelFamily = modelFamily(row.model, cfg.reasoningModels);
        break;
      case 'position':
        out.position = turnPosition(row.turnIndex, row.turnCount);
        break;
    }
  }
  return out;
}

/** A stable string key for a strata record, in stratifier order ("A|high"; "all" for none). */
export function strataKey(strata: Strata, stratify: readonly StratifierName[]): string {
  if (stratify.length === 0) return 'all';
  let key = '';
  for (let i = 0; i < stratify.length; i++) {
    if (i > 0) key += '|';
    key += strata[stratify[i] as string];
  }
  return key;
}

/** The stratifiers of a config compiled to integer stratum codes, for the hot path. */
export interface CompiledStrata {
  /** Number of distinct codes (product of each stratifier's value count). */
  readonly size: number;
  /** A row's stratum code in [0, size), or -1 when it falls outside the strata. */
  code(row: SignalRow): number;
  strata(code: number): Strata;
  key(code: number): string;
}

const TIERS: readonly ComplexityTier[] = ['low', 'medium', 'high'];
const FAMILIES = ['reasoning', 'fast'] as const;
const POSITIONS: readonly Position[] = ['early', 'mid', 'late'];

export function compileStrata(
  stratify: readonly StratifierName[],
  cfg: Pick<BalanceConfig, 'buckets' | 'reasoningModels' | 'complexity'>,
): CompiledStrata {
  const values: string[][] = stratify.map((name) => {
    switch (name) {
      case 'turnBucket':
        return cfg.buckets.map((b) => b.name);
      case 'complexity':
        return [...TIERS];
      case 'modelFamily':
        return [...FAMILIES];
      case 'position':
        return [...POSITIONS];
    }
  });
  const familyCache = new Map<string, number>();
  const digit = (name: StratifierName, row: SignalRow): number => {
    switch (name) {
      case 'turnBucket':
        return bucketIndex(row.turnCount, cfg.buckets);
      case 'complexity':
        return TIERS.indexOf(complexityTier(complexityScore(row, cfg.complexity), cfg.complexity));
      case 'modelFamily': {
        let f = familyCache.get(row.model);
        if (f === undefined) {
          f = modelFamily(row.model, cfg.reasoningModels) === 'reasoning' ? 0 : 1;
          if (familyCache.size < 10_000) familyCache.set(row.model, f);
        }
        return f;
      }
      case 'position':
        return POSITIONS.indexOf(turnPosition(row.turnIndex, row.turnCount));
    }
  };
  const size = values.reduce((a, v) => a * v.length, 1);
  const decode = (code: number): string[] => {
    const out: string[] = new Array<string>(values.length);
    for (let i = values.length - 1; i >= 0; i--) {
      const n = values[i]!.length;
      out[i] = values[i]![code % n]!;
      code = Math.floor(code / n);
    }
    return out;
  };
  return {
    size,
    code(row) {
      let code = 0;
      for (let i = 0; i < stratify.length; i++) {
        const d = digit(stratify[i]!, row);
        if (d < 0) return -1;
        code = code * values[i]!.length + d;
      }
      return code;
    },
    strata(code) {
      const vals = decode(code);
      const out: Strata = {};
      stratify.forEach((name, i) => (out[name] = vals[i]!));
      return out;
    },
    key(code) {
      return stratify.length === 0 ? 'all' : decode(code).join('|');
    },
  };
}
