/**
 * The signals judge: a deterministic, offline labeller from the cheap complexity
 * signals, the chosen model and cue words in the message. It is a stand-in that
 * lets the whole pipeline run without an LLM; heuristic scorers like it are weak
 * (≈64% in vLLM semantic-router's tests), so its labels are not training-grade.
 */
import {
  ComplexitySchema,
  DEFAULT_REASONING_MODELS,
  type ComplexityConfig,
} from '../contracts/config';
import type { Label } from '../contracts/rows';
import { complexityScore, modelFamily } from '../strata/strata';
import type { Judge, JudgeInput, Verdict } from './types';

const REASONING_CUES = [
  /\bwhy\b/,
  /\bdesign/,
  /\barchitect/,
  /\brefactor/,
  /\bdebug/,
  /\bperformance\b/,
  /\boptimi[sz]/,
  /\brace condition/,
  /\bdeadlock/,
  /\bleak/,
  /\bconcurren/,
  /\bprove\b/,
  /\bcompare\b/,
  /\btrade-?offs?\b/,
  /\balgorithm/,
  /\bmigrat/,
  /\bintermittent/,
  /\broot cause/,
  /\bplan\b/,
  /\bstrategy\b/,
  /\bsecurity\b/,
  /\bscal(e|ing|able)\b/,
  /\bedge cases?\b/,
  /\binvestigate/,
];

const FAST_CUES = [
  /\brename\b/,
  /\btypo\b/,
  /\bformat/,
  /\badd (a |an )?(comment|import|log)/,
  /\bwhat is\b/,
  /\bshow me\b/,
  /\bthanks?\b/,
  /^(continue|yes|ok|go on|do it)\b/,
  /\bconvert\b/,
  /\bsort\b/,
  /\bdocstring/,
  /\bexplain this line/,
  /\bbump\b/,
  /\bremove (the )?unused/,
];

/** Counts of reasoning and fast cue words in a message. */
export function cueCounts(message: string): { reasoning: number; fast: number } {
  const m = message.toLowerCase();
  let reasoning = 0;
  let fast = 0;
  for (const re of REASONING_CUES) if (re.test(m)) reasoning++;
  for (const re of FAST_CUES) if (re.test(m)) fast++;
  return { reasoning, fast };
}

export interface SignalsJudgeOptions {
  complexity?: ComplexityConfig;
  reasoningModels?: readonly string[];
  /** Scores at or above this are labelled 0 (reasoning). */
  threshold?: number;
}

/** The score behind a signals verdict: higher means more likely to need reasoning. */
export function signalsScore(input: JudgeInput, opts: SignalsJudgeOptions = {}): number {
  const complexity = complexityScore(input, opts.complexity ?? ComplexitySchema.parse({}));
  const family = modelFamily(input.model, opts.reasoningModels ?? DEFAULT_REASONING_MODELS);
  const cues = cueCounts(input.userMessage);
  const lengthBonus = Math.min(input.userMessage.length / 2000, 0.2);
  const text = Math.min(1, Math.max(0, 0.5 + 0.2 * (cues.reasoning - cues.fast) + lengthBonus));
  return 0.5 * complexity + 0.15 * (family === 'reasoning' ? 1 : 0) + 0.35 * text;
}

/** Labels one sample from its signals; pure and deterministic. */
export function signalsVerdict(input: JudgeInput, opts: SignalsJudgeOptions = {}): Verdict {
  const threshold = opts.threshold ?? 0.45;
  const score = signalsScore(input, opts);
  const label: Label = score >= threshold ? 0 : 1;
  const margin = Math.abs(score - threshold) / Math.max(threshold, 1 - threshold);
  return {
    sampleId: input.sampleId,
    label,
    confidence: Math.round(Math.min(1, 0.5 + margin / 2) * 1000) / 1000,
    rationale: `signals score ${score.toFixed(3)} vs threshold ${threshold}`,
  };
}

export function createSignalsJudge(opts: SignalsJudgeOptions = {}): Judge {
  return {
    name: 'signals-v1',
    judge: (batch) => Promise.resolve(batch.map((s) => signalsVerdict(s, opts))),
  };
}
