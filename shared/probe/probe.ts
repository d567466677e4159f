/**
 * The baseline router probe: does the text a router sees predict the labels, and do the
 * labels follow the cheap telemetry signals more than the text?
 *
 * Two logistic-regression probes with one learner: the text probe on hashed n-grams of
 * the user message (and the history the sample carries), the signals probe on the
 * telemetry signals the balance pre-stratifies by. Each is trained on train and scored
 * on validation and test, or, when the dataset has no held-out split, by k-fold grouped
 * by conversation. The result is a JSON-able object with every figure and setting; the
 * label review lists the held-out samples the text probe most confidently disputes.
 * Pure and deterministic: the same lines and settings give the same bytes.
 */
import { LABEL_NAMES, LABEL_REASONING } from '../contracts/rows';
import { seed32 } from '../util/hash';
import { turnPosition } from '../strata/strata';
import {
  SIGNAL_FEATURES,
  fitStandardiser,
  routerText,
  signalFeatures,
  signalValues,
  textFeatures,
  type SparseRows,
} from './features';
import { predict, trainLogistic } from './logistic';
import {
  bootstrapAuc,
  classification,
  rocAuc,
  rocCurve,
  routingCurve,
  shareForRecall,
  type ClassificationFigures,
  type RoutingPoint,
} from './metrics';
import { groupedFolds, hashOrder } from './splits';
import {
  ProbeSettingsSchema,
  type ProbeLine,
  type ProbeSettings,
  type ProbeSettingsInput,
  type ProbeSplits,
} from './types';

export const PROBE_VERSION = 1;
export const EVAL_SETS = ['validation', 'test', 'cv'] as const;
export type EvalSet = (typeof EVAL_SETS)[number];
type SplitName = 'train' | 'validation' | 'test';

/** AUC, its interval, accuracy and per-class precision/recall on one set of samples. */
export interface Figures extends ClassificationFigures {
  n: number;
  auc: number | null;
  aucCi: [number, number] | null;
  /** Why a figure is missing (one class in the subset, say). */
  message?: string;
}

export interface Evaluation extends Figures {
  roc: { fpr: number; tpr: number }[];
  routing: RoutingPoint[];
  /** Smallest share sent to the reasoning model that reaches each recall. */
  shareForRecall: { recall: number; share: number }[];
  byStratum: Record<string, Figures>;
  byPosition: Record<string, Figures>;
}

export interface ProbeReport {
  evaluations: Partial<Record<EvalSet, Evaluation>>;
  /** AUC of each fold (k-fold only). */
  folds?: (number | null)[];
}

export type VerdictKind = 'strong' | 'useful' | 'weak' | 'signals' | 'unknown';

export interface Verdict {
  kind: VerdictKind;
  /** Which evaluation the verdict reads. */
  on: EvalSet;
  textAuc: number | null;
  signalsAuc: number | null;
  message: string;
}

export interface ReviewItem {
  id: string;
  split: SplitName;
  conversationId: string;
  turnIndex: number;
  label: 0 | 1;
  labelName: (typeof LABEL_NAMES)[number];
  /** The text probe's P(reasoning), scored without having seen this sample. */
  probeReasoning: number;
  /** The probe's probability of the other class than the judge gave. */
  disagreement: number;
  /** Above the confident-learning threshold of the class the probe prefers. */
  suspect: boolean;
  judge: string | null;
  judgeConfidence: number | null;
  rationale: string | null;
  strata: Record<string, string>;
  message: string;
  historyMessages: number;
}

export interface SplitCounts {
  n: number;
  reasoning: number;
  nonReasoning: number;
  upsampled: number;
}

