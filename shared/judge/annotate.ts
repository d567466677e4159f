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

/** What a judged sample became: a labelled row, or an unlabeled record with its cause. */
export interface VerdictSink {
  row(row: AnnotatedRow): void;
  unlabeled(u: Unlabeled): void;
}

/**
 * Judges samples as they come, a batch at a time, and hands each verdict on: only
 * the batch in hand is held. Batches are the same consecutive runs of `batchSize`
 * samples as {@link annotateSamples} makes, so the judge sees the same calls.
 */
export class StreamingAnnotator {
  private batch: Sample[] = [];
  /** Judge calls made. */
  calls = 0;
  /** Samples judged. */
  done = 0;

  constructor(
    private readonly judge: Judge,
    private readonly batchSize: number,
    private readonly sink: VerdictSink,
    private readonly onProgress?: (done: number) => void,
  ) {
    if (!(batchSize >= 1)) throw new RangeError(`batch size must be at least 1, got ${batchSize}`);
  }

  /** Adds a sample; judges the batch once it is full. */
  async push(sample: Sample): Promise<void> {
    this.batch.push(sample);
    if (this.batch.length >= this.batchSize) await this.flush();
  }

  /** Judges what is left (a last, shorter batch). */
  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    const verdicts = await this.judge.judge(batch.map(judgeInputOf));
    this.calls++;
    const byId = new Map(verdicts.map((v) => [v.sampleId, v]));
    for (const s of batch) {
      const v = byId.get(s.sampleId);
      if (!v || v.label === null) {
        this.sink.unlabeled({
          sampleId: s.sampleId,
          conversationId: s.conversationId,
          turnIndex: s.turnIndex,
          error: !v ? 'judge returned no verdict for this sample' : v.error,
        });
        continue;
      }
      const row: AnnotatedRow = { ...s, label: v.label, judge: this.judge.name };
      if (v.confidence !== undefined) row.confidence = v.confidence;
      if (v.rationale !== undefined) row.rationale = v.rationale;
      this.sink.row(row);
    }
    this.done += batch.length;
    this.onProgress?.(this.done);
  }
}

/** Judges samples batch by batch; `onProgress` sees the running count. */
export async function annotateSamples(
  samples: readonly Sample[],
  judge: Judge,
  opts: { batchSize: number; onProgress?: (done: number, total: number) => void },
): Promise<AnnotateResult> {
  const rows: AnnotatedRow[] = [];
  const unlabeled: Unlabeled[] = [];
  const annotator = new StreamingAnnotator(
    judge,
    opts.batchSize,
    { row: (r) => rows.push(r), unlabeled: (u) => unlabeled.push(u) },
    (done) => opts.onProgress?.(done, samples.length),
  );
  for (const s of samples) await annotator.push(s);
  await annotator.flush();
  return { rows, unlabeled, calls: annotator.calls };
}
