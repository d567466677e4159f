/**
 * The judge contract: a batch of samples in, one verdict per sample out. Judges
 * (signals, LLM, replay, panel) live behind it; the pipelines only see this.
 */
import type { Label } from '../contracts/rows';
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
}
