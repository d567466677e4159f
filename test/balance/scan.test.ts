import { describe, expect, it } from 'vitest';
import { checkAnnotated, isIsoTimestamp, type AnnotatedRow } from '../../shared/contracts/rows';
import { sampleIdOf } from '../../shared/dataset/record';
import { hash64 } from '../../shared/util/hash';
import { isIsoTimestampBytes, RowScanner, ScannedRow } from '../../shared/balance/scan';
import { StreamingBalancer } from '../../shared/balance/balancer';
import { BalanceConfigSchema } from '../../shared/contracts/config';
import { annotatedRows } from '../support/rows';

const ID_SEED = 0x1234;
const MSG_SEED = 0x2545f491;
const MAX = 200;

const enc = new TextEncoder();
const scanner = (needs = true) =>
  new RowScanner({
    idSeed: ID_SEED,
    messageSeed: MSG_SEED,
    maxMessageChars: MAX,
    needModel: needs,
    needTools: needs,
  });

const base = {
  conversationId: 'c-1',
  turnIndex: 2,
  turnCount: 3,
  userMessage: 'hello',
  model: 'gpt-4o',
  numRequests: 1,
  turnDurationMs: 10,
  promptTokenDelta: -5,
  tools: ['read_file'],
  timestamp: '2026-10-17T14:24:02.932Z',
  label: 1,
};
const j = (extra: Record<string, unknown>) => JSON.stringify({ ...base, ...extra });
const body = JSON.stringify(base).slice(1, -1);
const withoutLabel: Record<string, unknown> = { ...base };
delete withoutLabel.label;

/**
 * Lines that JSON.parse accepts and the exact path keeps: the scanner must either
 * read them with the same values or hand them to the exact path; `fast` ones it must read.
 */
const VALID: { name: string; line: string; fast: boolean }[] = [
  { name: 'plain', line: j({}), fast: true },
  { name: 'escapes in the message', line: j({ userMessage: 'a"b\\c/d\n\t\r\b\f' }), fast: true },
  { name: 'escaped slash', line: `{${body.replace('"hello"', '"a\\/b"')}}`, fast: true },
  {
    name: '\\u escapes',
    line: `{${body.replace('"hello"', '"\\u00e9\\u4E2D\\u0000"')}}`,
    fast: true,
  },
  {
    name: 'lone surrogate escape',
    line: `{${body.replace('"hello"', '"x\\ud800y"')}}`,
    fast: true,
  },
  {
    name: 'escaped surrogate pair',
    line: `{${body.replace('"hello"', '"\\ud83d\\ude00"')}}`,
    fast: true,
  },
  { name: 'raw UTF-8: 2, 3 and 4 bytes', line: j({ userMessage: 'é — 中 😀 ok' }), fast: true },
  { name: 'odd-length non-ASCII', line: j({ userMessage: '😀' }), fast: true },
  { name: 'empty message', line: j({ userMessage: '' }), fast: true },
  { name: 'message at the limit', line: j({ userMessage: 'x'.repeat(MAX) }), fast: true },
  { name: 'non-ASCII message at the limit', line: j({ userMessage: 'é'.repeat(MAX) }), fast: true },
  { name: 'sampleId', line: j({ sampleId: 's-9' }), fast: true },
  { name: 'sampleId with escapes and unicode', line: j({ sampleId: 'ü\n"x"😀' }), fast: true },
  { name: 'conversationId with unicode', line: j({ conversationId: 'kó😀\\' }), fast: true },
  { name: 'history', line: j({ history: ['a', 'b\n'] }), fast: true },
  { name: 'empty tools', line: j({ tools: [] }), fast: true },
  {
    name: 'nested metadata',
    line: j({ meta: { a: [1, { b: null, c: [true, false, -0.5e-3] }], d: {} }, e: [] }),
    fast: true,
  },
  { name: 'extra key with unicode', line: j({ ключ: 'значение', 'k\u00e9': 1 }), fast: true },
  {
    name: 'key order reversed',
    line: JSON.stringify(Object.fromEntries(Object.entries(base).reverse())),
    fast: true,
  },
  {
    name: 'whitespace everywhere',
    line: ` \t{ ${body.replaceAll(',"', ' ,\n\t"').replaceAll('":', '" : ')} } \r`,
    fast: true,
  },
  { name: 'trailing CR', line: `${j({})}\r`, fast: true },
  { name: 'float duration', line: j({ turnDurationMs: 12.5 }), fast: true },
  {
    name: 'integer written 2.0 and 1e0',
    line: `{${body.replace('"turnIndex":2', '"turnIndex":2.0').replace('"turnCount":3', '"turnCount":3e0')}}`,
    fast: true,
  },
  { name: 'big exponent duration', line: j({ turnDurationMs: 1.5e300 }), fast: true },
  { name: 'label 0', line: j({ label: 0 }), fast: true },
  {
    name: 'zero duration and requests',
    line: j({ turnDurationMs: 0, numRequests: 0 }),
    fast: true,
  },
  {
    name: 'timestamp with offset',
    line: j({ timestamp: '2024-02-29T23:59:59.123456789+05:30' }),
    fast: true,
  },
  // Unusual: the scanner may hand these to the exact path, but must not misread them.
  { name: 'duplicate key, last wins', line: `{${body},"label":0}`, fast: false },
  { name: 'duplicate message key', line: `{${body},"userMessage":"other"}`, fast: false },
  {
    name: 'escaped known key',
    line: `{${body.replace('"userMessage"', '"user\\u004dessage"')}}`,
    fast: false,
  },
  { name: 'label -0', line: j({}).replace('"label":1', '"label":-0'), fast: false },
  { name: 'label 1.0', line: j({}).replace('"label":1', '"label":1.0'), fast: false },
  {
    name: 'BOM-free deep nesting',
    line: j({ deep: JSON.parse('['.repeat(50) + ']'.repeat(50)) }),
    fast: false,
  },
  {
    name: 'huge integer id part',
    line: j({ turnIndex: 12345678901234567890, turnCount: 1e21 }),
    fast: false,
  },
];

