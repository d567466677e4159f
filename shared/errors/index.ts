/**
 * Errors by type. Every error class in the project extends one of two bases:
 * - `PermanentError`: retrying the same input gives the same answer (bad settings, a
 *   rejected query, a missing source, a shortfall). The build fails with the reason.
 * - `TransientError`: another attempt may succeed (throttling, an outage, a lost claim).
 *   The queue redelivers the message; the poison limit bounds the retries.
 * Both set `name` to the class's own name and keep `cause`. Callers decide retry by
 * type (`instanceof`, `isTransient`, `isPermanent`), never by name strings.
 *
 * Errors from SDKs (storage, Kusto, OpenAI) and from Node's network stack are not ours:
 * `classifyError` sorts them by HTTP status (408, 429 and 5xx transient, other 4xx
 * permanent) or network code (a reset or refused connection is transient).
 */

export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Errors the balancer raises on its input: permanent. */
export class BalanceError extends PermanentError {}

/** `--on-shortfall fail` and a class has fewer samples than its target. */
export class ShortfallError extends BalanceError {}

/** Nothing valid was left to balance. */
export class NoValidRowsError extends BalanceError {}

/**
 * Deduplication moved so many retained samples out of a stratum that the streaming
 * selection can no longer prove it holds that stratum's smallest keys.
 */
export class InexactSelectionError extends BalanceError {}

/**
 * Near-duplicate removal used up a stratum's retained candidates before its quota while
 * rows of that stratum were dropped: the selection cannot be proven. The driver scans
 * again with a per-cell margin of at least `margin` (docs/dedup.md "Passes").
 */
export class NearDedupRefillError extends BalanceError {
  constructor(
    message: string,
    /** The per-cell margin the next pass should keep. */
    readonly margin: number,
    /** The cells that ran out, with how many more candidates each is estimated to need. */
    readonly cells: { label: number; stratum: string; missing: number; need: number }[],
  ) {
    super(message);
  }
}

/** Node and undici codes of a connection that failed on the way: worth another try. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'REQUEST_SEND_ERROR',
]);

interface SdkErrorLike {
  status?: unknown;
  statusCode?: unknown;
  code?: unknown;
  response?: { status?: unknown };
  inner?: { response?: { status?: unknown } };
}

/** The HTTP status an SDK error carries (RestError, APIError, an axios error), if any. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as SdkErrorLike;
  for (const s of [e.status, e.statusCode, e.response?.status, e.inner?.response?.status])
    if (typeof s === 'number' && Number.isInteger(s) && s >= 100 && s < 600) return s;
  return undefined;
}

/** 408 (timeout), 429 (throttled) and 5xx are worth another try; other statuses are not. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export type ErrorClass = 'transient' | 'permanent' | 'unknown';

/**
 * Sorts an error: ours by type; an SDK error by its HTTP status; a network failure by
 * its code (on the error or its cause). Anything else is `unknown` (a bug, most
 * likely): callers let it reach the queue, whose poison limit stops it.
 */
export function classifyError(err: unknown): ErrorClass {
  if (err instanceof TransientError) return 'transient';
  if (err instanceof PermanentError) return 'permanent';
  const status = statusOf(err);
  if (status !== undefined && status >= 400)
    return isTransientStatus(status) ? 'transient' : 'permanent';
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const code = (e as SdkErrorLike).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return 'transient';
    e = (e as { cause?: unknown }).cause;
  }
  return 'unknown';
}

/** Another attempt may succeed. */
export const isTransient = (err: unknown): boolean => classifyError(err) === 'transient';

/** No attempt can succeed: fail with the reason instead of retrying. */
export const isPermanent = (err: unknown): boolean => classifyError(err) === 'permanent';
