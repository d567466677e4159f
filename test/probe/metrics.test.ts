import { describe, expect, it } from 'vitest';
import {
  bootstrapAuc,
  classification,
  rocAuc,
  rocCurve,
  routingCurve,
  shareForRecall,
} from '../../shared/probe';

describe('rocAuc', () => {
  it.each([
    // scikit-learn's documented example: 3 of the 4 pos/neg pairs ordered right.
    { scores: [0.1, 0.4, 0.35, 0.8], pos: [0, 0, 1, 1], auc: 0.75 },
    { scores: [0.1, 0.2, 0.3, 0.4], pos: [0, 0, 1, 1], auc: 1 },
    { scores: [0.1, 0.2, 0.3, 0.4], pos: [1, 1, 0, 0], auc: 0 },
    // A tie across classes counts half: pairs (0.5>0.2, 0.5=0.5, 0.9>0.2, 0.9>0.5) = 3.5/4.
    { scores: [0.2, 0.5, 0.5, 0.9], pos: [0, 1, 0, 1], auc: 0.875 },
    // All scores tied: every pair is half.
    { scores: [0.5, 0.5, 0.5, 0.5, 0.5], pos: [1, 0, 1, 0, 0], auc: 0.5 },
    // Ties within one class change nothing: 2 pos above 3 neg, with a tie at 0.7 among pos.
    { scores: [0.7, 0.7, 0.1, 0.2, 0.2], pos: [1, 1, 0, 0, 0], auc: 1 },
    // Two tie groups mixing classes: pos {0.3,0.6,0.6}, neg {0.3,0.6,0.1}.
    // Pairs: 0.3 vs (0.3 ½, 0.6 0, 0.1 1) = 1.5; 0.6 vs (1, ½, 1) = 2.5 twice → 6.5/9.
    { scores: [0.3, 0.6, 0.6, 0.3, 0.6, 0.1], pos: [1, 1, 1, 0, 0, 0], auc: 6.5 / 9 },
  ])('AUC of $scores with $pos is $auc', ({ scores, pos, auc }) => {
    expect(rocAuc(scores, pos)).toBeCloseTo(auc, 12);
  });

  it('is null when one class is missing', () => {
    expect(rocAuc([0.1, 0.9], [1, 1])).toBeNull();
    expect(rocAuc([], [])).toBeNull();
  });
});

describe('bootstrapAuc', () => {
  const n = 400;
  const scores = Array.from({ length: n }, (_, i) => ((i * 7919) % n) / n);
  const pos = scores.map((s, i) => (s + ((i * 104729) % 97) / 200 > 0.6 ? 1 : 0));

  it('gives the same interval for the same seed and a different one for another seed', () => {
    const a = bootstrapAuc(scores, pos, 1000, 7);
    expect(bootstrapAuc(scores, pos, 1000, 7)).toEqual(a);
    expect(bootstrapAuc(scores, pos, 1000, 8)).not.toEqual(a);
  });

  it('brackets the AUC with a sensible width', () => {
    const auc = rocAuc(scores, pos)!;
    const [lo, hi] = bootstrapAuc(scores, pos, 1000, 7)!;
    expect(lo).toBeLessThan(auc);
    expect(hi).toBeGreaterThan(auc);
    // The normal approximation's 95% width here is about 4 × 0.02; allow a factor of 2.
    expect(hi - lo).toBeGreaterThan(0.02);
    expect(hi - lo).toBeLessThan(0.2);
  });

  it('is null with no resamples or one class', () => {
    expect(bootstrapAuc(scores, pos, 0, 1)).toBeNull();
    expect(bootstrapAuc([0.1, 0.2], [0, 0], 100, 1)).toBeNull();
  });
});

describe('classification and routing', () => {
  // P(reasoning) per sample; pos = reasoning.
  const scores = [0.9, 0.8, 0.6, 0.4, 0.3, 0.2, 0.7, 0.1];
  const pos = [1, 1, 1, 1, 0, 0, 0, 0];

  it('counts accuracy and per-class precision and recall at 0.5', () => {
    const c = classification(scores, pos);
    // Said reasoning: 0.9, 0.8, 0.6 (pos) and 0.7 (neg): tp 3, fp 1, fn 1, tn 3.
    expect(c.accuracy).toBe(6 / 8);
    expect(c.reasoning).toEqual({ precision: 3 / 4, recall: 3 / 4, support: 4 });
    expect(c.non_reasoning).toEqual({ precision: 3 / 4, recall: 3 / 4, support: 4 });
  });

  it('routes the share above each threshold and reports its recall', () => {
    const curve = routingCurve(scores, pos, [0.5, 0.05, 0.95]);
    expect(curve.map((p) => p.threshold)).toEqual([0.05, 0.5, 0.95]);
    expect(curve[0]).toEqual({ threshold: 0.05, share: 1, recall: 1, precision: 0.5 });
    expect(curve[1]).toEqual({ threshold: 0.5, share: 0.5, recall: 0.75, precision: 0.75 });
    expect(curve[2]).toEqual({ threshold: 0.95, share: 0, recall: 0, precision: null });
  });

  it('finds the smallest share that reaches a recall', () => {
    // Top-down: 0.9 p, 0.8 p, 0.7 n, 0.6 p (3/4 at 4/8), 0.4 p (4/4 at 5/8).
    expect(shareForRecall(scores, pos, [0.5, 0.75, 1])).toEqual([
      { recall: 0.5, share: 2 / 8 },
      { recall: 0.75, share: 4 / 8 },
      { recall: 1, share: 5 / 8 },
    ]);
  });

  it('draws the ROC from (0,0) to (1,1)', () => {
    const roc = rocCurve(scores, pos);
    expect(roc[0]).toEqual({ fpr: 0, tpr: 0 });
    expect(roc.at(-1)).toEqual({ fpr: 1, tpr: 1 });
    expect(rocCurve(scores, pos, 3)).toHaveLength(3);
  });
});
