/**
 * A panel of judges: each labels every sample, the majority decides, agreement is
 * recorded. Several small, different judges correlate with humans better than one
 * large judge at a fraction of the cost (Verga et al., arXiv 2404.18796).
 */
import type { Label } from '../contracts/rows';
import type { Judge, JudgeInput, Verdict } from './types';
import { emptyStats, type JudgeStats } from './usage';

export interface MajorityResult {
  label: Label | null;
  /** Votes for the winning label over panel members (0 when split). */
  agreement: number;
  votes: [number, number];
}

/**
 * A label when a strict majority of the panel's members (not of those who answered)
 * agrees; otherwise null. With three judges two must agree; a tie is never broken.
 */
export function majority(labels: readonly (Label | null)[]): MajorityResult {
  const votes: [number, number] = [0, 0];
  for (const l of labels) if (l !== null) votes[l]++;
  const n = labels.length;
  const label: Label | null = votes[0] * 2 > n ? 0 : votes[1] * 2 > n ? 1 : null;
  return { label, agreement: label === null ? 0 : votes[label] / n, votes };
}

export interface PanelAgreement {
  judges: string[];
  samples: number;
  /** Share of samples every judge labelled identically. */
  unanimous: number;
  /** pairwise[i][j]: share of samples both labelled where judges i and j agree. */
  pairwise: number[][];
  /** Samples the panel could not decide (no strict majority). */
  split: number;
}

/** Combines several judges by majority; `agreement()` summarises how they agreed. */
export function createPanelJudge(
  judges: readonly Judge[],
): Judge & { stats(): JudgeStats; agreement(): PanelAgreement } {
  if (judges.length < 2) throw new RangeError('a panel needs at least two judges');
  const n = judges.length;
  const both = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const agree = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  let samples = 0;
  let unanimous = 0;
  let split = 0;
  return {
    name: `panel(${judges.map((j) => j.name).join(',')})`,
    async judge(batch: readonly JudgeInput[]): Promise<Verdict[]> {
      const all = await Promise.all(judges.map((j) => j.judge(batch)));
      const byJudge = all.map((vs) => new Map(vs.map((v) => [v.sampleId, v])));
      return batch.map((s): Verdict => {
        const labels = byJudge.map((m) => m.get(s.sampleId)?.label ?? null);
        samples++;
        for (let i = 0; i < n; i++)
          for (let j = 0; j < n; j++) {
            const a = labels[i];
            const b = labels[j];
            if (a === null || a === undefined || b === null || b === undefined) continue;
            both[i]![j]!++;
            if (a === b) agree[i]![j]!++;
          }
        if (labels.every((l) => l !== null && l === labels[0])) unanimous++;
        const m = majority(labels);
        const tally = judges.map((j, i) => `${j.name}=${labels[i] ?? '-'}`).join(' ');
        if (m.label === null) {
          split++;
          const causes = byJudge
            .map((mp, i) => {
              const v = mp.get(s.sampleId);
              return v && v.label === null ? `${judges[i]!.name}: ${v.error}` : null;
            })
            .filter((x): x is string => x !== null);
          return {
            sampleId: s.sampleId,
            label: null,
            error: `panel split (${tally})${causes.length ? `; ${causes.join('; ')}` : ''}`,
          };
        }
        return {
          sampleId: s.sampleId,
          label: m.label,
          confidence: Math.round(m.agreement * 1000) / 1000,
          rationale: `panel ${m.votes[m.label]}/${n} (${tally})`,
        };
      });
    },
    stats(): JudgeStats {
      const sum = emptyStats();
      for (const j of judges) {
        const s = j.stats?.();
        if (!s) continue;
        for (const key of Object.keys(sum) as (keyof JudgeStats)[]) sum[key] += s[key];
      }
      return sum;
    },
    agreement(): PanelAgreement {
      return {
        judges: judges.map((j) => j.name),
        samples,
        unanimous: samples ? unanimous / samples : 0,
        pairwise: both.map((row, i) => row.map((b, j) => (b ? agree[i]![j]! / b : 0))),
        split,
      };
    },
  };
}
