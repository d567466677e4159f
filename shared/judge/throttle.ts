/**
 * Throughput control, as pure math over an injected clock: requests-per-minute and
 * tokens-per-minute budgets (token buckets), a shared pause after a 429, exponential
 * backoff with full jitter, and the provider's rate-limit headers read into a wait.
 */

/** A token bucket refilled continuously at `perMinute`; reservations may go into debt. */
export class TokenBucket {
  private level: number;
  private at: number;

  constructor(
    private readonly perMinute: number,
    now: number,
  ) {
    this.level = perMinute;
    this.at = now;
  }

  private refill(now: number): void {
    if (now > this.at) {
      this.level = Math.min(
        this.perMinute,
        this.level + ((now - this.at) * this.perMinute) / 60_000,
      );
      this.at = now;
    }
  }

  /**
   * Takes `cost` now and returns how long to wait before using it (0 when it was
   * available). A cost above the whole budget is charged as the whole budget, so one
   * huge request waits at most a minute rather than forever.
   */
  reserve(now: number, cost: number): number {
    this.refill(now);
    const c = Math.min(cost, this.perMinute);
    this.level -= c;
    return this.level >= 0 ? 0 : Math.ceil((-this.level * 60_000) / this.perMinute);
  }

  /** Gives back (or charges) the difference between an estimate and the real cost. */
  adjust(now: number, delta: number): void {
    this.refill(now);
    this.level = Math.min(this.perMinute, this.level - delta);
  }
}

export interface RateBudgetOptions {
  /** Requests per minute; 0 or absent = unlimited. */
  rpm?: number;
  /** Tokens (prompt + completion) per minute; 0 or absent = unlimited. */
  tpm?: number;
}

/** RPM and TPM budgets plus a shared "paused until" set by a 429. */
export class RateBudget {
  private readonly requests: TokenBucket | null;
  private readonly tokens: TokenBucket | null;
  private pausedUntil = 0;

  constructor(opts: RateBudgetOptions, now: number) {
    this.requests = opts.rpm ? new TokenBucket(opts.rpm, now) : null;
    this.tokens = opts.tpm ? new TokenBucket(opts.tpm, now) : null;
  }

  /** Reserves one request of `estimatedTokens`; returns the wait in ms before sending. */
  reserve(now: number, estimatedTokens: number): number {
    const pause = Math.max(0, this.pausedUntil - now);
    const r = this.requests?.reserve(now, 1) ?? 0;
    const t = this.tokens?.reserve(now, estimatedTokens) ?? 0;
    return Math.max(pause, r, t);
  }

  /** Corrects the token budget once the real usage is known. */
  settle(now: number, estimatedTokens: number, actualTokens: number): void {
    this.tokens?.adjust(now, actualTokens - estimatedTokens);
  }

  /** After a 429: nobody sends before `until`. */
  pauseUntil(until: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, until);
  }

  get pausedUntilMs(): number {
    return this.pausedUntil;
  }
}

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with full jitter (AWS's recommendation): a uniform wait in
 * [0, min(max, base × 2^attempt)). `random` is in [0, 1), injected for tests.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: number): number {
  const cap = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random * cap);
}

/** "1s", "6m0s", "20ms", "1h2m3.5s" (OpenAI's x-ratelimit-reset-*) in ms, or null. */
export function parseDuration(text: string): number | null {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = '';
  for (let m = re.exec(text); m; m = re.exec(text)) {
    matched += m[0];
    const n = Number(m[1]);
    total +=
      m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
  }
  return matched.length > 0 && matched === text.trim() ? Math.ceil(total) : null;
}

/**
 * How long a 429 (or 503) response asks us to wait, in ms, from its headers:
 * `retry-after-ms`, then `retry-after` (seconds or an HTTP date), then the later of
 * `x-ratelimit-reset-requests` / `-tokens`. Null when none says.
 */
export function retryAfterMs(
  header: (name: string) => string | null | undefined,
  now: number,
): number | null {
  const ms = header('retry-after-ms');
  if (ms != null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = header('retry-after');
  if (ra != null && ra.trim() !== '') {
    const secs = Number(ra);
    if (Number.isFinite(secs)) return Math.max(0, Math.ceil(secs * 1000));
    const date = Date.parse(ra);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  let best: number | null = null;
  for (const name of ['x-ratelimit-reset-requests', 'x-ratelimit-reset-tokens']) {
    const v = header(name);
    const d = v == null ? null : parseDuration(v);
    if (d !== null) best = Math.max(best ?? 0, d);
  }
  return best;
}

export type FailureKind = 'rate_limited' | 'transient' | 'bad_request' | 'fatal';

/**
 * What to do about a failed call: 429 waits and retries; 408/409/5xx, timeouts and
 * connection errors back off and retry; 400/413/422 are about this request's content
 * (the batch is split and its samples re-asked alone); 401/403/404 mean the judge is
 * misconfigured, and no retry or re-ask can help.
 */
export function classifyFailure(status: number | undefined): FailureKind {
  if (status === undefined) return 'transient';
  if (status === 429) return 'rate_limited';
  if (status === 408 || status === 409 || status >= 500) return 'transient';
  if (status === 401 || status === 403 || status === 404) return 'fatal';
  return 'bad_request';
}

/** At most `limit` tasks at once, across every caller that shares the semaphore. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`concurrency must be at least 1, got ${limit}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
