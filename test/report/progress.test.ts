import { describe, expect, it } from 'vitest';
import { Progress, formatDuration, formatProgress, formatTokens } from '../../cli/progress';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => (out.push(s), true) } };
}

describe('progress line', () => {
  it('shows count, total, percent, ETA and rate', () => {
    expect(formatProgress({ label: 'judge', done: 250, total: 1000, elapsedMs: 5_000 })).toBe(
      'judge: 250 / 1,000 (25.0%, ETA 15 s) · 50/s',
    );
  });

  it('shows the tokens and money a judge has spent', () => {
    const line = formatProgress({
      label: 'judge (openai)',
      done: 40,
      total: 100,
      elapsedMs: 2_000,
      spend: {
        promptTokens: 48_000,
        completionTokens: 2_000,
        cachedTokens: 30_000,
        estimatedCost: 0.0123,
      },
    });
    expect(line).toBe(
      'judge (openai): 40 / 100 (40.0%, ETA 3 s) · 20/s · 50.0k tokens (30.0k cached) · $0.0123',
    );
  });

  it('leaves out the ETA while nothing is done and the total while unknown', () => {
    expect(formatProgress({ label: 'x', done: 0, total: 10, elapsedMs: 1_000 })).toBe(
      'x: 0 / 10 (0.0%) · 0/s',
    );
    expect(formatProgress({ label: 'read', done: 9, elapsedMs: 3_000, extra: 'rows' })).toBe(
      'read: 9 · 3/s · rows',
    );
  });

  it.each([
    [42, '42 s'],
    [185, '3 min 05 s'],
    [3_720, '1 h 02 min'],
  ])('formats %d seconds as %s', (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });

  it.each([
    [950, '950'],
    [12_345, '12.3k'],
    [4_560_000, '4.56M'],
  ])('formats %d tokens as %s', (n, text) => {
    expect(formatTokens(n)).toBe(text);
  });
});

describe('Progress', () => {
  it('redraws one line in place on a terminal and ends it with the summary', () => {
    let t = 0;
    const s = sink(true);
    const p = new Progress('balance', false, { stream: s.stream, now: () => t });
    t = 1_000;
    p.update(500, 1_000);
    t = 1_100; // throttled: under 200 ms since the last draw
    p.update(600, 1_000);
    t = 2_000;
    p.update(1_000, 1_000);
    p.done('1,000 rows read');
    expect(s.out).toEqual([
      '\r\x1b[Kbalance: 500 / 1,000 (50.0%, ETA 1 s) · 500/s',
      '\r\x1b[Kbalance: 1,000 / 1,000 (100.0%, ETA 0 s) · 500/s',
      '\r\x1b[K',
      'balance: 1,000 rows read\n',
    ]);
  });

  it('is silent when stderr is not a terminal', () => {
    const s = sink(false);
    const p = new Progress('balance', false, { stream: s.stream });
    p.update(1, 2);
    p.done('done');
    expect(p.active).toBe(false);
    expect(s.out).toEqual([]);
  });

  it('is silent with --quiet on a terminal', () => {
    const s = sink(true);
    const p = new Progress('balance', true, { stream: s.stream });
    p.update(1, 2);
    p.done('done');
    expect(s.out).toEqual([]);
  });

  it('asks the judge for its spend on each redraw', () => {
    let calls = 0;
    const s = sink(true);
    let t = 0;
    const p = new Progress('judge', false, {
      stream: s.stream,
      now: () => t,
      spend: () => {
        calls++;
        return { promptTokens: 1_000 * calls, completionTokens: 0, estimatedCost: 0 };
      },
    });
    t = 1_000;
    p.update(10, 20);
    t = 2_000;
    p.update(20, 20);
    expect(s.out[0]).toContain('1.0k tokens');
    expect(s.out[1]).toContain('2.0k tokens');
  });
});
