/**
 * Probe metrics. The positive class is "reasoning" (label 0): a score is the probe's
 * P(reasoning), and AUC is the chance a random reasoning sample scores above a random
 * non-reasoning one (ties count half: the Mann–Whitney form, exact).
 */
import { Rng } from '../util/prng';

/** Row positions sorted by score, ascending (stable on position for equal scores). */
function ascending(scores: ArrayLike<number>): Int32Array {
  const idx = Int32Array.from({ length: scores.length }, (_, i) => i);
  return idx.sort((a, b) => scores[a]! - scores[b]! || a - b);
}

/**
 * AUC from scores walked in ascending order, ties half; null when either class is absent.
 */
function aucSorted(
  scores: ArrayLike<number>,
  pos: ArrayLike<number>,
  order: Int32Array,
): number | null {
  let negBelow = 0;
  let sum = 0;
  let nPos = 0;
  let nNeg = 0;
  let k = 0;
  const n = order.length;
  while (k < n) {
    const s = scores[order[k]!]!;
    let gPos = 0;
    let gNeg = 0;
    while (k < n && scores[order[k]!] === s) {
      if (pos[order[k++]!]) gPos++;
      else gNeg++;
    }
    sum += gPos * (negBelow + 0.5 * gNeg);
    negBelow += gNeg;
    nPos += gPos;
    nNeg += gNeg;
  }
  return nPos > 0 && nNeg > 0 ? sum / (nPos * nNeg) : null;
}

/** Exact ROC AUC (ties half); null when one class is missing. `pos[i]` is 1 for reasoning. */
export function rocAuc(scores: ArrayLike<number>, pos: ArrayLike<number>): number | null {
  return aucSorted(scores, pos, ascending(scores));
}

/**
 * A percentile bootstrap interval of the AUC: `resamples` draws of n rows with
 * replacement from a seeded generator; draws holding one class are skipped. The rows are
 * sorted once; a draw picks sorted positions, so each resample is one linear pass.
 */
export function bootstrapAuc(
  scores: ArrayLike<number>,
  pos: ArrayLike<number>,
  resamples: number,
  seed: number,
  level = 0.95,
): [number, number] | null {
  const n = scores.length;
  if (n === 0 || resamples === 0) return null;
  const order = ascending(scores);
  const sortedPos = Uint8Array.from(order, (i) => (pos[i] ? 1 : 0));
  // groupEnd[k]: one past the last sorted position tied with k's score (set at group starts).
  const groupEnd = new Int32Array(n);
  for (let k = 0; k < n;) {
    const s = scores[order[k]!]!;
    let e = k + 1;
    while (e < n && scores[order[e]!] === s) e++;
    groupEnd[k] = e;
    k = e;
  }
  const rng = new Rng(seed >>> 0);
  const counts = new Uint32Array(n);
  const aucs: number[] = [];
  for (let r = 0; r < resamples; r++) {
    counts.fill(0);
    for (let d = 0; d < n; d++) counts[Math.floor(rng.next() * n)]!++;
    let negBelow = 0;
    let sum = 0;
    let nPos = 0;
    for (let k = 0; k < n;) {
      const e = groupEnd[k]!;
      let gPos = 0;
      let gNeg = 0;
      for (; k < e; k++) {
        if (sortedPos[k]) gPos += counts[k]!;
        else gNeg += counts[k]!;
      }
      sum += gPos * (negBelow + 0.5 * gNeg);
      negBelow += gNeg;
      nPos += gPos;
    }
    if (nPos > 0 && negBelow > 0) aucs.push(sum / (nPos * negBelow));
  }
  if (aucs.length === 0) return null;
  aucs.sort((a, b) => a - b);
  const tail = (1 - level) / 2;
  const lo = aucs[Math.floor(tail * (aucs.length - 1))]!;
  const hi = aucs[Math.ceil((1 - tail) * (aucs.length - 1))]!;
  return [lo, hi];
}

export interface ClassFigures {
  precision: number | null;
  recall: number | null;
  support: number;
}

export interface ClassificationFigures {
  accuracy: number;
  reasoning: ClassFigures;
  non_reasoning: ClassFigures;
}

