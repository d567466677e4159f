/**
 * Progress on stderr for long work: one line redrawn in place on a terminal, with
 * counts, rate, ETA and, while judging, the tokens and money spent so far. Silent
 * when stderr is not a terminal (logs and pipes get the final summary on stdout,
 * or `--json`, instead of a stream of progress lines) and with `--quiet`.
 */

/** What a judge has spent so far (a subset of JudgeStats). */
export interface Spend {
  promptTokens: number;
  completionTokens: number;
  cachedTokens?: number;
  estimatedCost: number;
}

export interface ProgressState {
  label: string;
  done: number;
  total?: number | undefined;
  elapsedMs: number;
  extra?: string;
  spend?: Spend | undefined;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');

/** Seconds as "42 s", "3 min 05 s" or "1 h 02 min". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Compact token counts: 950, 12.3k, 4.56M. */
export function formatTokens(n: number): string {
  if (n < 1_000) return String(n);
  if (n < 1_000_000) return `${(n / 1_000).toFixed(1)}k`;
  return `${(n / 1_000_000).toFixed(2)}M`;
}

/** The progress line for a state: pure, so it is tested without a terminal. */
export function formatProgress(s: ProgressState): string {
  const secs = s.elapsedMs / 1000;
  const rate = secs > 0 ? s.done / secs : 0;
  let text = `${s.label}: ${int(s.done)}`;
  if (s.total !== undefined && s.total > 0) {
    text += ` / ${int(s.total)} (${((100 * s.done) / s.total).toFixed(1)}%`;
    text += rate > 0 ? `, ETA ${formatDuration((s.total - s.done) / rate)})` : ')';
  }
  text += ` · ${int(rate)}/s`;
  if (s.extra) text += ` · ${s.extra}`;
  if (s.spend) {
    const tokens = s.spend.promptTokens + s.spend.completionTokens;
    text += ` · ${formatTokens(tokens)} tokens`;
    if (s.spend.cachedTokens) text += ` (${formatTokens(s.spend.cachedTokens)} cached)`;
    if (s.spend.estimatedCost > 0) text += ` · $${s.spend.estimatedCost.toFixed(4)}`;
  }
  return text;
}

export interface ProgressOptions {
  /** Where to draw (default process.stderr). */
  stream?: Pick<NodeJS.WriteStream, 'write' | 'isTTY'>;
  /** What the judge has spent so far, shown on each redraw. */
  spend?: () => Spend | undefined;
  /** Milliseconds since the epoch (tests pass a fixed clock). */
  now?: () => number;
}

export class Progress {
  private last = 0;
  private readonly started: number;
  private drawn = false;
  private readonly stream: Pick<NodeJS.WriteStream, 'write' | 'isTTY'>;
  private readonly now: () => number;
  /** Drawing at all: a terminal and no --quiet. */
  readonly active: boolean;

  constructor(
    private readonly label: string,
    quiet: boolean,
    opts: ProgressOptions | NodeJS.WriteStream = {},
  ) {
    const o: ProgressOptions = 'write' in opts ? { stream: opts } : opts;
    this.stream = o.stream ?? process.stderr;
    this.now = o.now ?? Date.now;
    this.spend = o.spend;
    this.started = this.now();
    this.active = !quiet && this.stream.isTTY === true;
  }

  private readonly spend: (() => Spend | undefined) | undefined;

  /** Reports `done` of `total` (total may be unknown); redraws at most 5 times a second. */
  update(done: number, total?: number, extra = ''): void {
    if (!this.active) return;
    const now = this.now();
    if (now - this.last < 200) return;
    this.last = now;
    this.stream.write(`\r\x1b[K${this.line(done, total, extra)}`);
    this.drawn = true;
  }

  /** Clears the progress line and prints the step's closing line. */
  done(message: string): void {
    if (!this.active) return;
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.stream.write(`${this.label}: ${message}\n`);
  }

  line(done: number, total?: number, extra = ''): string {
    return formatProgress({
      label: this.label,
      done,
      total,
      elapsedMs: this.now() - this.started,
      extra,
      spend: this.spend?.(),
    });
  }
}
