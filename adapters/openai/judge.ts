/**
 * The OpenAI / Azure OpenAI judge: the core's LLM judge (shared/judge/llm.ts) with
 * an executor that sends each request through the real `openai` SDK under the RPM
 * and TPM budgets and a concurrency limit, honours 429 Retry-After, backs off with
 * jitter on 5xx and timeouts, and enforces a per-request timeout. The SDK's own
 * retries are off so every attempt is counted and paced here.
 */
import { createHash, randomBytes } from 'node:crypto';
import OpenAI, { APIConnectionError, APIError } from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
} from 'openai/resources/chat/completions';
import {
  createLlmJudge,
  JudgeConfigError,
  type Completion,
  type JudgeRequest,
  type RequestOutcome,
  type RoundExecutor,
} from '../../shared/judge/llm';
import { VERDICT_JSON_SCHEMA } from '../../shared/judge/rubric';
import type { OpenAIJudgeSettings } from '../../shared/judge/settings';
import {
  backoffDelay,
  classifyFailure,
  RateBudget,
  retryAfterMs,
  Semaphore,
} from '../../shared/judge/throttle';
import type { Judge } from '../../shared/judge/types';
import { UsageMeter, type JudgeStats, type TokenUsage } from '../../shared/judge/usage';
import type { VerdictCache } from '../../shared/judge/cache-key';
import { estimateTokens } from '../../shared/samples/assemble';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** Uniform in [0, 1): backoff jitter. */
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: () => Math.random(),
};

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');
export const randomHex = (): string => randomBytes(8).toString('hex');

/** The Chat Completions body for one judge request (also a Batch API line's body). */
export function chatBody(
  req: JudgeRequest,
  model: string,
  settings: Pick<OpenAIJudgeSettings, 'logprobs' | 'seed' | 'temperature'>,
): ChatCompletionCreateParamsNonStreaming {
  const body: ChatCompletionCreateParamsNonStreaming = {
    model,
    messages: [
      { role: 'system', content: req.prompt.system },
      { role: 'user', content: req.prompt.user },
    ],
    response_format: {
      type: 'json_schema',
      json_schema: VERDICT_JSON_SCHEMA as unknown as {
        name: string;
        strict: boolean;
        schema: Record<string, unknown>;
      },
    },
    max_completion_tokens: req.maxTokens,
  };
  if (settings.temperature !== null) body.temperature = settings.temperature;
  if (settings.logprobs) {
    body.logprobs = true;
    body.top_logprobs = 2;
  }
  if (settings.seed !== undefined) body.seed = settings.seed;
  return body;
}

/** The parts of a chat completion the judge uses. */
export function completionOf(c: ChatCompletion): Completion {
  const choice = c.choices[0];
  const usage: TokenUsage | null = c.usage
    ? {
        promptTokens: c.usage.prompt_tokens,
        cachedTokens: c.usage.prompt_tokens_details?.cached_tokens ?? 0,
        completionTokens: c.usage.completion_tokens,
      }
    : null;
  const logprobs =
    choice?.logprobs?.content?.map((t) => ({
      token: t.token,
      logprob: t.logprob,
      top: t.top_logprobs.map((a) => ({ token: a.token, logprob: a.logprob })),
    })) ?? null;
  return { text: choice?.message.content ?? null, logprobs, usage };
}

const describe = (err: unknown): string => {
  if (err instanceof APIError && err.status !== undefined) {
    return `HTTP ${err.status}${err.message ? `: ${err.message.slice(0, 200)}` : ''}`;
  }
  return err instanceof Error ? `${err.name}: ${err.message.slice(0, 200)}` : String(err);
};

export interface ChatExecutorOptions {
  client: OpenAI;
  model: string;
  settings: OpenAIJudgeSettings;
  clock?: Clock;
}

/**
 * Sends each request as one Chat Completions call, paced and retried. The RPM/TPM
 * budget and the concurrency limit belong to the executor, so every judge sharing it
 * (see pooledJudge) shares them.
 */
export function createChatExecutor(opts: ChatExecutorOptions): RoundExecutor {
  const clock = opts.clock ?? systemClock;
  const s = opts.settings;
  const budget = new RateBudget({ rpm: s.rpm, tpm: s.tpm }, clock.now());
  const slots = new Semaphore(s.concurrency);

  async function send(req: JudgeRequest): Promise<RequestOutcome> {
    const body = chatBody(req, opts.model, s);
    const estimate =
      estimateTokens(req.prompt.system) + estimateTokens(req.prompt.user) + req.maxTokens;
    let last = 'no attempt made';
    let calls = 0;
    for (let attempt = 0; attempt <= s.maxRetries; attempt++) {
      const wait = budget.reserve(clock.now(), estimate);
      if (wait > 0) await clock.sleep(wait);
      try {
        calls++;
        const res = await opts.client.chat.completions.create(body, {
          timeout: s.timeoutMs,
          maxRetries: 0,
        });
        const completion = completionOf(res);
        const used = completion.usage
          ? completion.usage.promptTokens + completion.usage.completionTokens
          : estimate;
        budget.settle(clock.now(), estimate, used);
        return { ok: true, completion, calls };
      } catch (err) {
        budget.settle(clock.now(), estimate, 0);
        last = describe(err);
        if (!(err instanceof APIError)) throw err; // a bug, not a provider failure
        const apiErr = err as APIError<number | undefined, Headers | undefined>;
        const status = err instanceof APIConnectionError ? undefined : apiErr.status;
        const kind = classifyFailure(status);
        if (kind === 'fatal') {
          throw new JudgeConfigError(
            `judge endpoint refused the call (${last}): check the model/deployment and credentials`,
            {
              cause: err,
            },
          );
        }
        if (kind === 'bad_request')
          return { ok: false, kind: 'bad_request', cause: `judge call rejected: ${last}`, calls };
        if (attempt === s.maxRetries) break;
        const backoff = backoffDelay(
          attempt,
          { baseMs: s.backoffBaseMs, maxMs: s.backoffMaxMs },
          clock.random(),
        );
        if (kind === 'rate_limited') {
          const hinted = retryAfterMs((name) => apiErr.headers?.get(name), clock.now());
          budget.pauseUntil(clock.now() + (hinted ?? backoff));
        } else {
          await clock.sleep(backoff);
        }
      }
    }
    return {
      ok: false,
      kind: 'exhausted',
      cause: `judge call failed after ${s.maxRetries + 1} attempts: ${last}`,
      calls,
    };
  }

  return { run: (requests) => Promise.all(requests.map((r) => slots.run(() => send(r)))) };
}

export interface OpenAIJudgeOptions {
  settings: OpenAIJudgeSettings;
  /** How requests reach the model: createChatExecutor, or the Batch API's executor. */
  executor: RoundExecutor;
  cache?: VerdictCache | null;
  randomHex?: () => string;
}

/**
 * An LLM judge with its own stats over an executor that may be shared: several judges
 * on one executor share its client, rate budget and concurrency, but count apart.
 */
export function createOpenAIJudge(opts: OpenAIJudgeOptions): Judge & { stats(): JudgeStats } {
  const s = opts.settings;
  return createLlmJudge({
    name: `${s.provider}:${s.model}${s.mode === 'batch' ? ':batch' : ''}`,
    model: s.cacheModel ?? s.model,
    batchSize: s.batchSize,
    maxVerdictAttempts: s.maxVerdictAttempts,
    executor: opts.executor,
    cache: opts.cache ?? null,
    sha256: sha256Hex,
    randomHex: opts.randomHex ?? randomHex,
    meter: new UsageMeter(s.prices),
  });
}