/** Accuracy and per-class precision/recall when P(reasoning) ≥ `threshold` means reasoning. */
export function classification(
  scores: ArrayLike<number>,
  pos: ArrayLike<number>,
  threshold = 0.5,
): ClassificationFigures {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const said = scores[i]! >= threshold;
    if (pos[i]) {
      if (said) tp++;
      else fn++;
    } else if (said) fp++;
    else tn++;
  }
  const ratio = (a: number, b: number) => (b > 0 ? a / b : null);
  return {
    accuracy: ratio(tp + tn, tp + tn + fp + fn) ?? 0,
    reasoning: { precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn), support: tp + fn },
    non_reasoning: { precision: ratio(tn, tn + fn), recall: ratio(tn, tn + fp), support: tn + fp },
  };
}

export interface RoutingPoint {
  /** Send to the reasoning model when P(reasoning) ≥ threshold. */
  threshold: number;
  /** Share of requests sent to the reasoning model. */
  share: number;
  /** Share of reasoning-needed requests (label 0) that reach it. */
  recall: number | null;
  /** Share of what it receives that needed it. */
  precision: number | null;
}

/** The routing curve: share sent to the reasoning model against recall, per threshold. */
export function routingCurve(
  scores: ArrayLike<number>,
  pos: ArrayLike<number>,
  thresholds: readonly number[],
): RoutingPoint[] {
  const n = scores.length;
  let nPos = 0;
  for (let i = 0; i < n; i++) if (pos[i]) nPos++;
  return [...thresholds]
    .sort((a, b) => a - b)
    .map((threshold) => {
      let sent = 0;
      let hit = 0;
      for (let i = 0; i < n; i++) {
        if (scores[i]! >= threshold) {
          sent++;
          if (pos[i]) hit++;
        }
      }
      return {
        threshold,
        share: n > 0 ? sent / n : 0,
        recall: nPos > 0 ? hit / nPos : null,
        precision: sent > 0 ? hit / sent : null,
      };
    });
}

/**
 * The smallest share of requests that must go to the reasoning model to reach each
 * recall target (RouteLLM's call-performance threshold, on labels): the top-scored
 * requests first, ties sent together.
 */
export function shareForRecall(
  scores: ArrayLike<number>,
  pos: ArrayLike<number>,
  targets: readonly number[],
): { recall: number; share: number }[] {
  const order = ascending(scores).reverse();
  let nPos = 0;
  for (let i = 0; i < scores.length; i++) if (pos[i]) nPos++;
  if (nPos === 0) return [];
  const out: { recall: number; share: number }[] = [];
  const n = order.length;
  let hit = 0;
  let k = 0;
  let t = 0;
  const goals = [...targets].sort((a, b) => a - b);
  while (k < n && t < goals.length) {
    const s = scores[order[k]!]!;
    while (k < n && scores[order[k]!] === s) if (pos[order[k++]!]) hit++;
    while (t < goals.length && hit / nPos >= goals[t]! - 1e-12)
      out.push({ recall: goals[t++]!, share: k / n });
  }
  return out;
}

/** ROC points (false-positive rate, true-positive rate), at most `maxPoints`, ends kept. */
export function rocCurve(
  scores: ArrayLike<number>,
  pos: ArrayLike<number>,
  maxPoints = 101,
): { fpr: number; tpr: number }[] {
  const order = ascending(scores).reverse();
  let nPos = 0;
  for (let i = 0; i < scores.length; i++) if (pos[i]) nPos++;
  const nNeg = scores.length - nPos;
  if (nPos === 0 || nNeg === 0) return [];
  const pts = [{ fpr: 0, tpr: 0 }];
  let tp = 0;
  let fp = 0;
  let k = 0;
  while (k < order.length) {
    const s = scores[order[k]!]!;
    while (k < order.length && scores[order[k]!] === s) {
      if (pos[order[k++]!]) tp++;
      else fp++;
    }
    pts.push({ fpr: fp / nNeg, tpr: tp / nPos });
  }
  if (pts.length <= maxPoints) return pts;
  const step = (pts.length - 1) / (maxPoints - 1);
  return Array.from({ length: maxPoints }, (_, i) => pts[Math.round(i * step)]!);
}
