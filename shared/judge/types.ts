/**
 * The judge contract: a batch of samples in, one verdict per sample out. Judges
 * (signals, LLM, replay, panel) live behind it; the pipelines only see this.
 */
import type { Label } from '../contracts/rows';
import type { Pricing } from './prices';
import type { JudgeStats } from './usage';

export interface JudgeInput {
  sampleId: string;
  userMessage: string;
  /** Previous user messages, oldest first; empty for the session pipeline. */
  history: readonly string[];
  model: string;
  numRequests: number;
  turnDurationMs: number;
  promptTokenDelta: number;
  tools: readonly string[];
  turnIndex: number;
  turnCount: number;
}

export type Verdict =
  | { sampleId: string; label: Label; confidence?: number; rationale?: string }
  /** Not labelled, never guessed: the cause says why (after retries). */
  | { sampleId: string; label: null; error: string };

export interface Judge {
  /** Recorded on every annotated row and in the manifest. */
  readonly name: string;
  judge(batch: readonly JudgeInput[]): Promise<Verdict[]>;
  /** Calls, tokens, cost and cache hits so far (LLM judges), for the manifest. */
  stats?(): JudgeStats;
  /** What labelled the data (LLM judges): provider, model or deployment, rubric, pricing. */
  describe?(): JudgeDescription;
}

/** Which judge labelled a build, for the summary line, the manifest and the report. */
export interface JudgeDescription {
  name: string;
  /** llm: a model judged; heuristic: the offline signals judge (not for training a router). */
  kind: 'llm' | 'heuristic' | 'replay' | 'panel';
  provider?: string;
  /** The model (OpenAI) or the deployment (Azure OpenAI). */
  model?: string;
  modelVersion?: string;
  mode?: string;
  rubricVersion: string | null;
  pricing?: Pricing;
  members?: JudgeDescription[];
}

/** A judge's description; judges without `describe` are told apart by their name. */
export function describeJudge(judge: Judge): JudgeDescription {
  const d = judge.describe?.();
  if (d) return d;
  if (judge.name.startsWith('signals'))
    return { name: judge.name, kind: 'heuristic', rubricVersion: null };
  if (judge.name.startsWith('panel'))
    return { name: judge.name, kind: 'panel', rubricVersion: null };
  return { name: judge.name, kind: 'replay', rubricVersion: null };
}
