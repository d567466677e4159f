/**
 * The redaction core: every kind found and replaced by its placeholder, look-alikes
 * left alone, hostile inputs handled in linear time, and the source step's use of it
 * (valid turns, metadata, quarantined raw text) counted by kind.
 */
import { describe, expect, it } from 'vitest';
import { parseTelemetryLine, prepareShard } from '../../shared/build/batch';
import { buildSpecOf, shardLine } from '../../shared/build/spec';
import { generateTelemetry } from '../../shared/source/generate';
import {
  REDACTION_KINDS,
  Redactor,
  redactText,
  type RedactionCounts,
} from '../../shared/samples/redact';
import { turn } from '../support/rows';
import { countsOf, plantedCorpus } from './planted';

const corpus = plantedCorpus(3);

describe('redactText', () => {
  it('has a planted example of every kind', () => {
    expect(new Set(corpus.map((p) => p.kind))).toEqual(new Set(REDACTION_KINDS));
  });

  it.each(corpus.map((p) => [p.kind, p] as const))(
    'replaces a %s by its placeholder and counts it',
    (kind, p) => {
      const counts: RedactionCounts = {};
      const out = redactText(`before ${p.text} after`, counts);
      expect(out).not.toContain(p.secret);
      expect(out).toContain(`[${kind}]`);
      expect(out.startsWith('before ')).toBe(true);
      expect(out.endsWith(' after')).toBe(true);
      expect(counts).toEqual({ [kind]: 1 });
    },
  );

  it.each([
    [
      'postgres://admin:hunter2@db.example:5432/x',
      'postgres://[URL_CREDENTIALS]@db.example:5432/x',
    ],
    [
      'https://a.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=abcdEFGH1234ijklMNOP5678%3D',
      'https://a.blob.core.windows.net/c/b?[AZURE_SAS_TOKEN]',
    ],
    [
      'AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
      'AWS_SECRET_ACCESS_KEY="[AWS_SECRET_KEY]"',
    ],
    ['mail ana@example.com, call +1 415 555 0132', 'mail [EMAIL], call [PHONE]'],
  ])('keeps the context of %s', (text, expected) => {
    expect(redactText(text)).toBe(expected);
  });

  it.each([
    'std::vector<int> a; Foo::bar(); a::b',
    'at 12:30:45 on 2026-10-01, build v1.2.3 and version 1.2.3.4.5',
    'listen on 127.0.0.1:8080 or 0.0.0.0 and ::1',
    'use sk-learn-compatible-estimators here',
    'the sha is 3f786850e387550fdab836ed7e6dc881de23001b',
    'order #12345678 costs 1,234.56',
    'import { x } from "@scope/pkg"; user@localhost',
    'a 40-char word without context: abcdefghijabcdefghijabcdefghijabcdefghij',
  ])('leaves a look-alike alone: %s', (text) => {
    const counts: RedactionCounts = {};
    expect(redactText(text, counts)).toBe(text);
    expect(counts).toEqual({});
  });

  it('finds nothing in 3,000 generated conversations (no false positives to skew counts)', () => {
    const counts: RedactionCounts = {};
    const r = new Redactor();
    for (const t of generateTelemetry({ conversations: 3_000, seed: 9 })) r.turn(t);
    expect(r.counts).toEqual(counts);
  });

  it.each([
    ['semicolon pairs', 'a=;'.repeat(11_000)],
    ['one long word', 'x'.repeat(32_000)],
    ['dotted digits', '1.'.repeat(16_000)],
    ['colons', 'a:'.repeat(16_000)],
    ['plus-ones', '+1 '.repeat(10_000)],
    ['sig= runs', 'sig='.repeat(8_000)],
    ['at signs', 'ab@'.repeat(10_000)],
    ['BEGIN without END', `-----BEGIN PRIVATE KEY-----${'A'.repeat(32_000)}`],
    ['eyJ runs', 'eyJ.'.repeat(8_000)],
    ['key= runs', 'AccountName=x;'.repeat(2_300)],
  ])('handles 32 kB of %s in linear time', (_name, text) => {
    const t = performance.now();
    redactText(text);
    expect(performance.now() - t).toBeLessThan(250);
  });

  it('redacts only the kinds asked for', () => {
    const r = new Redactor({ enabled: true, kinds: ['EMAIL'] });
    expect(r.text('ana@example.com AKIAIOSFODNN7EXAMPLE')).toBe('[EMAIL] AKIAIOSFODNN7EXAMPLE');
  });

  it('does nothing when turned off', () => {
    const r = new Redactor({ enabled: false });
    const t = turn({ userMessage: 'ana@example.com' });
    expect(r.turn(t)).toBe(t);
    expect(r.summary()).toEqual({ enabled: false, total: 0, byKind: {} });
  });
});

