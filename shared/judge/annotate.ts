/**
 * Step 3 of the seed: judge samples in batches and attach labels. Verdicts that
 * name no label (the judge failed after its retries) stay unlabeled with their cause;
 * they are never guessed.
 */
import type { AnnotatedRow } from '../contracts/rows';
import type { Judge, JudgeInput } from './types';
import type { Sample } from '../samples/assemble';

export interface Unlabeled {
  sampleId: string;
  conversationId: string;
  turnIndex: number;
  error: string;
}

export interface AnnotateResult {
  rows: AnnotatedRow[];
  unlabeled: Unlabeled[];
  calls: number;
}

export function judgeInputOf(s: Sample): JudgeInput {
  return {
    sampleId: s.sampleId,
    userMessage: s.userMessage,
    history: s.history,
    model: s.model,
    numRequests: s.numRequests,
    turnDurationMs: s.turnDurationMs,
    promptTokenDelta: s.promptTokenDelta,
    tools: s.tools,
    turnIndex: s.turnIndex,
    turnCount: s.turnCount,
  };
}

/** Splits `items` into consecutive batches of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (!(size >= 1)) throw new RangeError(`batch size must be at least 1, got ${size}`);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Judges samples batch by batch; `onProgress` sees the running count. */
export async function annotateSamples(
  samples: readonly Sample[],
  judge: Judge,
  opts: { batchSize: number; onProgress?: (done: number, total: number) => void },
): Promise<AnnotateResult> {
  const rows: AnnotatedRow[] = [];
  const unlabeled: Unlabeled[] = [];
  let calls = 0;
  let done = 0;
  for (const batch of chunk(samples, opts.batchSize)) {
    const verdicts = await judge.judge(batch.map(judgeInputOf));
    calls++;
    const byId = new Map(verdicts.map((v) => [v.sampleId, v]));
    for (const s of batch) {
      const v = byId.get(s.sampleId);
      if (!v || v.label === null) {
        unlabeled.push({
          sampleId: s.sampleId,
          conversationId: s.conversationId,
          turnIndex: s.turnIndex,
          error: !v ? 'judge returned no verdict for this sample' : v.error,
        });
        continue;
      }
      const row: AnnotatedRow = { ...s, label: v.label, judge: judge.name };
      if (v.confidence !== undefined) row.confidence = v.confidence;
      if (v.rationale !== undefined) row.rationale = v.rationale;
      rows.push(row);
    }
    done += batch.length;
    opts.onProgress?.(done, samples.length);
  }
  return { rows, unlabeled, calls };
}
