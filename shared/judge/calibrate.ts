/**
 * Calibration of a judge against human labels: accuracy, Cohen's kappa, the
 * confusion matrix and per-stratum agreement. Unlabeled verdicts are counted apart
 * (coverage), never as a wrong or right answer.
 */
import type { Label } from '../contracts/rows';

export interface CalibrationPair {
  gold: Label;
  predicted: Label | null;
  stratum: string;
}

export interface AgreementStats {
  n: number;
  /** Pairs where the judge gave a label. */
  labelled: number;
  accuracy: number;
  kappa: number;
  /** confusion[gold][predicted], over labelled pairs. */
  confusion: [[number, number], [number, number]];
}

export interface CalibrationReport extends AgreementStats {
  coverage: number;
  byStratum: Record<string, AgreementStats>;
}

/** Cohen's kappa of a 2×2 confusion matrix; 0 when chance agreement is total. */
export function cohensKappa(m: readonly (readonly number[])[]): number {
  const a = m[0]![0]!;
  const b = m[0]![1]!;
  const c = m[1]![0]!;
  const d = m[1]![1]!;
  const n = a + b + c + d;
  if (n === 0) return 0;
  const po = (a + d) / n;
  const pe = ((a + b) * (a + c) + (c + d) * (b + d)) / (n * n);
  return pe === 1 ? (po === 1 ? 1 : 0) : (po - pe) / (1 - pe);
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

function agreementOf(pairs: readonly CalibrationPair[]): AgreementStats {
  const confusion: [[number, number], [number, number]] = [
    [0, 0],
    [0, 0],
  ];
  let labelled = 0;
  for (const p of pairs) {
    if (p.predicted === null) continue;
    labelled++;
    confusion[p.gold][p.predicted]++;
  }
  const correct = confusion[0][0] + confusion[1][1];
  return {
    n: pairs.length,
    labelled,
    accuracy: labelled ? round4(correct / labelled) : 0,
    kappa: round4(cohensKappa(confusion)),
    confusion,
  };
}

/** The calibration report over gold/predicted pairs. */
export function calibrationReport(pairs: readonly CalibrationPair[]): CalibrationReport {
  const overall = agreementOf(pairs);
  const strata = new Map<string, CalibrationPair[]>();
  for (const p of pairs) {
    const list = strata.get(p.stratum) ?? [];
    list.push(p);
    strata.set(p.stratum, list);
  }
  const byStratum: Record<string, AgreementStats> = {};
  for (const key of [...strata.keys()].sort()) byStratum[key] = agreementOf(strata.get(key)!);
  return {
    ...overall,
    coverage: pairs.length ? round4(overall.labelled / pairs.length) : 0,
    byStratum,
  };
}

/** A plain-text rendering of a report, for the terminal. */
export function formatCalibration(r: CalibrationReport, judgeName: string): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `judge ${judgeName} against ${r.n} gold samples (${r.labelled} labelled, coverage ${pct(r.coverage)})`,
    `accuracy ${pct(r.accuracy)}   Cohen's kappa ${r.kappa.toFixed(3)}`,
    '',
    'confusion (rows gold, columns judge):',
    '                 judge 0   judge 1',
    `  gold 0 (reas.) ${String(r.confusion[0][0]).padStart(7)}   ${String(r.confusion[0][1]).padStart(7)}`,
    `  gold 1 (fast)  ${String(r.confusion[1][0]).padStart(7)}   ${String(r.confusion[1][1]).padStart(7)}`,
    '',
    'per stratum:',
  ];
  for (const [k, s] of Object.entries(r.byStratum)) {
    lines.push(
      `  ${k.padEnd(24)} n ${String(s.n).padStart(6)}  accuracy ${pct(s.accuracy).padStart(6)}  kappa ${s.kappa.toFixed(3)}`,
    );
  }
  return lines.join('\n');
}
