/**
 * The replay judge: labels from an earlier source (an annotated file read by the
 * caller, or the verdict cache), never from a model. A sample the source does not
 * know is unlabeled with that cause, so a replay never invents a label.
 */
import type { Label } from '../contracts/rows';
import type { Judge, JudgeInput, Verdict } from './types';

export interface ReplayEntry {
  label: Label;
  confidence?: number;
  rationale?: string;
}

export type ReplayLookup = (
  batch: readonly JudgeInput[],
) => Promise<(ReplayEntry | null | undefined)[]>;

/** A judge that answers from `lookup` (one entry or null per sample, in order). */
export function createReplayJudge(name: string, lookup: ReplayLookup): Judge {
  return {
    name,
    async judge(batch) {
      const found = await lookup(batch);
      return batch.map((s, i): Verdict => {
        const e = found[i];
        if (!e)
          return { sampleId: s.sampleId, label: null, error: `not in replay source (${name})` };
        const v: Verdict = { sampleId: s.sampleId, label: e.label };
        if (e.confidence !== undefined) v.confidence = e.confidence;
        if (e.rationale !== undefined) v.rationale = e.rationale;
        return v;
      });
    },
  };
}

/** A replay lookup over labels by sample id (from an annotated file). */
export function lookupBySampleId(labels: ReadonlyMap<string, ReplayEntry>): ReplayLookup {
  return (batch) => Promise.resolve(batch.map((s) => labels.get(s.sampleId) ?? null));
}