export interface ProbeResult {
  version: number;
  status: 'ok' | 'skipped';
  /** The verdict's plain reading, or why the probe did not run. */
  message: string;
  scheme: 'split' | 'kfold' | null;
  seed: number;
  settings: {
    text: {
      hashing: string;
      dim: number;
      wordNgrams: [number, number];
      charNgrams: [number, number];
      tf: string;
      norm: string;
      weights: ProbeSettings['weights'];
      input: string;
    };
    signals: { features: readonly string[]; scaling: string; reasoningModels: string[] };
    learner: {
      model: string;
      optimiser: string;
      epochs: number;
      learningRate: number;
      C: number;
      lambda: number | null;
      order: string;
    };
    folds: number | null;
    bootstrap: number;
    thresholds: number[];
    positiveClass: string;
  };
  data: Partial<Record<SplitName, SplitCounts>>;
  notes: string[];
  text: ProbeReport | null;
  signals: ProbeReport | null;
  verdict: Verdict | null;
  labelReview: {
    size: number;
    suspects: number;
    scored: number;
    thresholds: { reasoning: number | null; non_reasoning: number | null };
    method: string;
  } | null;
}

export interface ProbeOutcome {
  result: ProbeResult;
  review: ReviewItem[];
}

const round = (x: number, d = 6) => {
  const f = 10 ** d;
  return Math.round(x * f) / f;
};
const roundOrNull = (x: number | null) => (x === null ? null : round(x));
const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(2));

function counts(lines: readonly ProbeLine[]): SplitCounts {
  let reasoning = 0;
  let upsampled = 0;
  for (const l of lines) {
    if (l.label === LABEL_REASONING) reasoning++;
    if (l.upsampled) upsampled++;
  }
  return { n: lines.length, reasoning, nonReasoning: lines.length - reasoning, upsampled };
}

function settingsRecord(s: ProbeSettings, scheme: 'split' | 'kfold' | null, lambda: number | null) {
  return {
    text: {
      hashing: 'signed murmur3-finalised FNV-1a, one space for all blocks',
      dim: 2 ** s.bits,
      wordNgrams: [...s.wordNgrams] as [number, number],
      charNgrams: [...s.charNgrams] as [number, number],
      tf: 'sublinear (1 + ln tf)',
      norm: 'L2 per block, blocks weighted, row L2 = 1',
      weights: s.weights,
      input: 'last user message; earlier messages as history blocks',
    },
    signals: {
      features: SIGNAL_FEATURES,
      scaling: 'standardised on the training rows',
      reasoningModels: s.reasoningModels,
    },
    learner: {
      model: 'logistic regression, L2',
      optimiser: 'AdaGrad SGD',
      epochs: s.epochs,
      learningRate: s.learningRate,
      C: s.C,
      lambda: lambda === null ? null : round(lambda, 12),
      order: 'rows sorted by seeded hash of id, seeded shuffle each epoch',
    },
    folds: scheme === 'kfold' ? s.folds : null,
    bootstrap: s.bootstrap,
    thresholds: [...s.thresholds].sort((a, b) => a - b),
    positiveClass: 'reasoning (label 0)',
  };
}

function skipped(
  s: ProbeSettings,
  data: ProbeResult['data'],
  notes: string[],
  message: string,
): ProbeOutcome {
  return {
    result: {
      version: PROBE_VERSION,
      status: 'skipped',
      message,
      scheme: null,
      seed: s.seed,
      settings: settingsRecord(s, null, null),
      data,
      notes,
      text: null,
      signals: null,
      verdict: null,
      labelReview: null,
    },
    review: [],
  };
}

/** Why `c` cannot train a probe, or null when it can. */
function tooFew(c: SplitCounts, where: string, s: ProbeSettings): string | null {
  if (c.reasoning === 0 || c.nonReasoning === 0) {
    const only = c.reasoning === 0 ? LABEL_NAMES[1] : LABEL_NAMES[0];
    return c.n === 0
      ? `no samples in ${where}: nothing to probe`
      : `${where} has one class (${c.n} ${only}, 0 of the other): the probe needs both`;
  }
  if (c.n < s.minSamples)
    return `too few samples in ${where} for the probe: ${c.n} (needs at least ${s.minSamples})`;
  const fewer = Math.min(c.reasoning, c.nonReasoning);
  if (fewer < s.minPerClass)
    return `too few samples of one class in ${where}: ${c.reasoning} reasoning, ${c.nonReasoning} non_reasoning (needs at least ${s.minPerClass} of each)`;
  return null;
}

