/**
 * Judge selection: a build's spec names its judge (setting SFT_JUDGE, default
 * `signals`); this table turns the name into a `Judge`. The deployed judges (the LLM
 * judge, replay, a panel) are chosen in deps.ts before this table is asked.
 */
import type { BuildSpec } from '../../shared/build/spec';
import { createSignalsJudge } from '../../shared/judge/signals';
import type { Judge } from '../../shared/judge/types';
import { PermanentError } from '../../shared/errors';

export type JudgeFactory = (spec: BuildSpec) => Judge;

export class UnknownJudgeError extends PermanentError {}

export const JUDGES: Record<string, JudgeFactory> = {
  signals: (spec) =>
    createSignalsJudge({
      complexity: spec.config.complexity,
      reasoningModels: spec.config.reasoningModels,
    }),
};

export function judgeFor(spec: BuildSpec): Judge {
  const factory = JUDGES[spec.judge.name];
  if (!factory) {
    throw new UnknownJudgeError(
      `unknown judge "${spec.judge.name}" (known: ${Object.keys(JUDGES).sort().join(', ')})`,
    );
  }
  return factory(spec);
}
