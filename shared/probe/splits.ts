/**
 * Which rows train and which score: k folds grouped by conversation (a conversation's
 * turns share wording and signals, so splitting one across folds would leak), and a
 * training order that depends on the seed and the ids, not on the order of the lines.
 */
import { hash64, seed32 } from '../util/hash';

/**
 * The fold (0..k-1) of each row: conversations ordered by a seeded hash of their id,
 * then dealt round-robin, so folds hold near-equal numbers of conversations.
 */
export function groupedFolds(groups: readonly string[], k: number, seed: number): Int32Array {
  const s = seed32(`folds:${seed}`);
  const keys = [...new Set(groups)]
    .map((g) => ({ g, h: hash64(g, s) }))
    .sort((a, b) => a.h[0] - b.h[0] || a.h[1] - b.h[1] || (a.g < b.g ? -1 : a.g > b.g ? 1 : 0));
  const foldOf = new Map<string, number>();
  keys.forEach(({ g }, i) => foldOf.set(g, i % k));
  return Int32Array.from(groups, (g) => foldOf.get(g)!);
}

/** Row positions sorted by a seeded hash of each row's id (then by position). */
export function hashOrder(
  ids: readonly string[],
  rows: readonly number[],
  seed: number,
): Int32Array {
  const s = seed32(`order:${seed}`);
  const h = rows.map((r) => hash64(ids[r]!, s));
  const idx = rows.map((_, i) => i);
  idx.sort((a, b) => h[a]![0] - h[b]![0] || h[a]![1] - h[b]![1] || rows[a]! - rows[b]!);
  return Int32Array.from(idx, (i) => rows[i]!);
}