describe('the source step', () => {
  it('redacts the message and string metadata of a valid turn, not its typed fields', () => {
    const r = new Redactor();
    const parsed = parseTelemetryLine(
      JSON.stringify(
        turn({
          userMessage: 'my key is AKIAIOSFODNN7EXAMPLE',
          client: { host: '10.1.2.3', tags: ['ana@example.com'] },
          model: 'gpt-4o',
        }),
      ),
      1,
      32_000,
      r,
    );
    expect(parsed).toMatchObject({
      turn: {
        userMessage: 'my key is [AWS_ACCESS_KEY]',
        client: { host: '[IP_ADDRESS]', tags: ['[EMAIL]'] },
        model: 'gpt-4o',
      },
    });
    expect(r.summary()).toEqual({
      enabled: true,
      total: 3,
      byKind: { AWS_ACCESS_KEY: 1, EMAIL: 1, IP_ADDRESS: 1 },
    });
  });

  it('redacts the raw text of a quarantined line before cutting it to 500 characters', () => {
    const key = `ghp_${'a1'.repeat(18)}`;
    const line = `{"conversationId":"x","userMessage":"${'p'.repeat(480)} ${key}"`;
    const r = new Redactor();
    const parsed = parseTelemetryLine(line, 7, 32_000, r);
    expect(parsed).toMatchObject({ quarantine: { line: 7, reason: 'invalid_json' } });
    const raw = (parsed as { quarantine: { raw: string } }).quarantine.raw;
    expect(raw).not.toContain('ghp_');
    expect(raw.length).toBeLessThanOrEqual(500);
  });

  it('prepareShard counts what it redacted by kind, and keeps the text when the spec says off', () => {
    const c = plantedCorpus(2, 4);
    const lines = c.map((p, i) =>
      shardLine(
        i + 1,
        JSON.stringify(
          turn({
            conversationId: `c${i}`,
            turnIndex: 1,
            turnCount: 1,
            userMessage: `look: ${p.text}`,
          }),
        ),
      ),
    );
    const spec = (redact: boolean) =>
      buildSpecOf({
        id: 'b-redact',
        createdAt: '2026-11-25T00:00:00Z',
        createdBy: 'cli',
        request: {},
        defaults: {
          pipeline: 'session',
          total: 10,
          ratio: 0.5,
          allocation: 'equal',
          onShortfall: 'shrink',
          seed: 1,
          validation: 0,
          historyTurns: 3,
          historyTokens: 1500,
        },
        source: { kind: 'blob', path: 'x' },
        judge: { name: 'signals', batchSize: 20 },
        minJudgedShare: 0.9,
        shardBytes: 1024,
        maxShards: 1,
        redact,
      });
    const on = prepareShard(lines, spec(true));
    expect(on.redactions).toEqual(countsOf(c));
    const text = JSON.stringify(on.samples);
    for (const p of c) expect(text).not.toContain(p.secret);
    const off = prepareShard(lines, spec(false));
    expect(off.redactions).toEqual({});
    expect(JSON.stringify(off.samples)).toContain(c[0]!.secret);
  });
});
