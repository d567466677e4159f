/**
 * Errors the core raises. Each has a `name` callers can branch on; all are permanent
 * (retrying the same input gives the same answer), unlike transient I/O failures.
 */
export class BalanceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** `--on-shortfall fail` and a class has fewer samples than its target. */
export class ShortfallError extends BalanceError {}

/** Nothing valid was left to balance. */
export class NoValidRowsError extends BalanceError {}

/**
 * Deduplication moved so many retained samples out of a stratum that the streaming
 * selection can no longer prove it holds that stratum's smallest keys.
 */
export class InexactSelectionError extends BalanceError {}