const strataKey = (strata: Record<string, string>) => {
  const keys = Object.keys(strata).sort();
  return keys.length ? keys.map((k) => `${k}=${strata[k]}`).join(',') : '(none)';
};

/** Figures for the scored rows `at` (positions into `scores`/`pos`). */
function figures(scores: Float64Array, pos: Uint8Array, bootstrap: number, seed: number): Figures {
  const auc = rocAuc(scores, pos);
  const ci = auc === null ? null : bootstrapAuc(scores, pos, bootstrap, seed);
  const cls = classification(scores, pos);
  const f: Figures = {
    n: scores.length,
    auc: roundOrNull(auc),
    aucCi: ci ? [round(ci[0]), round(ci[1])] : null,
    accuracy: round(cls.accuracy),
    reasoning: {
      precision: roundOrNull(cls.reasoning.precision),
      recall: roundOrNull(cls.reasoning.recall),
      support: cls.reasoning.support,
    },
    non_reasoning: {
      precision: roundOrNull(cls.non_reasoning.precision),
      recall: roundOrNull(cls.non_reasoning.recall),
      support: cls.non_reasoning.support,
    },
  };
  if (auc === null)
    f.message =
      scores.length === 0
        ? 'no samples'
        : `one class only (${cls.reasoning.support} reasoning, ${cls.non_reasoning.support} non_reasoning): AUC undefined`;
  return f;
}

function subset(values: Float64Array, at: readonly number[]): Float64Array {
  return Float64Array.from(at, (i) => values[i]!);
}

function evaluate(
  lines: readonly ProbeLine[],
  rows: Int32Array,
  scores: Float64Array,
  s: ProbeSettings,
  tag: string,
): Evaluation {
  const pos = Uint8Array.from(rows, (r) => (lines[r]!.label === LABEL_REASONING ? 1 : 0));
  const base = figures(scores, pos, s.bootstrap, seed32(`${s.seed}:${tag}`));
  const group = (keyOf: (l: ProbeLine) => string) => {
    const byKey = new Map<string, number[]>();
    rows.forEach((r, i) => {
      const k = keyOf(lines[r]!);
      let at = byKey.get(k);
      if (!at) byKey.set(k, (at = []));
      at.push(i);
    });
    const out: Record<string, Figures> = {};
    for (const k of [...byKey.keys()].sort()) {
      const at = byKey.get(k)!;
      const sc = subset(scores, at);
      const ps = Uint8Array.from(at, (i) => pos[i]!);
      out[k] = figures(sc, ps, s.bootstrap, seed32(`${s.seed}:${tag}:${k}`));
    }
    return out;
  };
  return {
    ...base,
    roc: rocCurve(scores, pos).map((p) => ({ fpr: round(p.fpr), tpr: round(p.tpr) })),
    routing: routingCurve(scores, pos, s.thresholds).map((p) => ({
      threshold: p.threshold,
      share: round(p.share),
      recall: roundOrNull(p.recall),
      precision: roundOrNull(p.precision),
    })),
    shareForRecall: shareForRecall(scores, pos, [0.8, 0.9, 0.95]).map((p) => ({
      recall: p.recall,
      share: round(p.share),
    })),
    byStratum: group((l) => strataKey(l.strata)),
    byPosition: group((l) => turnPosition(l.turnIndex, l.turnCount)),
  };
}

const level = (auc: number) => (auc > 0.8 ? 'strong' : auc > 0.7 ? 'useful' : 'weak');

