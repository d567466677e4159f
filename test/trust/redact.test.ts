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
import { countsOf, plant, plantedCorpus } from './planted';

const corpus = plantedCorpus(3);

describe('redactText', () => {
  it('has a planted example of every kind', () => {
    expect(new Set(corpus.map((p) => p.kind))).toEqual(new Set(REDACTION_KINDS));
  });

  const inText = corpus.filter((p) => (p.place ?? 'message') === 'message');
  const inMetadata = corpus.filter((p) => (p.place ?? 'message') !== 'message');

  it.each(inText.map((p) => [p.kind, p.text, p] as const))(
    'replaces a %s by its placeholder and counts it: %s',
    (kind, _text, p) => {
      const counts: RedactionCounts = {};
      const out = redactText(`before ${p.text} after`, counts);
      expect(out).not.toContain(p.secret);
      expect(out).toContain(`[${kind}]`);
      expect(out.startsWith('before ')).toBe(true);
      expect(out.endsWith(' after')).toBe(true);
      expect(counts).toEqual({ [kind]: 1 });
    },
  );

  it.each(inMetadata.map((p) => [p.kind, p.place, p] as const))(
    'replaces a %s used as a metadata %s and counts it',
    (kind, _place, p) => {
      const t = turn({ userMessage: 'hello' });
      plant(t, p);
      expect(JSON.stringify(t)).toContain(p.secret);
      const r = new Redactor();
      const out = JSON.stringify(r.turn(t));
      expect(out).not.toContain(p.secret);
      expect(out).toContain(`[${kind}]`);
      expect(r.counts).toEqual({ [kind]: 1 });
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
    // The forms of issue 13 that escaped: each keeps its context and leaks nothing.
    [`ghp_${'a1'.repeat(18)}_backup`, '[GITHUB_TOKEN]_backup'],
    [`?q=token%3Dghp_${'a1'.repeat(18)}&x=1`, '?q=token%3D[GITHUB_TOKEN]&x=1'],
    ['to=ana.b%40corp.example.com&x=1', 'to=[EMAIL]&x=1'],
    ['to=ana.b%2540corp.example.com', 'to=[EMAIL]'],
    [
      'next=https%3A%2F%2Fa.blob.core.windows.net%2Fc%3Fsv%3D2022-11-02%26sig%3DabcdEFGH1234ijklMNOP5678',
      'next=https://a.blob.core.windows.net/c?[AZURE_SAS_TOKEN]',
    ],
    [
      '{"userMessage":"aws_secret_access_key=\\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\\""',
      '{"userMessage":"aws_secret_access_key=\\"[AWS_SECRET_KEY]\\""',
    ],
    ['write to jos\u00e9.garc\u00eda@example.com', 'write to [EMAIL]'],
    ['from ::ffff:192.168.77.41 via 64:ff9b::203.0.113.9.', 'from [IP_ADDRESS] via [IP_ADDRESS].'],
    ['redis://:pw@redis:6379/0', 'redis://[URL_CREDENTIALS]@redis:6379/0'],
    ['card 4111 1111 1111 1111, amex 3782-822463-10005', 'card [CARD_NUMBER], amex [CARD_NUMBER]'],
    ['paid with 5555555555554444.', 'paid with [CARD_NUMBER].'],
    [
      'password=hunter2 DB_PASSWORD="x9y8z7" {"client_secret": "abc"} password: hunter3',
      'password=[PASSWORD] DB_PASSWORD="[PASSWORD]" {"client_secret": "[PASSWORD]"} password: [PASSWORD]',
    ],
    ['{\\"password\\": \\"s3cr3t\\"}', '{\\"password\\": \\"[PASSWORD]\\"}'],
    [
      'curl -H "Authorization: Bearer abcDEF123456ghi" -H \'authorization: basic dXNlcjpwYXNz\'',
      'curl -H "Authorization: Bearer [BEARER_TOKEN]" -H \'authorization: basic [BEARER_TOKEN]\'',
    ],
    ['send Bearer 0123456789abcdefXYZ', 'send Bearer [BEARER_TOKEN]'],
    ['api_key=sk-proj-abcdefghij0123456789abcd', 'api_key=[OPENAI_API_KEY]'],
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
    // Digit runs that are not cards: Luhn fails, no network digit, odd grouping, epoch ms.
    'order 4111111111111112, id 1234567890123456, at 1700000000123 or 4111 1111 11 1111 1111',
    'bearer authentication uses a Bearer token; max_tokens=1000 and the token is "none"',
    'set password=true or secret: false; the pwd command; 50%25 off, a%20b, %E9t%E9',
    'an e-mail: ana at example dot com; fe80 and 12:30:45.123',
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
    ['digit groups', '4111 '.repeat(6_400)],
    ['percent runs', '%41'.repeat(10_000)],
    ['percent segments', 'a%41 '.repeat(6_000)],
    ['password= runs', 'password='.repeat(3_500)],
    ['Bearer runs', 'Bearer '.repeat(4_500)],
    ['Authorization runs', 'Authorization: Basic '.repeat(1_500)],
    ['Unicode local parts', '\u00e9'.repeat(16_000) + '@'],
    ['mapped-IPv6 look-alikes', '::ffff:1.'.repeat(3_500)],
  ])('handles 32 kB of %s in linear time', (_name, text) => {
    // CPU time, not wall time: the work done, which a busy machine does not stretch.
    const t = process.cpuUsage();
    redactText(text);
    const used = process.cpuUsage(t);
    expect((used.user + used.system) / 1000).toBeLessThan(250);
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

describe('metadata', () => {
  it('redacts keys at any depth, and keeps both values of two keys that redact alike', () => {
    const r = new Redactor();
    const t = turn({
      userMessage: 'hi',
      'ana@example.com': 1,
      'bo@example.com': 2,
      meta: { deep: [{ [`ghp_${'a1'.repeat(18)}`]: 'v', 'user@example.org': 'w' }] },
    });
    expect(r.turn(t)).toMatchObject({
      '[EMAIL]': 1,
      '[EMAIL]#2': 2,
      meta: { deep: [{ '[GITHUB_TOKEN]': 'v', '[EMAIL]': 'w' }] },
    });
    expect(r.summary()).toEqual({ enabled: true, total: 4, byKind: { EMAIL: 3, GITHUB_TOKEN: 1 } });
  });

  it('replaces a string under a secret name whole, not other values', () => {
    const r = new Redactor();
    const out = r.turn(
      turn({
        userMessage: 'hi',
        db: { password: 'hunter2', apiKey: 'abc', 'X-Auth-Token': 'zz9', port: 5432, user: 'svc' },
        tokenCount: '12',
        maxTokens: '100',
      }),
    ) as unknown as Record<string, unknown>;
    expect(out.db).toEqual({
      password: '[PASSWORD]',
      apiKey: '[PASSWORD]',
      'X-Auth-Token': '[PASSWORD]',
      port: 5432,
      user: 'svc',
    });
    expect(out.tokenCount).toBe('12');
    expect(out.maxTokens).toBe('100');
    expect(r.counts).toEqual({ PASSWORD: 3 });
  });

  it('keeps a __proto__ key as data, not as a prototype', () => {
    const t = JSON.parse(
      JSON.stringify(turn({ userMessage: 'hi' })).slice(0, -1) +
        ',"meta":{"__proto__":{"polluted":"ana@example.com"}}}',
    );
    const out = new Redactor().turn(t) as unknown as { meta: Record<string, unknown> };
    expect(Object.keys(out.meta)).toEqual(['__proto__']);
    expect(JSON.stringify(out)).toContain('"__proto__":{"polluted":"[EMAIL]"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('walks 100,000 levels of nesting without overflowing the stack', () => {
    let deep: unknown = 'reach ana@example.com';
    for (let i = 0; i < 100_000; i++) deep = i % 2 ? [deep] : { x: deep };
    const r = new Redactor();
    const out = r.turn(turn({ userMessage: 'hi', meta: deep })) as unknown as { meta: unknown };
    let v: unknown = out.meta;
    for (let i = 0; i < 100_000; i++) v = Array.isArray(v) ? v[0] : (v as { x: unknown }).x;
    expect(v).toBe('reach [EMAIL]');
    expect(r.counts).toEqual({ EMAIL: 1 });
  });
});

describe('the source step', () => {
  it.each([2_000, 100_000])(
    'quarantines a row with a field nested %i levels deep as too_deep, redacted, without crashing',
    (depth) => {
      const row = JSON.stringify(turn({ userMessage: 'mail ana@example.com' }));
      const line = `${row.slice(0, -1)},"meta":${'['.repeat(depth)}"bo@example.com"${']'.repeat(depth)}}`;
      const r = new Redactor();
      const parsed = parseTelemetryLine(line, 3, 32_000, r);
      expect(parsed).toMatchObject({
        quarantine: {
          line: 3,
          reason: 'too_deep',
          field: 'meta',
          detail: 'meta nests more than 64 levels of arrays/objects',
        },
      });
      const raw = (parsed as { quarantine: { raw: string } }).quarantine.raw;
      expect(raw).not.toContain('ana@example.com');
      expect(raw).toContain('[EMAIL]');
    },
  );

  it('keeps a row nested 64 levels deep', () => {
    const row = JSON.stringify(turn({ userMessage: 'hi' }));
    const line = `${row.slice(0, -1)},"meta":${'['.repeat(64)}1${']'.repeat(64)}}`;
    expect(parseTelemetryLine(line, 1, 32_000, new Redactor())).toHaveProperty('turn');
    const deeper = `${row.slice(0, -1)},"meta":${'['.repeat(65)}1${']'.repeat(65)}}`;
    expect(parseTelemetryLine(deeper, 1, 32_000)).toMatchObject({
      quarantine: { reason: 'too_deep' },
    });
  });

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
    const lines = c.map((p, i) => {
      const t = turn({ conversationId: `c${i}`, turnIndex: 1, turnCount: 1, userMessage: 'look:' });
      plant(t, p);
      return shardLine(i + 1, JSON.stringify(t));
    });
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
