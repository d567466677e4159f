/**
 * NCRONTAB, the six-field cron of Azure Functions timers (`second minute hour day
 * month day-of-week`), evaluated in UTC as the host does without WEBSITE_TIME_ZONE.
 * Each field takes `*`, a number, a range `a-b`, a step `*∕n` or `a-b/n`, and comma
 * lists of these; day-of-week is 0-6 (Sunday 0; 7 is read as Sunday too). Names
 * (MON, JAN) are not supported. A time matches when every field matches (the day of
 * the month and the day of the week both, as NCrontab does).
 */
import { PermanentError } from '../errors';

export class CronError extends PermanentError {}

const FIELDS = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day-of-week', min: 0, max: 7 },
] as const;

export interface Cron {
  readonly text: string;
  /** The first instant strictly after `after` that matches (whole seconds, UTC). */
  next(after: Date): Date;
}

function parseField(text: string, f: (typeof FIELDS)[number]): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new CronError(`${f.name} field: "${part}" is not *, N, A-B or a step of those`);
    const lo = m[1] === '*' ? f.min : Number(m[2]);
    const hi = m[1] === '*' ? f.max : m[3] !== undefined ? Number(m[3]) : m[4] ? f.max : lo;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (lo < f.min || hi > f.max || lo > hi || step < 1)
      throw new CronError(`${f.name} field: "${part}" is outside ${f.min}-${f.max}`);
    for (let v = lo; v <= hi; v += step) out.add(f.name === 'day-of-week' && v === 7 ? 0 : v);
  }
  return out;
}

/** Parses a six-field NCRONTAB expression; a CronError names the bad field. */
export function parseNcrontab(text: string): Cron {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 6)
    throw new CronError(
      `"${text}": NCRONTAB needs six fields (second minute hour day month day-of-week), got ${parts.length}`,
    );
  const [sec, min, hour, day, month, dow] = parts.map((p, i) => parseField(p, FIELDS[i]!)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  return {
    text,
    next(after) {
      const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
      // Five years of days is more than any satisfiable expression needs (Feb 29 on a weekday).
      const limit = after.getTime() + 5 * 366 * 86_400_000;
      while (t.getTime() <= limit) {
        if (!month.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!day.has(t.getUTCDate()) || !dow.has(t.getUTCDay())) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!hour.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
          continue;
        }
        if (!min.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
          continue;
        }
        if (!sec.has(t.getUTCSeconds())) {
          t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
          continue;
        }
        return t;
      }
      throw new CronError(`"${text}": never fires`);
    },
  };
}
