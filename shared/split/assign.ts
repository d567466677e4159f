/**
 * Leak-free train / validation / test assignment with the class ratio held per split.
 *
 * Groups: samples sharing a conversation or a near-duplicate cluster are one group
 * (union-find over both relations), and a group never straddles two splits.
 *
 * Targets: each class's n_c samples are shared out by largest remainder, so
 * t(split, c) = ⌊share × n_c⌋ plus one for the largest fractional parts (ties to the
 * earlier split), and Σ_split t(split, c) = n_c exactly.
 *
 * Rule: groups are placed largest first (they are the hard ones), equal sizes in the
 * order of hash(seed, groupKey) where groupKey is the group's smallest sample id; each
 * goes to the split where it adds least to Σ_c |count − target| (ties: the split with
 * the largest share of its target still unfilled for the group's classes, then the
 * earlier split). Singletons come last and fill the remaining gaps one by one, so the
 * per-split class counts are exact whenever singleton supply allows; otherwise the
 * deviation Σ |count − target| is reported per split and class, never hidden.
 *
 * Everything depends on ids, labels, groups and the seed: any row order gives the
 * same assignment.
 */
import { hash64, seed32 } from '../util/hash';
import { SPLITS, checkShares, type SplitName } from './shares';
import { PermanentError } from '../errors';

export interface SplitInput {
  id: string;
  conversationId: string;
  label: number | string;
  /** Near-duplicate cluster (e.g. the kept id), when dedup found one. */
  clusterId?: string;
}

export type ClassCounts = Record<string, number>;

export interface SplitResult {
  /** Split of every sample, by id. */
  assignment: Map<string, SplitName>;
  /** Samples per split per class (class = String(label)). */
  counts: Record<SplitName, ClassCounts>;
  /** Largest-remainder targets per split per class. */
  targets: Record<SplitName, ClassCounts>;
  /** |count − target| per split per class, and its total. */
  deviation: { bySplit: Record<SplitName, ClassCounts>; total: number };
  /** Groups formed (conversation ∪ cluster). */
  groups: number;
}

export class SplitInputError extends PermanentError {}

/** Largest-remainder apportionment of n over shares (ties to the earlier index). */
export function apportion(n: number, shares: readonly number[]): number[] {
  const exact = shares.map((s) => s * n);
  const out = exact.map((x) => Math.floor(x + 1e-9));
  let left = n - out.reduce((a, b) => a + b, 0);
  const order = exact
    .map((x, i) => ({ i, r: x - Math.floor(x + 1e-9) }))
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    out[i]!++;
    left--;
  }
  return out;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Assigns samples to train / validation / test (see the module note). */
export function assignSplits(
  samples: readonly SplitInput[],
  shares: readonly number[],
  seed: number | string = 0,
): SplitResult {
  const sh = checkShares(shares, 'shares');
  const n = samples.length;
  const byId = new Map<string, number>();
  samples.forEach((s, i) => {
    if (byId.has(s.id))
      throw new SplitInputError(`split: sample id ${JSON.stringify(s.id)} appears twice`);
    byId.set(s.id, i);
  });

  // Union-find over samples; conversation and cluster ids link their members.
  const parent = Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const union = (a: number, b: number) => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const firstOf = new Map<string, number>();
  samples.forEach((s, i) => {
    for (const key of [
      `c\u0000${s.conversationId}`,
      s.clusterId === undefined ? '' : `d\u0000${s.clusterId}`,
    ]) {
      if (!key) continue;
      const f = firstOf.get(key);
      if (f === undefined) firstOf.set(key, i);
      else union(f, i);
    }
  });

  const classes = [...new Set(samples.map((s) => String(s.label)))].sort(cmp);
  const ci = new Map(classes.map((c, i) => [c, i]));
  interface Group {
    key: string;
    members: number[];
    perClass: number[];
    h: [number, number];
  }
  const groupsByRoot = new Map<number, Group>();
  samples.forEach((s, i) => {
    const r = find(i);
    let g = groupsByRoot.get(r);
    if (!g) {
      g = { key: s.id, members: [], perClass: classes.map(() => 0), h: [0, 0] };
      groupsByRoot.set(r, g);
    }
    g.members.push(i);
    g.perClass[ci.get(String(s.label))!]!++;
    if (s.id < g.key) g.key = s.id;
  });
  const s32 = seed32(seed);
  const groups = [...groupsByRoot.values()];
  for (const g of groups) g.h = hash64(g.key, s32);
  groups.sort(
    (a, b) =>
      b.members.length - a.members.length ||
      a.h[0] - b.h[0] ||
      a.h[1] - b.h[1] ||
      cmp(a.key, b.key),
  );

  const supply = classes.map(() => 0);
  for (const s of samples) supply[ci.get(String(s.label))!]!++;
  const per = classes.map((_, c) => apportion(supply[c]!, sh));
  const target = (s: number, c: number) => per[c]![s]!;
  const count = SPLITS.map(() => classes.map(() => 0));

  const assignment = new Map<string, SplitName>();
  for (const g of groups) {
    let best = 0;
    let bestCost = Infinity;
    let bestNeed = -Infinity;
    for (let s = 0; s < SPLITS.length; s++) {
      let cost = 0;
      let need = 0;
      g.perClass.forEach((v, c) => {
        if (v === 0) return;
        const a = count[s]![c]!;
        const t = target(s, c);
        cost += Math.abs(a + v - t) - Math.abs(a - t);
        need += (v * (t - a)) / Math.max(t, 1);
      });
      if (cost < bestCost || (cost === bestCost && need > bestNeed)) {
        best = s;
        bestCost = cost;
        bestNeed = need;
      }
    }
    g.perClass.forEach((v, c) => (count[best]![c]! += v));
    const split = SPLITS[best]!;
    for (const m of g.members) assignment.set(samples[m]!.id, split);
  }

  const table = (f: (s: number, c: number) => number) =>
    Object.fromEntries(
      SPLITS.map((name, s) => [name, Object.fromEntries(classes.map((cls, c) => [cls, f(s, c)]))]),
    ) as Record<SplitName, ClassCounts>;
  let total = 0;
  const bySplit = table((s, c) => {
    const d = Math.abs(count[s]![c]! - target(s, c));
    total += d;
    return d;
  });
  return {
    assignment,
    counts: table((s, c) => count[s]![c]!),
    targets: table(target),
    deviation: { bySplit, total },
    groups: groups.length,
  };
}
