/**
 * Judge selection: a build's spec names its judge (setting SFT_JUDGE, default
 * `signals`); this table turns the name into a `Judge`. Another judge (the LLM judge)
 * registers a factory under its own name.
 */
import type { BuildSpec } from '../../shared/build/spec';
import { createSignalsJudge } from '../../shared/judge/signals';
import type { Judge } from '../../shared/judge/types';

export type JudgeFactory = (spec: BuildSpec) => Judge;

export class UnknownJudgeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownJudgeError';
  }
}

export const JUDGES: Record<string, JudgeFactory> = {
  signals: (spec) =>
    createSignalsJudge({
      complexity: spec.config.complexity,
      reasoningModels: spec.config.reasoningModels,
    }),
};

/** Adds a judge under `name` (the LLM judge calls this). */
export function registerJudge(name: string, factory: JudgeFactory): void {
  JUDGES[name] = factory;
}

export function judgeFor(spec: BuildSpec): Judge {
  const factory = JUDGES[spec.judge.name];
  if (!factory) {
    throw new UnknownJudgeError(
      `unknown judge "${spec.judge.name}" (known: ${Object.keys(JUDGES).sort().join(', ')})`,
    );
  }
  return factory(spec);
}