/** Lines the exact path sets aside: the scanner must never accept them. */
const INVALID: { name: string; line: string }[] = [
  { name: 'not JSON', line: '{"a":' },
  { name: 'trailing comma', line: `{${body},}` },
  { name: 'raw control byte in a string', line: j({}).replace('hello', 'hel\u0001lo') },
  { name: 'raw newline-free tab in a string', line: j({}).replace('hello', 'hel\tlo') },
  { name: 'bad escape', line: `{${body.replace('"hello"', '"a\\qb"')}}` },
  { name: 'short \\u escape', line: `{${body.replace('"hello"', '"a\\u12"')}}` },
  { name: 'leading zero', line: j({}).replace('"turnIndex":2', '"turnIndex":02') },
  { name: 'plus sign', line: j({}).replace('"turnIndex":2', '"turnIndex":+2') },
  { name: 'bare dot', line: j({}).replace('"turnDurationMs":10', '"turnDurationMs":10.') },
  { name: 'NaN', line: j({}).replace('"turnDurationMs":10', '"turnDurationMs":NaN') },
  {
    name: 'infinite duration',
    line: j({}).replace('"turnDurationMs":10', '"turnDurationMs":1e400'),
  },
  { name: 'fraction index', line: j({ turnIndex: 1.5 }) },
  { name: 'index above count', line: j({ turnIndex: 4 }) },
  { name: 'label 2', line: j({ label: 2 }) },
  { name: 'label as string', line: j({ label: '1' }) },
  { name: 'missing label', line: JSON.stringify({ ...base, label: undefined }) },
  { name: 'empty model', line: j({ model: '' }) },
  { name: 'empty conversationId', line: j({ conversationId: '' }) },
  { name: 'empty sampleId', line: j({ sampleId: '' }) },
  { name: 'null sampleId', line: j({ sampleId: null }) },
  { name: 'tools not strings', line: j({ tools: ['a', 1] }) },
  { name: 'history not an array', line: j({ history: 'x' }) },
  { name: 'bad timestamp', line: j({ timestamp: '2026-02-30T00:00:00Z' }) },
  { name: 'message over the limit', line: j({ userMessage: 'x'.repeat(MAX + 1) }) },
  { name: 'non-ASCII message over the limit', line: j({ userMessage: '😀'.repeat(MAX / 2 + 1) }) },
  { name: 'negative requests', line: j({ numRequests: -1 }) },
  { name: 'an array', line: '[1,2]' },
  { name: 'a string', line: '"x"' },
  { name: 'two objects', line: `${j({})} {}` },
  { name: 'unterminated string', line: '{"conversationId":"abc' },
  { name: 'true misspelt', line: j({}).replace('}', ',"x":tru}') },
  { name: 'too deep', line: j({ deep: JSON.parse('['.repeat(70) + ']'.repeat(70)) }) },
];

