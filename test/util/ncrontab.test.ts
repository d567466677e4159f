/** The six-field NCRONTAB of Functions timers, as `serve` fires them (shared/util/ncrontab.ts). */
import { describe, expect, it } from 'vitest';
import { CronError, parseNcrontab } from '../../shared/util/ncrontab';

const next = (cron: string, after: string) =>
  parseNcrontab(cron).next(new Date(after)).toISOString();

describe('parseNcrontab', () => {
  it.each([
    // The default schedule: Mondays 03:00 UTC (2026-12-01 is a Tuesday).
    ['0 0 3 * * 1', '2026-12-01T22:00:00Z', '2026-12-07T03:00:00.000Z'],
    ['0 0 3 * * 1', '2026-12-07T02:59:59Z', '2026-12-07T03:00:00.000Z'],
    ['0 0 3 * * 1', '2026-12-07T03:00:00Z', '2026-12-14T03:00:00.000Z'],
    ['*/5 * * * * *', '2026-12-01T10:00:03Z', '2026-12-01T10:00:05.000Z'],
    ['0 */15 9-17 * * 1-5', '2026-12-04T17:50:00Z', '2026-12-07T09:00:00.000Z'],
    ['30 0 0 1 1 *', '2026-06-15T00:00:00Z', '2027-01-01T00:00:30.000Z'],
    ['0 0 12 29 2 *', '2026-03-01T00:00:00Z', '2028-02-29T12:00:00.000Z'],
    ['0 0 0 * * 7', '2026-12-01T00:00:00Z', '2026-12-06T00:00:00.000Z'],
    ['0 0,30 8 * * *', '2026-12-01T08:10:00Z', '2026-12-01T08:30:00.000Z'],
  ])('"%s" after %s → %s', (cron, after, want) => {
    expect(next(cron, after)).toBe(want);
  });

  it.each([
    '0 0 3 * *',
    '0 0 25 * * *',
    '0 0 3 * * MON',
    '60 * * * * *',
    '0 0 5-2 * * *',
    '*/0 * * * * *',
  ])('"%s" is refused naming the problem', (bad) => {
    expect(() => parseNcrontab(bad)).toThrow(CronError);
  });

  it('an expression that never fires says so', () => {
    expect(() => parseNcrontab('0 0 0 31 2 *').next(new Date())).toThrow(/never fires/);
  });
});
