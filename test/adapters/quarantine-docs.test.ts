/**
 * Issue 13 item 12b: the documented quarantine reasons missed `not_an_object`. The codes
 * are one list in the core (QUARANTINE_REASONS); the docs table must name exactly those,
 * and the README must point at it rather than keep a list of its own that can go stale.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QUARANTINE_REASONS, checkTurn } from '../../shared/contracts/rows';
import { parseTelemetryLine } from '../../shared/build/batch';

const root = join(__dirname, '..', '..');
const codes = Object.keys(QUARANTINE_REASONS).sort();

describe('the documented quarantine reasons', () => {
  const doc = readFileSync(join(root, 'docs', 'quarantine.md'), 'utf8');
  const tableCodes = [...doc.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((m) => m[1]!).sort();

  it('docs/quarantine.md names every code the core can produce, and no other', () => {
    expect(codes).toContain('not_an_object');
    expect(tableCodes).toEqual(codes);
  });

  it('the README links the table instead of listing codes itself', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme).toContain('(docs/quarantine.md)');
    const listed = new Set(readme.match(/`[a-z]+(?:_[a-z]+)+`/g) ?? []);
    const inReadme = codes.filter((c) => listed.has(`\`${c}\``));
    // A few codes are named in passing (limits table); a full list would be a second copy.
    expect(inReadme.length).toBeLessThan(codes.length / 2);
  });

  it('not_an_object is what a JSON line that is not an object gets', () => {
    for (const line of ['[1,2]', '"text"', '42', 'null']) {
      expect(checkTurn(JSON.parse(line))).toEqual({ reason: 'not_an_object' });
      const r = parseTelemetryLine(line, 7, 32_000);
      expect(r && 'quarantine' in r ? r.quarantine.reason : null).toBe('not_an_object');
    }
  });
});