/** The plain reading of the two probes' AUCs (NVIDIA: > 0.70 useful, > 0.80 strong). */
export function verdictOf(
  on: EvalSet,
  text: Figures | undefined,
  signals: Figures | undefined,
): Verdict {
  const t = text?.auc ?? null;
  const g = signals?.auc ?? null;
  const ci = text?.aucCi ? ` [${fmt(text.aucCi[0])}, ${fmt(text.aucCi[1])}]` : '';
  const base = { on, textAuc: t, signalsAuc: g };
  if (t === null)
    return {
      ...base,
      kind: 'unknown',
      message: `no text AUC on ${on}: ${text?.message ?? 'not scored'}`,
    };
  if (g !== null && g > 0.7 && g - t >= 0.05)
    return {
      ...base,
      kind: 'signals',
      message: `the labels follow the pre-stratification signals more than the text (${fmt(g)} vs ${fmt(t)}): check the judge`,
    };
  const sig = g === null ? '' : `; signals ${fmt(g)}`;
  switch (level(t)) {
    case 'strong':
      return {
        ...base,
        kind: 'strong',
        message: `the text predicts the labels strongly (AUC ${fmt(t)}${ci}${sig}): a router can learn them`,
      };
    case 'useful':
      return {
        ...base,
        kind: 'useful',
        message: `the text predicts the labels usefully (AUC ${fmt(t)}${ci}${sig}): a router can learn them, with room to improve`,
      };
    default:
      return {
        ...base,
        kind: 'weak',
        message: `the text barely predicts the labels (AUC ${fmt(t)}${ci}${sig}): a router will learn little from them; check the judge and the rubric`,
      };
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : null);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function reviewOf(
  lines: readonly ProbeLine[],
  splitOf: readonly SplitName[],
  rows: Int32Array,
  p: Float64Array,
  size: number,
): {
  items: ReviewItem[];
  suspects: number;
  thresholds: { reasoning: number | null; non_reasoning: number | null };
} {
  // Confident learning (Northcutt et al.): a class's threshold is the mean probability
  // the probe gives that class on samples labelled with it.
  let sum0 = 0;
  let n0 = 0;
  let sum1 = 0;
  let n1 = 0;
  rows.forEach((r, i) => {
    if (lines[r]!.label === LABEL_REASONING) {
      sum0 += p[i]!;
      n0++;
    } else {
      sum1 += 1 - p[i]!;
      n1++;
    }
  });
  const t0 = n0 ? sum0 / n0 : null;
  const t1 = n1 ? sum1 / n1 : null;
  const all: { i: number; r: number; d: number; suspect: boolean }[] = [];
  let suspects = 0;
  rows.forEach((r, i) => {
    const l = lines[r]!;
    const d = l.label === LABEL_REASONING ? 1 - p[i]! : p[i]!;
    const other = l.label === LABEL_REASONING ? t1 : t0;
    const suspect = d > 0.5 && other !== null && d >= other;
    if (suspect) suspects++;
    if (d > 0.5) all.push({ i, r, d, suspect });
  });
  all.sort((a, b) => {
    if (b.d !== a.d) return b.d - a.d;
    const x = lines[a.r]!.id;
    const y = lines[b.r]!.id;
    return x < y ? -1 : x > y ? 1 : a.r - b.r;
  });
  const items = all.slice(0, size).map(({ i, r, d, suspect }): ReviewItem => {
    const l = lines[r]!;
    const meta = l.metadata ?? {};
    const { current } = routerText(l);
    return {
      id: l.id,
      split: splitOf[r]!,
      conversationId: l.conversationId,
      turnIndex: l.turnIndex,
      label: l.label,
      labelName: LABEL_NAMES[l.label],
      probeReasoning: round(p[i]!),
      disagreement: round(d),
      suspect,
      judge: str(meta.judge) ?? str(l.judge),
      judgeConfidence: num(meta.confidence) ?? num(l.confidence),
      rationale: str(meta.rationale) ?? str(l.rationale),
      strata: l.strata,
      message: current,
      historyMessages: Math.max(0, l.messages.length - 1),
    };
  });
  return {
    items,
    suspects,
    thresholds: { reasoning: roundOrNull(t0), non_reasoning: roundOrNull(t1) },
  };
}

interface Scored {
  rows: Int32Array;
  text: Float64Array;
  signals: Float64Array;
}

/** Runs both probes on a dataset's splits. Never throws on bad data: it says why in the result. */
export function runProbe(splits: ProbeSplits, input: ProbeSettingsInput = {}): ProbeOutcome {
  const s = ProbeSettingsSchema.parse(input);
  const notes: string[] = [];
  const data: ProbeResult['data'] = { train: counts(splits.train) };
  for (const name of ['validation', 'test'] as const) {
    const part = splits[name];
    if (part !== undefined) data[name] = counts(part);
  }
  // Held-out sets to score: present, non-empty ones. An empty split is named, not scored.
  const held: ('validation' | 'test')[] = [];
  for (const name of ['validation', 'test'] as const) {
    const c = data[name];
    if (!c) continue;
    if (c.n === 0) notes.push(`${name} split is empty: not scored`);
    else held.push(name);
  }
  const scheme: 'split' | 'kfold' = held.length > 0 ? 'split' : 'kfold';
  if (scheme === 'kfold' && (data.validation || data.test))
    notes.push(
      `no held-out samples: ${s.folds}-fold cross-validation on train, grouped by conversation`,
    );
  const why = tooFew(data.train!, 'train', s);
  if (why) return skipped(s, data, notes, why);

  const lines: ProbeLine[] = [...splits.train];
  const splitOf: SplitName[] = splits.train.map(() => 'train');
  for (const name of held) {
    for (const l of splits[name]!) {
      lines.push(l);
      splitOf.push(name);
    }
  }
  const ids = lines.map((l) => l.id);
  const y = Uint8Array.from(lines, (l) => (l.label === LABEL_REASONING ? 1 : 0));
  const textX = textFeatures(lines, s);
  const raw = lines.map((l) => signalValues(l, s.reasoningModels));
  const textSeed = seed32(`${s.seed}:text`);
  const signalsSeed = seed32(`${s.seed}:signals`);

  /** Trains both probes on `trainRows` and scores `scoreRows`. */
  const fit = (trainRows: number[], scoreRows: number[]): Scored => {
    const order = hashOrder(ids, trainRows, s.seed);
    const lambda = 1 / (s.C * trainRows.length);
    const learner = { epochs: s.epochs, learningRate: s.learningRate, lambda };
    const rows = Int32Array.from(scoreRows);
    const textModel = trainLogistic(textX, y, order, { ...learner, seed: textSeed });
    const sigX: SparseRows = signalFeatures(raw, fitStandardiser(raw, order));
    const sigModel = trainLogistic(sigX, y, order, { ...learner, seed: signalsSeed });
    return { rows, text: predict(textX, textModel, rows), signals: predict(sigX, sigModel, rows) };
  };

  const text: ProbeReport = { evaluations: {} };
  const signals: ProbeReport = { evaluations: {} };
  const scoredForReview: Scored[] = [];
  let trainSize: number;
  if (scheme === 'split') {
    const trainRows: number[] = [];
    for (let r = 0; r < lines.length; r++) if (splitOf[r] === 'train') trainRows.push(r);
    trainSize = trainRows.length;
    for (const name of held) {
      const c = data[name]!;
      if (c.upsampled) notes.push(`${name}: ${c.upsampled} upsampled copies not scored`);
    }
    const scoreRows: number[] = [];
    for (let r = 0; r < lines.length; r++)
      if (splitOf[r] !== 'train' && !lines[r]!.upsampled) scoreRows.push(r);
    const sc = fit(trainRows, scoreRows);
    scoredForReview.push(sc);
    for (const name of held) {
      const at: number[] = [];
      sc.rows.forEach((r, i) => {
        if (splitOf[r] === name) at.push(i);
      });
      const rows = Int32Array.from(at, (i) => sc.rows[i]!);
      text.evaluations[name] = evaluate(lines, rows, subset(sc.text, at), s, `text:${name}`);
      signals.evaluations[name] = evaluate(
        lines,
        rows,
        subset(sc.signals, at),
        s,
        `signals:${name}`,
      );
    }
  } else {
    const fold = groupedFolds(
      lines.map((l) => l.conversationId),
      s.folds,
      s.seed,
    );
    const groups = new Set(lines.map((l) => l.conversationId)).size;
    if (groups < s.folds)
      return skipped(
        s,
        data,
        notes,
        `too few conversations for ${s.folds}-fold cross-validation: ${groups} (the folds are grouped by conversation)`,
      );
    const rowsAll: number[] = [];
    const textAll: number[] = [];
    const sigAll: number[] = [];
    text.folds = [];
    signals.folds = [];
    trainSize = 0;
    for (let f = 0; f < s.folds; f++) {
      const trainRows: number[] = [];
      const scoreRows: number[] = [];
      for (let r = 0; r < lines.length; r++) {
        if (fold[r] !== f) trainRows.push(r);
        else if (!lines[r]!.upsampled) scoreRows.push(r);
      }
      trainSize += trainRows.length / s.folds;
      const foldY = Uint8Array.from(trainRows, (r) => y[r]!);
      if (!foldY.includes(0) || !foldY.includes(1)) {
        return skipped(
          s,
          data,
          notes,
          `fold ${f + 1} of ${s.folds} trains on one class: too few samples of one class for cross-validation`,
        );
      }
      const sc = fit(trainRows, scoreRows);
      const pos = Uint8Array.from(sc.rows, (r) => y[r]!);
      text.folds.push(roundOrNull(rocAuc(sc.text, pos)));
      signals.folds.push(roundOrNull(rocAuc(sc.signals, pos)));
      rowsAll.push(...sc.rows);
      textAll.push(...sc.text);
      sigAll.push(...sc.signals);
    }
    // Out-of-fold predictions, back in row order.
    const idx = rowsAll.map((_, i) => i).sort((a, b) => rowsAll[a]! - rowsAll[b]!);
    const rows = Int32Array.from(idx, (i) => rowsAll[i]!);
    const t = Float64Array.from(idx, (i) => textAll[i]!);
    const g = Float64Array.from(idx, (i) => sigAll[i]!);
    scoredForReview.push({ rows, text: t, signals: g });
    text.evaluations.cv = evaluate(lines, rows, t, s, 'text:cv');
    signals.evaluations.cv = evaluate(lines, rows, g, s, 'signals:cv');
    const upsampled = data.train!.upsampled;
    if (upsampled) notes.push(`train: ${upsampled} upsampled copies trained on, not scored`);
  }

  const on: EvalSet = text.evaluations.test
    ? 'test'
    : text.evaluations.validation
      ? 'validation'
      : 'cv';
  const verdict = verdictOf(on, text.evaluations[on], signals.evaluations[on]);
  const sc = scoredForReview[0]!;
  const review = reviewOf(lines, splitOf, sc.rows, sc.text, s.reviewSize);
  return {
    result: {
      version: PROBE_VERSION,
      status: 'ok',
      message: verdict.message,
      scheme,
      seed: s.seed,
      settings: settingsRecord(s, scheme, 1 / (s.C * trainSize)),
      data,
      notes,
      text,
      signals,
      verdict,
      labelReview: {
        size: review.items.length,
        suspects: review.suspects,
        scored: sc.rows.length,
        thresholds: review.thresholds,
        method:
          'held-out text-probe probabilities; suspect when the probability of the other class reaches that class’s mean self-confidence (confident learning); listed by disagreement',
      },
    },
    review: review.items,
  };
}

/** A few console lines: the verdict and the AUCs per evaluation. */
export function probeSummaryLines(r: ProbeResult): string[] {
  if (r.status === 'skipped') return [`probe: skipped — ${r.message}`];
  const out = [`probe: ${r.message}`];
  for (const set of EVAL_SETS) {
    const t = r.text?.evaluations[set];
    const g = r.signals?.evaluations[set];
    if (!t) continue;
    const ci = t.aucCi ? ` [${fmt(t.aucCi[0])}, ${fmt(t.aucCi[1])}]` : '';
    out.push(
      `  ${set}: text AUC ${fmt(t.auc)}${ci}, accuracy ${fmt(t.accuracy)}; signals AUC ${fmt(g?.auc ?? null)} (n ${t.n})`,
    );
  }
  if (r.labelReview)
    out.push(
      `  label review: ${r.labelReview.size} listed, ${r.labelReview.suspects} suspect of ${r.labelReview.scored} scored`,
    );
  for (const n of r.notes) out.push(`  note: ${n}`);
  return out;
}