/** The exact path: JSON.parse and checkAnnotated; null when it sets the line aside. */
function exact(line: string): AnnotatedRow | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  return checkAnnotated(v, MAX) ? null : (v as AnnotatedRow);
}

/** Asserts that what the scanner read agrees with the exact path. */
function agrees(sc: RowScanner, bytes: Uint8Array, r: ScannedRow, row: AnnotatedRow): void {
  expect(r.label).toBe(row.label);
  expect(r.turnIndex).toBe(row.turnIndex);
  expect(r.turnCount).toBe(row.turnCount);
  expect(r.numRequests).toBe(row.numRequests);
  expect(r.turnDurationMs).toBe(row.turnDurationMs);
  expect(r.promptTokenDelta).toBe(row.promptTokenDelta);
  expect(r.model).toBe(row.model);
  expect(r.tools).toEqual(row.tools);
  expect(sc.idOf(bytes, r)).toBe(sampleIdOf(row));
  expect([r.idHi, r.idLo]).toEqual(hash64(sampleIdOf(row), ID_SEED));
  expect([r.msgHi, r.msgLo]).toEqual(hash64(row.userMessage, MSG_SEED));
}

describe('RowScanner agrees with JSON.parse', () => {
  for (const c of VALID) {
    it(`${c.fast ? 'reads' : 'reads or hands over'}: ${c.name}`, () => {
      const row = exact(c.line);
      expect(row, 'the table line is valid').not.toBeNull();
      const sc = scanner();
      const r = new ScannedRow();
      const bytes = enc.encode(c.line);
      const got = sc.scan(bytes, 0, bytes.length, r);
      if (c.fast) expect(got).toBe(1);
      if (got === 1) agrees(sc, bytes, r, row!);
      else expect(got).toBe(-1);
    });
  }

  for (const c of INVALID) {
    it(`hands over: ${c.name}`, () => {
      expect(exact(c.line), 'the exact path sets it aside').toBeNull();
      const bytes = enc.encode(c.line);
      expect(scanner().scan(bytes, 0, bytes.length, new ScannedRow())).toBe(-1);
    });
  }

  it('hands over invalid UTF-8 in a string it reads, and a byte-order mark', () => {
    const line = enc.encode(j({ userMessage: 'ab' }));
    const at = Buffer.from(line).indexOf('ab');
    for (const bad of [[0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x80]]) {
      const bytes = new Uint8Array([...line.subarray(0, at), ...bad, ...line.subarray(at)]);
      expect(scanner().scan(bytes, 0, bytes.length, new ScannedRow())).toBe(-1);
    }
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...line]);
    expect(scanner().scan(bom, 0, bom.length, new ScannedRow())).toBe(-1);
  });

  it('reports a blank line (JSON whitespace only) as blank', () => {
    for (const line of ['', ' ', '\t \r']) {
      const bytes = enc.encode(line);
      expect(scanner().scan(bytes, 0, bytes.length, new ScannedRow())).toBe(0);
    }
  });

  it('reads a line in the middle of a buffer, ending at its newline', () => {
    const text = `${j({ userMessage: 'first' })}\n${j({ userMessage: 'é second' })}\n`;
    const bytes = enc.encode(text);
    const nl = bytes.indexOf(10);
    const sc = scanner();
    const r = new ScannedRow();
    expect(sc.scan(bytes, nl + 1, bytes.length - 1, r)).toBe(1);
    agrees(sc, bytes, r, exact(text.split('\n')[1]!)!);
  });

  it('keeps agreeing when the key layout changes from row to row (the learned template)', () => {
    const sc = scanner();
    const r = new ScannedRow();
    const lines = [
      j({}),
      JSON.stringify({ label: 0, ...withoutLabel, extra: 1 }),
      j({ sampleId: 'z' }),
      `{${body},"x":{"label":5}}`,
      j({}),
    ];
    for (const line of lines) {
      const bytes = enc.encode(line);
      expect(sc.scan(bytes, 0, bytes.length, r)).toBe(1);
      agrees(sc, bytes, r, exact(line)!);
    }
  });

  it('keeps its learned template when the reader overwrites its buffer (Buffer.slice is a view)', () => {
    const sc = scanner();
    const r = new ScannedRow();
    const buf = Buffer.alloc(1024);
    for (const line of [j({}), JSON.stringify({ label: 0, ...withoutLabel }), j({})]) {
      buf.fill(0x20);
      const n = buf.write(line);
      expect(sc.scan(buf, 0, n, r)).toBe(1);
      agrees(sc, buf, r, exact(line)!);
    }
  });

  it('never accepts a mutated line the exact path rejects, and agrees on the ones it accepts', () => {
    let s = 12345;
    const rand = (n: number) => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n;
    const seeds = [
      j({ userMessage: 'a "q" \\ é 😀', sampleId: 'id-1', meta: { k: [1, 2.5, null] } }),
      j({ history: ['h1'], tools: ['a', 'b'] }),
    ];
    const alphabet = '{}[]":,\\u0123456789.eE-+ tfnrlasx\u00e9\u0001';
    let accepted = 0;
    for (let t = 0; t < 4000; t++) {
      const src = seeds[t % seeds.length]!;
      const chars = [...src];
      const edits = 1 + rand(3);
      for (let e = 0; e < edits; e++) {
        const at = rand(chars.length);
        const op = rand(3);
        const ch = alphabet[rand(alphabet.length)]!;
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, ch);
        else chars[at] = ch;
      }
      const line = chars.join('');
      const bytes = enc.encode(line);
      const sc = scanner();
      const r = new ScannedRow();
      const got = sc.scan(bytes, 0, bytes.length, r);
      const row = exact(line);
      if (got === 1) {
        expect(row, line).not.toBeNull();
        agrees(sc, bytes, r, row!);
        accepted++;
      } else if (got === 0) {
        expect(line.trim()).toBe('');
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('checks timestamps exactly as isIsoTimestamp does', () => {
    const cases = [
      '2026-10-17T14:24:02.932Z',
      '2026-10-17T14:24Z',
      '2026-10-17T14:24:02+0530',
      '2026-10-17T14:24:02-05:30',
      '2026-10-17T14:24:02.1234567891Z',
      '2026-10-17T14:24:02.Z',
      '2026-13-17T14:24:02Z',
      '2023-02-29T00:00:00Z',
      '2024-02-29T00:00:00Z',
      '2026-10-17 14:24:02Z',
      '2026-10-17T24:00:00Z',
      '2026-10-17T14:60:00Z',
      '2026-10-17T14:24:60Z',
      '2026-10-17T14:24:02+24:00',
      '2026-10-17T14:24:02',
      '2026-10-17T14:24:02Zx',
      '2026-10-17T14:24:02+05:3',
      '',
    ];
    for (const t of cases) {
      const b = enc.encode(t);
      expect(isIsoTimestampBytes(b, 0, b.length), t).toBe(isIsoTimestamp(t));
    }
  });
});

describe('StreamingBalancer through the scanner', () => {
  it('gives the same dataset and manifest as the exact path, tricky lines included', () => {
    const rows = annotatedRows({ conversations: 800, seed: 5 });
    const lines = rows.map((r) => JSON.stringify(r));
    // Some of every kind: escapes, unicode, a duplicate key, invalid lines, blank lines.
    lines.splice(10, 0, ...VALID.map((c) => c.line), ...INVALID.map((c) => c.line), '', '  ');
    lines.push(lines[3]!); // a repeated sampleId
    const config = BalanceConfigSchema.parse({
      total: 600,
      ratio: 0.5,
      maxMessageChars: MAX * 10,
      stratify: ['turnBucket', 'complexity', 'modelFamily'],
      onShortfall: 'shrink',
    });
    const viaText = new StreamingBalancer(config);
    const viaBytes = new StreamingBalancer(config);
    const qText: unknown[] = [];
    const qBytes: unknown[] = [];
    const dec = new TextDecoder();
    let fast = 0;
    lines.forEach((line, i) => {
      const q = viaText.addLine(line, i + 1);
      if (q) qText.push(q);
      const bytes = enc.encode(line);
      const s = viaBytes.scanLine(bytes, 0, bytes.length);
      if (s === 0) return;
      if (s < 0) {
        const q2 = viaBytes.addLine(dec.decode(bytes), i + 1);
        if (q2) qBytes.push(q2);
        return;
      }
      fast++;
      if (viaBytes.addScanned(bytes, -1, 0, line))
        qBytes.push(viaBytes.duplicateRecord(line, i + 1));
    });
    expect(fast).toBeGreaterThan(rows.length * 0.9);
    expect(qBytes).toEqual(qText);
    const a = viaText.finish();
    const b = viaBytes.finish();
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });
});
