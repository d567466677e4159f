import { describe, expect, it } from 'vitest';
import {
  groupedFolds,
  routerText,
  runProbe,
  textFeatures,
  verdictOf,
  type Figures,
  type ProbeLine,
} from '../../shared/probe';
import { syntheticLines } from './helpers';

const split = (lines: ProbeLine[], heldOut: number) => ({
  train: lines.slice(0, lines.length - heldOut),
  validation: lines.slice(lines.length - heldOut),
});

describe('runProbe on synthetic labels', () => {
  it('learns labels the text carries: text AUC above 0.9, and the verdict says strong', () => {
    const lines = syntheticLines({ n: 3000, seed: 1, source: 'text' });
    const { result } = runProbe(split(lines, 1000), { bootstrap: 200 });
    expect(result.status).toBe('ok');
    expect(result.scheme).toBe('split');
    const text = result.text!.evaluations.validation!;
    expect(text.auc).toBeGreaterThan(0.9);
    expect(text.aucCi![0]).toBeLessThanOrEqual(text.auc!);
    expect(text.aucCi![1]).toBeGreaterThanOrEqual(text.auc!);
    // The signals are coin flips here.
    expect(Math.abs(result.signals!.evaluations.validation!.auc! - 0.5)).toBeLessThan(0.06);
    expect(result.verdict!.kind).toBe('strong');
    expect(result.message).toMatch(
      /^the text predicts the labels strongly \(AUC (0\.9\d|1\.00) \[/,
    );
  });

  it('finds nothing in random labels: both AUCs within 0.06 of 0.5', () => {
    // 1,000 scored samples: the AUC's null standard deviation is ≈ 0.018; 0.06 is > 3 SD.
    const lines = syntheticLines({ n: 3000, seed: 2, source: 'random' });
    const { result } = runProbe(split(lines, 1000), { bootstrap: 200 });
    expect(Math.abs(result.text!.evaluations.validation!.auc! - 0.5)).toBeLessThan(0.06);
    expect(Math.abs(result.signals!.evaluations.validation!.auc! - 0.5)).toBeLessThan(0.06);
    expect(result.verdict!.kind).toBe('weak');
    expect(result.message).toContain('the text barely predicts the labels');
  });

  it('says the labels follow the signals when only the signals carry them', () => {
    const lines = syntheticLines({ n: 3000, seed: 3, source: 'signals' });
    const { result } = runProbe(split(lines, 1000), { bootstrap: 200 });
    const t = result.text!.evaluations.validation!.auc!;
    const g = result.signals!.evaluations.validation!.auc!;
    expect(g).toBeGreaterThan(0.95);
    expect(g - t).toBeGreaterThan(0.3);
    expect(result.verdict!.kind).toBe('signals');
    expect(result.message).toBe(
      `the labels follow the pre-stratification signals more than the text (${g.toFixed(2)} vs ${t.toFixed(2)}): check the judge`,
    );
  });

  it('reports per stratum, per position and the routing curve', () => {
    const lines = syntheticLines({ n: 1500, seed: 4, source: 'text' });
    const { result } = runProbe(split(lines, 600), { bootstrap: 100 });
    const ev = result.text!.evaluations.validation!;
    expect(Object.keys(ev.byStratum)).toEqual(['turnBucket=A', 'turnBucket=B', 'turnBucket=C']);
    expect(Object.keys(ev.byPosition).sort()).toEqual(['early', 'late', 'mid']);
    const sum = Object.values(ev.byStratum).reduce((a, f) => a + f.n, 0);
    expect(sum).toBe(ev.n);
    expect(ev.routing.map((p) => p.threshold)).toEqual([
      0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
    ]);
    // Raising the threshold sends fewer requests to the reasoning model.
    for (let i = 1; i < ev.routing.length; i++)
      expect(ev.routing[i]!.share).toBeLessThanOrEqual(ev.routing[i - 1]!.share);
    expect(ev.reasoning.support + ev.non_reasoning.support).toBe(ev.n);
  });

  it('gives the same bytes on a rerun', () => {
    const lines = syntheticLines({ n: 1200, seed: 5, source: 'text' });
    const a = runProbe({ train: lines }, { bootstrap: 100 });
    const b = runProbe({ train: lines }, { bootstrap: 100 });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    const c = runProbe({ train: lines }, { bootstrap: 100, seed: 43 });
    expect(JSON.stringify(c.result)).not.toBe(JSON.stringify(a.result));
  });

  it('trains the same model whatever the order of the lines', () => {
    const lines = syntheticLines({ n: 1000, seed: 6, source: 'text' });
    const held = lines.slice(800);
    const a = runProbe({ train: lines.slice(0, 800), validation: held }, { bootstrap: 0 });
    const b = runProbe(
      { train: lines.slice(0, 800).reverse(), validation: held },
      { bootstrap: 0 },
    );
    expect(b.result.text!.evaluations.validation!.auc).toBe(
      a.result.text!.evaluations.validation!.auc,
    );
  });
});

describe('splits', () => {
  it('keeps each conversation in one fold, and the folds near-equal in conversations', () => {
    const groups = Array.from({ length: 1000 }, (_, i) => `c${Math.floor(i / 4) ** 2 % 997}`);
    const fold = groupedFolds(groups, 5, 42);
    const foldOf = new Map<string, number>();
    groups.forEach((g, i) => {
      if (foldOf.has(g)) expect(fold[i]).toBe(foldOf.get(g));
      else foldOf.set(g, fold[i]!);
    });
    const perFold = [0, 0, 0, 0, 0];
    for (const f of foldOf.values()) perFold[f]!++;
    expect(Math.max(...perFold) - Math.min(...perFold)).toBeLessThanOrEqual(1);
  });

  it('cross-validates by conversation when the dataset has no held-out split', () => {
    const lines = syntheticLines({ n: 1000, seed: 7, source: 'text', turnsPerConversation: 5 });
    const { result, review } = runProbe({ train: lines }, { bootstrap: 100 });
    expect(result.scheme).toBe('kfold');
    expect(result.text!.folds).toHaveLength(5);
    expect(result.text!.evaluations.cv!.n).toBe(1000);
    expect(result.verdict!.on).toBe('cv');
    expect(result.settings.folds).toBe(5);
    expect(review.length).toBeLessThanOrEqual(50);
  });

  it('scores test before validation in the verdict, and names an empty split', () => {
    const lines = syntheticLines({ n: 1500, seed: 8, source: 'text' });
    const { result } = runProbe(
      { train: lines.slice(0, 1000), validation: lines.slice(1000, 1250), test: lines.slice(1250) },
      { bootstrap: 50 },
    );
    expect(Object.keys(result.text!.evaluations)).toEqual(['validation', 'test']);
    expect(result.verdict!.on).toBe('test');
    const empty = runProbe({ train: lines.slice(0, 1000), validation: [] }, { bootstrap: 50 });
    expect(empty.result.scheme).toBe('kfold');
    expect(empty.result.notes).toContain('validation split is empty: not scored');
  });
});

describe('label review', () => {
  it('lists the samples the text probe most confidently disputes, with the judge’s rationale', () => {
    const lines = syntheticLines({ n: 2000, seed: 9, source: 'text' });
    // Flip 20 labels: the probe should put them first.
    const flipped = new Set<string>();
    for (let i = 0; i < 2000; i += 100) {
      const l = lines[i]!;
      lines[i] = { ...l, label: l.label === 0 ? 1 : 0 };
      flipped.add(l.id);
    }
    const { result, review } = runProbe({ train: lines }, { bootstrap: 0, reviewSize: 20 });
    expect(review).toHaveLength(20);
    // The text gives each flipped label away: all 20 come first.
    expect(review.filter((r) => flipped.has(r.id))).toHaveLength(20);
    for (let i = 1; i < review.length; i++)
      expect(review[i]!.disagreement).toBeLessThanOrEqual(review[i - 1]!.disagreement);
    const first = review[0]!;
    expect(first.rationale).toMatch(/^cue /);
    expect(first.judge).toBe('test-judge');
    expect(first.disagreement).toBeGreaterThan(0.5);
    expect(first.probeReasoning).toBe(
      first.label === 0 ? 1 - first.disagreement : first.disagreement,
    );
    // Suspect: the other class's probability reaches that class's mean self-confidence.
    const t = result.labelReview!.thresholds;
    for (const r of review) {
      const threshold = r.label === 0 ? t.non_reasoning! : t.reasoning!;
      expect(r.suspect).toBe(r.disagreement >= threshold);
    }
    expect(result.labelReview!.suspects).toBe(review.filter((r) => r.suspect).length);
  });
});

describe('bad input', () => {
  it('one class: a skipped result that says so, no throw', () => {
    const lines = syntheticLines({ n: 200, seed: 10, source: 'text' }).map((l) => ({
      ...l,
      label: 0 as const,
    }));
    const { result, review } = runProbe({ train: lines });
    expect(result.status).toBe('skipped');
    expect(result.message).toBe(
      'train has one class (200 reasoning, 0 of the other): the probe needs both',
    );
    expect(result.verdict).toBeNull();
    expect(review).toEqual([]);
  });

  it('too few samples, an empty dataset and too few conversations: skipped with a reason', () => {
    const few = syntheticLines({ n: 12, seed: 11, source: 'text' });
    expect(runProbe({ train: few }).result.message).toBe(
      'too few samples in train for the probe: 12 (needs at least 30)',
    );
    expect(runProbe({ train: [] }).result.message).toBe('no samples in train: nothing to probe');
    const oneConv = syntheticLines({ n: 60, seed: 12, source: 'text', turnsPerConversation: 20 });
    expect(runProbe({ train: oneConv }).result.message).toBe(
      'too few conversations for 5-fold cross-validation: 3 (the folds are grouped by conversation)',
    );
  });

  it('a held-out split with one class: figures without an AUC, and a message', () => {
    const lines = syntheticLines({ n: 600, seed: 13, source: 'text' });
    const held = lines.slice(400).filter((l) => l.label === 1);
    const { result } = runProbe(
      { train: lines.slice(0, 400), validation: held },
      { bootstrap: 50 },
    );
    const ev = result.text!.evaluations.validation!;
    expect(ev.auc).toBeNull();
    expect(ev.message).toMatch(
      /^one class only \(0 reasoning, \d+ non_reasoning\): AUC undefined$/,
    );
    expect(result.verdict!.kind).toBe('unknown');
  });
});

describe('features', () => {
  it('reads the last message as the current one and the earlier ones as history', () => {
    const line = {
      messages: [
        { role: 'user' as const, content: 'first' },
        { role: 'user' as const, content: 'second' },
        { role: 'user' as const, content: 'now this' },
      ],
    };
    expect(routerText(line)).toEqual({ current: 'now this', history: 'first\nsecond' });
    const withHistory = textFeatures([line]);
    const without = textFeatures([{ messages: [line.messages[2]!] }]);
    expect(withHistory.ptr[1]).toBeGreaterThan(without.ptr[1]!);
  });

  it('gives unit-length rows', () => {
    const x = textFeatures(syntheticLines({ n: 20, seed: 14, source: 'text' }));
    for (let r = 0; r < x.rows; r++) {
      let sq = 0;
      for (let p = x.ptr[r]!; p < x.ptr[r + 1]!; p++) {
        sq += x.values[p]! ** 2;
      }
      expect(sq).toBeCloseTo(1, 5);
    }
  });
});

describe('verdictOf', () => {
  const fig = (auc: number | null): Figures => ({
    n: 100,
    auc,
    aucCi: auc === null ? null : [auc - 0.02, auc + 0.02],
    accuracy: 0.8,
    reasoning: { precision: 0.8, recall: 0.8, support: 50 },
    non_reasoning: { precision: 0.8, recall: 0.8, support: 50 },
  });
  it.each([
    // NVIDIA's reading: > 0.80 strong, > 0.70 useful; signals ahead by ≥ 0.05 (and > 0.70) wins.
    { text: 0.85, signals: 0.6, kind: 'strong' },
    { text: 0.8, signals: 0.6, kind: 'useful' },
    { text: 0.75, signals: 0.78, kind: 'useful' },
    { text: 0.7, signals: 0.5, kind: 'weak' },
    { text: 0.71, signals: 0.93, kind: 'signals' },
    { text: 0.9, signals: 0.99, kind: 'signals' },
    { text: 0.6, signals: 0.68, kind: 'weak' },
    { text: null, signals: 0.9, kind: 'unknown' },
  ])('text $text, signals $signals → $kind', ({ text, signals, kind }) => {
    expect(verdictOf('test', fig(text), fig(signals)).kind).toBe(kind);
  });

  it('reads as the issue asks', () => {
    expect(verdictOf('test', fig(0.71), fig(0.93)).message).toBe(
      'the labels follow the pre-stratification signals more than the text (0.93 vs 0.71): check the judge',
    );
  });
});
