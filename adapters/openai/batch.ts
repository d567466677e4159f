/**
 * Batch API mode (OpenAI Batch / Azure Global Batch, half price, 24 h window): a
 * round of judge requests becomes JSONL files split under the provider's limits,
 * uploaded, submitted, polled, downloaded; only failed or expired lines are
 * resubmitted, and every file is deleted afterwards (Azure allows 500 per resource).
 * With a state store, submitted job ids are saved before the wait, so a run that dies
 * while waiting resumes the same jobs when it is started again on the same samples.
 */
import OpenAI, { APIError, toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import {
  BATCH_LIMITS,
  BatchStateSchema,
  type BatchState,
  readBatchOutput,
  splitBatchFiles,
  TERMINAL_BATCH_STATES,
} from '../../shared/judge/batch';
import type { JudgeRequest, RequestOutcome, RoundExecutor } from '../../shared/judge/llm';
import type { OpenAIJudgeSettings } from '../../shared/judge/settings';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { classifyFailure } from '../../shared/judge/throttle';
import type { TextBlobStore } from '../storage/judge-cache';
import { chatBody, completionOf, sha256Hex, systemClock, type Clock } from './judge';

export interface BatchExecutorOptions {
  client: OpenAI;
  model: string;
  settings: OpenAIJudgeSettings;
  clock?: Clock;
  /** Where submitted jobs are remembered for a resume; none = no resume. */
  state?: TextBlobStore | null;
  /** Called with each batch's id and status as it is polled. */
  onStatus?: (batch: Pick<Batch, 'id' | 'status' | 'request_counts'>) => void;
}

type Submission = BatchState['submissions'][number];

const isTerminal = (b: Batch) => (TERMINAL_BATCH_STATES as readonly string[]).includes(b.status);
const keyOf = (r: JudgeRequest) => r.contentKeys.join(',');

export function createBatchExecutor(opts: BatchExecutorOptions): RoundExecutor {
  const clock = opts.clock ?? systemClock;
  const s = opts.settings;
  const limits = BATCH_LIMITS[s.provider];
  const maxRequests = s.batch.maxRequestsPerFile ?? limits.maxRequests;
  const maxBytes = Math.min(s.batch.maxBytesPerFile, limits.maxBytes);
  // Azure's batch lines name the deployment path without the /v1 prefix.
  const url = s.provider === 'azure' ? '/chat/completions' : '/v1/chat/completions';

  // Azure allows 500 files per resource: files a dead run leaves behind expire.
  const expiry = <K extends string>(key: K) =>
    s.batch.fileExpirySeconds > 0
      ? ({ [key]: { anchor: 'created_at', seconds: s.batch.fileExpirySeconds } } as Record<
          K,
          { anchor: 'created_at'; seconds: number }
        >)
      : {};

  async function submit(
    lines: string[],
    name: string,
  ): Promise<{ inputFileId: string; batch: Batch }> {
    const file = await opts.client.files.create({
      file: await toFile(Buffer.from(lines.join('\n') + '\n', 'utf8'), name, {
        type: 'application/jsonl',
      }),
      purpose: 'batch',
      ...expiry('expires_after'),
    });
    const batch = await opts.client.batches.create({
      input_file_id: file.id,
      endpoint: url as '/v1/chat/completions',
      completion_window: s.batch.completionWindow,
      ...expiry('output_expires_after'),
    });
    return { inputFileId: file.id, batch };
  }

  /** Polls until the job ends; transient polling errors are waited out, not fatal. */
  async function waitFor(first: Batch): Promise<Batch> {
    const started = clock.now();
    let b = first;
    let cancelled = false;
    while (!isTerminal(b)) {
      if (!cancelled && clock.now() - started > s.batch.maxWaitMs) {
        b = await opts.client.batches.cancel(b.id);
        cancelled = true;
        continue;
      }
      await clock.sleep(s.batch.pollIntervalMs);
      try {
        b = await opts.client.batches.retrieve(b.id);
      } catch (err) {
        const status = err instanceof APIError ? (err.status as number | undefined) : undefined;
        const kind = err instanceof APIError ? classifyFailure(status) : 'fatal';
        if (kind === 'transient' || kind === 'rate_limited') continue;
        throw err;
      }
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

  async function loadState(path: string): Promise<BatchState> {
    const text = await opts.state!.get(path);
    if (text === null) return { submissions: [] };
    const parsed = BatchStateSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : { submissions: [] };
  }

  async function run(requests: readonly JudgeRequest[]): Promise<RequestOutcome[]> {
    const byId = new Map(requests.map((r) => [r.id, r]));
    const byKey = new Map(requests.map((r) => [keyOf(r), r]));
    const outcomes = new Map<string, RequestOutcome>();
    const lastCause = new Map<string, string>();
    /** Lines answered per request (a failed line that is resubmitted counts again). */
    const callsOf = new Map<string, number>();
    const statePath = opts.state
      ? `batch-state/${sha256Hex(JSON.stringify([opts.model, url, requests.map(keyOf)]))}.json`
      : null;
    const state: BatchState = statePath ? await loadState(statePath) : { submissions: [] };
    const save = async () => {
      if (statePath) await opts.state!.put(statePath, JSON.stringify(state));
    };

    /** Reads a finished job's lines into outcomes (by content key) and deletes its files. */
    const collect = async (sub: Submission, b: Batch) => {
      let text = '';
      try {
        text = (await download(b.output_file_id)) + '\n' + (await download(b.error_file_id));
      } catch {
        // Output gone (already read by an earlier run): its lines are simply resubmitted.
      }
      for (const line of readBatchOutput(text)) {
        const key = sub.lines[line.customId];
        const req = key === undefined ? undefined : byKey.get(key);
        if (!req || outcomes.has(req.id)) continue;
        const calls = (callsOf.get(req.id) ?? 0) + 1;
        callsOf.set(req.id, calls);
        if (line.ok) {
          const completion = completionOf(line.body as ChatCompletion);
          outcomes.set(req.id, { ok: true, completion, calls, batch: true });
        } else if (!line.retry) {
          outcomes.set(req.id, {
            ok: false,
            kind: 'bad_request',
            cause: line.cause,
            calls,
            batch: true,
          });
        } else {
          lastCause.set(req.id, line.cause);
        }
      }
      if (b.status !== 'completed') {
        const why = b.errors?.data?.[0]?.message;
        for (const key of Object.values(sub.lines)) {
          const req = byKey.get(key);
          if (req && !outcomes.has(req.id) && !lastCause.has(req.id))
            lastCause.set(req.id, `batch ${b.status}${why ? `: ${why}` : ''}`);
        }
      }
      await Promise.all([
        remove(sub.inputFileId),
        remove(b.output_file_id),
        remove(b.error_file_id),
      ]);
    };

    // Jobs an earlier run submitted for these same requests: wait for them, do not pay again.
    for (const sub of state.submissions) {
      let b: Batch;
      try {
        b = await opts.client.batches.retrieve(sub.batchId);
      } catch (err) {
        if (err instanceof APIError && err.status === 404) continue;
        throw err;
      }
      await collect(sub, await waitFor(b));
    }
    state.submissions = [];

    let pending = requests.filter((r) => !outcomes.has(r.id)).map((r) => r.id);
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
      const subs: [Submission, Batch][] = [];
      let at = 0;
      for (const [i, file] of files.entries()) {
        const ids = pending.slice(at, at + file.length);
        at += file.length;
        const { inputFileId, batch } = await submit(file, `judge-r${round}-p${i + 1}.jsonl`);
        const sub: Submission = {
          batchId: batch.id,
          inputFileId,
          lines: Object.fromEntries(ids.map((id) => [id, keyOf(byId.get(id)!)])),
        };
        state.submissions.push(sub);
        await save();
        subs.push([sub, batch]);
      }
      const done = await Promise.all(subs.map(([, b]) => waitFor(b)));
      for (const [i, b] of done.entries()) await collect(subs[i]![0], b);
      state.submissions = [];
      pending = pending.filter((id) => !outcomes.has(id));
    }
    await save();
    return requests.map(
      (r) =>
        outcomes.get(r.id) ?? {
          ok: false,
          kind: 'exhausted',
          cause: `${lastCause.get(r.id) ?? 'batch line missing from the output'} (after ${s.batch.maxRounds} batch rounds)`,
          calls: callsOf.get(r.id) ?? 0,
          batch: true,
        },
    );
  }

  return { run };
}
