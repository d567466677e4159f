/**
 * The LLM judge's logic, free of any SDK: cache lookups, K samples per request,
 * verdict validation, re-asking bad or missing verdicts alone, and giving up with a
 * cause. How a round of requests reaches a model (one call each under rate limits,
 * or a Batch API job) is the executor's business, supplied by an adapter.
 */
import type { Label } from '../contracts/rows';
import { judgeCacheKey, type VerdictCache } from './cache-key';
import {
  buildJudgePrompt,
  canonicalContent,
  DelimiterCollisionError,
  makeDelimiter,
  maxCompletionTokens,
  RUBRIC_VERSION,
  sampleContent,
  type JudgePrompt,
  type SampleContent,
} from './rubric';
import type { Judge, JudgeInput, Verdict } from './types';
import type { JudgeStats, TokenUsage, UsageMeter } from './usage';
import { parseVerdicts, type TokenLogprob } from './verdicts';
import { PermanentError } from '../errors';

/** One request of a round: the prompt for up to K samples. */
export interface JudgeRequest {
  /** Unique within the round (the Batch API's custom_id). */
  id: string;
  prompt: JudgePrompt;
  maxTokens: number;
  /**
   * Content hashes of the request's samples, in prompt order: what the request is
   * about, independent of its random delimiter (a resumed Batch API job is matched
   * by it).
   */
  contentKeys: string[];
}

export interface Completion {
  text: string | null;
  logprobs?: readonly TokenLogprob[] | null;
  usage: TokenUsage | null;
}

export type RequestOutcome = (
  | { ok: true; completion: Completion }
  /**
   * `bad_request`: the provider refused this request's content (400, content filter);
   * its samples are re-asked alone. `exhausted`: retries ran out; recorded unlabeled.
   */
  | { ok: false; kind: 'bad_request' | 'exhausted'; cause: string }
) & {
  /** Calls made for this request, failed ones included (retries = calls - 1). */
  calls: number;
  /** Made through the Batch API (priced at its discount). */
  batch?: boolean;
};

/** Sends a round of requests; resolves with one outcome per request, in order. */
export interface RoundExecutor {
  run(requests: readonly JudgeRequest[]): Promise<RequestOutcome[]>;
}

/** The judge is misconfigured (401/403/404): no retry or re-ask can help; the run stops. */
export class JudgeConfigError extends PermanentError {}

