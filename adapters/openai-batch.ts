/**
 * Batch API mode (OpenAI Batch / Azure Global Batch, half price, 24 h window): a
 * round of judge requests becomes JSONL files split under the provider's limits,
 * uploaded, submitted, polled, downloaded; only failed or expired lines are
 * resubmitted, and every file is deleted afterwards (Azure allows 500 per resource).
 */
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import {
  BATCH_LIMITS,
  readBatchOutput,
  splitBatchFiles,
  TERMINAL_BATCH_STATES,
} from '../shared/judge/batch';
import type { JudgeRequest, RequestOutcome, RoundExecutor } from '../shared/judge/llm';
import type { OpenAIJudgeSettings } from '../shared/judge/settings';
import type { UsageMeter } from '../shared/judge/usage';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { chatBody, completionOf, systemClock, type Clock } from './openai-judge';

export interface BatchExecutorOptions {
  client: OpenAI;
  model: string;
  settings: OpenAIJudgeSettings;
  meter: UsageMeter;
  clock?: Clock;
  /** Called with each batch's id and status as it is polled. */
  onStatus?: (batch: Pick<Batch, 'id' | 'status' | 'request_counts'>) => void;
}

/** What one Batch API submission left behind: its results and the files to delete. */
interface Submission {
  inputFileId: string;
  batch: Batch;
}

export function createBatchExecutor(opts: BatchExecutorOptions): RoundExecutor {
  const clock = opts.clock ?? systemClock;
  const s = opts.settings;
  const limits = BATCH_LIMITS[s.provider];
  const maxRequests = s.batch.maxRequestsPerFile ?? limits.maxRequests;
  const maxBytes = Math.min(s.batch.maxBytesPerFile, limits.maxBytes);
  // Azure's batch lines name the deployment path without the /v1 prefix.
  const url = s.provider === 'azure' ? '/chat/completions' : '/v1/chat/completions';

  async function submit(lines: string[], round: number, part: number): Promise<Submission> {
    const file = await opts.client.files.create({
      file: await toFile(
        Buffer.from(lines.join('\n') + '\n', 'utf8'),
        `judge-r${round}-p${part}.jsonl`,
        {
          type: 'application/jsonl',
        },
      ),
      purpose: 'batch',
    });
    const batch = await opts.client.batches.create({
      input_file_id: file.id,
      endpoint: url as '/v1/chat/completions',
      completion_window: s.batch.completionWindow,
    });
    return { inputFileId: file.id, batch };
  }

  async function waitFor(sub: Submission): Promise<Batch> {
    const started = clock.now();
    let b = sub.batch;
    while (!(TERMINAL_BATCH_STATES as readonly string[]).includes(b.status)) {
      if (clock.now() - started > s.batch.maxWaitMs) {
        b = await opts.client.batches.cancel(b.id);
        while (!(TERMINAL_BATCH_STATES as readonly string[]).includes(b.status)) {
          await clock.sleep(s.batch.pollIntervalMs);
          b = await opts.client.batches.retrieve(b.id);
        }
        break;
      }
      await clock.sleep(s.batch.pollIntervalMs);
      b = await opts.client.batches.retrieve(b.id);
      opts.onStatus?.(b);
    }
    return b;
  }

  async function download(fileId: string | null | undefined): Promise<string> {
    if (!fileId) return '';
    const res = await opts.client.files.content(fileId);
    return res.text();
  }

  async function remove(fileId: string | null | undefined): Promise<void> {
    if (!fileId) return;
    try {
      await opts.client.files.delete(fileId);
    } catch {
      // Deleting is housekeeping; a failure must not lose verdicts already read.
    }
  }

  async function run(requests: readonly JudgeRequest[]): Promise<RequestOutcome[]> {
    const byId = new Map(requests.map((r) => [r.id, r]));
    const outcomes = new Map<string, RequestOutcome>();
    const lastCause = new Map<string, string>();
    let pending = requests.map((r) => r.id);
    for (let round = 1; round <= s.batch.maxRounds && pending.length > 0; round++) {
      const lines = pending.map((id) =>
        JSON.stringify({
          custom_id: id,
          method: 'POST',
          url,
          body: chatBody(byId.get(id)!, opts.model, s),
        }),
      );
      const files = splitBatchFiles(lines, maxRequests, maxBytes);
      const subs = await Promise.all(files.map((f, i) => submit(f, round, i + 1)));
      const done = await Promise.all(subs.map(waitFor));
      for (const [i, b] of done.entries()) {
        const text = (await download(b.output_file_id)) + '\n' + (await download(b.error_file_id));
        for (const line of readBatchOutput(text)) {
          if (!byId.has(line.customId) || outcomes.has(line.customId)) continue;
          if (line.ok) {
            const completion = completionOf(line.body as ChatCompletion);
            opts.meter.call(completion.usage, true);
            outcomes.set(line.customId, { ok: true, completion });
          } else if (!line.retry) {
            opts.meter.call(null, true);
            outcomes.set(line.customId, { ok: false, kind: 'bad_request', cause: line.cause });
          } else {
            opts.meter.call(null, true);
            lastCause.set(line.customId, line.cause);
          }
        }
        if (b.status !== 'completed') {
          const why = b.errors?.data?.[0]?.message;
          for (const id of pending) {
            if (!outcomes.has(id) && !lastCause.has(id))
              lastCause.set(id, `batch ${b.status}${why ? `: ${why}` : ''}`);
          }
        }
        await Promise.all([
          remove(subs[i]!.inputFileId),
          remove(b.output_file_id),
          remove(b.error_file_id),
        ]);
      }
      pending = pending.filter((id) => !outcomes.has(id));
      if (pending.length > 0 && round < s.batch.maxRounds)
        pending.forEach(() => opts.meter.retry());
    }
    return requests.map(
      (r) =>
        outcomes.get(r.id) ?? {
          ok: false,
          kind: 'exhausted',
          cause: `${lastCause.get(r.id) ?? 'batch line missing from the output'} (after ${s.batch.maxRounds} batch rounds)`,
        },
    );
  }

  return { run };
}
