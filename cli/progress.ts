/**
 * Progress on stderr for long work: a redrawn line on a terminal, an occasional
 * plain line otherwise, nothing with --quiet.
 */
export class Progress {
  private last = 0;
  private readonly started = Date.now();
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly quiet: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /** Reports `done` of `total` (total may be unknown); throttled. */
  update(done: number, total?: number, extra = ''): void {
    if (this.quiet) return;
    const now = Date.now();
    const interval = this.stream.isTTY ? 200 : 5_000;
    if (now - this.last < interval) return;
    this.last = now;
    this.draw(done, total, extra);
  }

  done(message: string): void {
    if (this.quiet) return;
    if (this.drawn && this.stream.isTTY) this.stream.write('\r\x1b[K');
    this.stream.write(`${this.label}: ${message}\n`);
  }

  private draw(done: number, total: number | undefined, extra: string): void {
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    let text = `${this.label}: ${done.toLocaleString('en-US')}`;
    if (total !== undefined && total > 0) {
      const eta = rate > 0 ? (total - done) / rate : 0;
      text += ` / ${total.toLocaleString('en-US')} (${((100 * done) / total).toFixed(1)}%, ETA ${eta.toFixed(0)} s)`;
    }
    text += ` · ${Math.round(rate).toLocaleString('en-US')}/s${extra ? ` · ${extra}` : ''}`;
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[K${text}`);
      this.drawn = true;
    } else {
      this.stream.write(`${text}\n`);
    }
  }
}