export interface LlmJudgeOptions {
  /** Recorded on rows and in the manifest, e.g. "openai:gpt-4o-mini". */
  name: string;
  /** The model identity in cache keys (a model name, not an Azure deployment alias). */
  model: string;
  rubricVersion?: string;
  /** K: samples per request. */
  batchSize: number;
  /** Asks per sample before it is recorded unlabeled (first ask included). */
  maxVerdictAttempts: number;
  completionTokensPerSample?: number;
  executor: RoundExecutor;
  cache?: VerdictCache | null;
  /** sha256 (lowercase hex) of a string; the adapter supplies node:crypto. */
  sha256: (text: string) => string;
  /** At least 16 random lowercase hex digits, fresh per call. */
  randomHex: () => string;
  meter: UsageMeter;
  /** Parallel cache reads/writes. */
  cacheConcurrency?: number;
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

interface Decided {
  label: Label;
  rationale: string;
  confidence?: number;
}

/** The batched, cached, validating LLM judge behind the {@link Judge} interface. */
export function createLlmJudge(opts: LlmJudgeOptions): Judge & { stats(): JudgeStats } {
  const rubricVersion = opts.rubricVersion ?? RUBRIC_VERSION;
  const k = Math.max(1, Math.floor(opts.batchSize));
  let seq = 0;

  const prompt = (contents: SampleContent[]): JudgePrompt => {
    for (let tries = 0; ; tries++) {
      try {
        return buildJudgePrompt(contents, makeDelimiter(opts.randomHex()));
      } catch (err) {
        if (!(err instanceof DelimiterCollisionError) || tries >= 5) throw err;
      }
    }
  };

  async function judge(batch: readonly JudgeInput[]): Promise<Verdict[]> {
    // Identical content is judged once: samples are grouped by content hash.
    const hashes = batch.map((s) => opts.sha256(canonicalContent(sampleContent(s))));
    const contentOf = new Map<string, SampleContent>();
    batch.forEach((s, i) => {
      if (!contentOf.has(hashes[i]!)) contentOf.set(hashes[i]!, sampleContent(s));
    });
    const unique = [...contentOf.keys()];
    const decided = new Map<string, Decided>();
    const failed = new Map<string, string>();
    const keyOf = (h: string) => judgeCacheKey(opts.model, rubricVersion, h);
    const cache = opts.cache ?? null;
    const limit = opts.cacheConcurrency ?? 16;

    if (cache) {
      const found = await mapLimit(unique, limit, (h) => cache.get(keyOf(h)));
      found.forEach((v, i) => {
        if (v) {
          const d: Decided = { label: v.label, rationale: v.rationale ?? '' };
          if (v.confidence !== undefined) d.confidence = v.confidence;
          decided.set(unique[i]!, d);
        }
      });
    }

    const attempts = new Map<string, number>();
    let reasked = 0;
    const toPut: string[] = [];
    const misses = unique.filter((h) => !decided.has(h));
    let groups: string[][] = [];
    for (let i = 0; i < misses.length; i += k) groups.push(misses.slice(i, i + k));

    while (groups.length > 0) {
      const requests: JudgeRequest[] = groups.map((g) => ({
        id: `r${++seq}`,
        prompt: prompt(g.map((h) => contentOf.get(h)!)),
        maxTokens: maxCompletionTokens(g.length, opts.completionTokensPerSample),
        contentKeys: g,
      }));
      for (const g of groups) for (const h of g) attempts.set(h, (attempts.get(h) ?? 0) + 1);
      const outcomes = await opts.executor.run(requests);
      const next: string[][] = [];
      const retryAlone = (h: string, cause: string) => {
        if ((attempts.get(h) ?? 0) < opts.maxVerdictAttempts) {
          next.push([h]);
          reasked++;
        } else failed.set(h, cause);
      };
      requests.forEach((req, r) => {
        const group = groups[r]!;
        const outcome = outcomes[r];
        if (!outcome) {
          for (const h of group) failed.set(h, 'judge call failed: no outcome for the request');
          return;
        }
        for (let c = 1; c < outcome.calls; c++) {
          opts.meter.call(null, outcome.batch);
          opts.meter.retry();
        }
        if (outcome.calls > 0)
          opts.meter.call(outcome.ok ? outcome.completion.usage : null, outcome.batch);
        if (!outcome.ok) {
          if (outcome.kind === 'bad_request' && group.length > 1) {
            for (const h of group) retryAlone(h, outcome.cause);
          } else {
            for (const h of group) failed.set(h, outcome.cause);
          }
          return;
        }
        const parsed = parseVerdicts(
          outcome.completion.text,
          req.prompt.ids,
          outcome.completion.logprobs,
        );
        if (
          parsed.fatal !== undefined &&
          group.length > 1 &&
          (attempts.get(group[0]!) ?? 0) === 1
        ) {
          // A whole answer that did not parse: ask for the same group once more.
          if (opts.maxVerdictAttempts > 1) {
            next.push(group);
            return;
          }
        }
        req.prompt.ids.forEach((id, i) => {
          const h = group[i]!;
          const v = parsed.ok.get(id);
          if (v) {
            const d: Decided = { label: v.label, rationale: v.rationale };
            if (v.confidence !== undefined) d.confidence = v.confidence;
            decided.set(h, d);
            toPut.push(h);
          } else {
            retryAlone(h, parsed.problems.get(id) ?? 'invalid verdict');
          }
        });
      });
      groups = next;
    }

    if (cache && toPut.length > 0) {
      await mapLimit(toPut, limit, async (h) => {
        const d = decided.get(h)!;
        try {
          await cache.put(keyOf(h), { ...d, model: opts.model, rubricVersion });
        } catch {
          // The verdict is already paid for and returned; a failed cache write only
          // means a later rebuild asks again. Counted, not fatal.
          opts.meter.cacheWriteError();
        }
      });
    }

    let labelled = 0;
    const verdicts = batch.map((s, i): Verdict => {
      const h = hashes[i]!;
      const d = decided.get(h);
      if (!d) {
        const cause = failed.get(h) ?? 'judge returned no verdict';
        const attemptsMade = attempts.get(h) ?? 0;
        return {
          sampleId: s.sampleId,
          label: null,
          error: attemptsMade > 1 ? `${cause} (after ${attemptsMade} asks)` : cause,
        };
      }
      labelled++;
      const v: Verdict = { sampleId: s.sampleId, label: d.label, rationale: d.rationale };
      if (d.confidence !== undefined) v.confidence = d.confidence;
      return v;
    });
    const hitSamples = batch.filter(
      (_, i) => decided.has(hashes[i]!) && !attempts.has(hashes[i]!),
    ).length;
    opts.meter.samples(batch.length, labelled, hitSamples, reasked);
    return verdicts;
  }

  return { name: opts.name, judge, stats: () => opts.meter.snapshot() };
}
