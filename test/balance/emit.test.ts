import { describe, expect, it } from 'vitest';
import { rowShape, shapeRow, type AnnotatedRow } from '../../shared/contracts/rows';
import { sampleIdOf, toDatasetLine } from '../../shared/dataset/record';
import { cellBytes, DatasetLineEmitter, utf8Backslash } from '../../shared/balance/emit';
import { generateTelemetry } from '../../shared/source/generate';
import { ProfileBuilder } from '../../shared/report/profile';
import { BalanceConfigSchema } from '../../shared/contracts/config';
import { StreamingBalancer } from '../../shared/balance/balancer';

const enc = new TextEncoder();
const dec = new TextDecoder();

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

const strata = { turnBucket: 'B', complexity: 'high' };
const weight = 3.407974;
const shape = rowShape({ annotated: true, stratify: ['turnBucket', 'complexity'] });

/** The exact path: the line's text (as the loader decodes it), JSON.parse, toDatasetLine, JSON.stringify. */
function exactBytes(bytes: Uint8Array, id: string | null, dup?: string): Uint8Array {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 13) end--;
  let text = Buffer.from(bytes.subarray(0, end)).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const row = JSON.parse(text) as AnnotatedRow;
  shapeRow(row, shape);
  const line = toDatasetLine(row, {
    id: id ?? sampleIdOf(row),
    strata,
    weight,
    ...(dup !== undefined ? { duplicateOf: dup } : {}),
  });
  return enc.encode(JSON.stringify(line));
}

const cell = cellBytes(strata, weight);

/** Emits `bytes`: equal to the exact path's bytes, or declined. Returns whether it emitted. */
function check(
  em: DatasetLineEmitter,
  bytes: Uint8Array,
  id: string | null = 'the-id',
  dup?: string,
): boolean {
  const n = em.emit(bytes, 0, bytes.length, id, cell, dup);
  if (n < 0) return false;
  const want = exactBytes(bytes, id, dup);
  expect(dec.decode(em.out.subarray(0, n))).toBe(dec.decode(want));
  expect(Buffer.compare(Buffer.from(em.out.subarray(0, n)), Buffer.from(want))).toBe(0);
  return true;
}

/** Lines the exact path writes; `fast` ones the emitter must write itself. */
const LINES: { name: string; line: string; fast: boolean }[] = [
  { name: 'plain', line: j({}), fast: true },
  { name: 'escapes in the message', line: j({ userMessage: 'a"b\\c/d\n\t\r\b\f' }), fast: true },
  { name: 'escaped slash', line: `{${body.replace('"hello"', '"a\\/b"')}}`, fast: true },
  {
    name: '\\u escapes, upper and lower case',
    line: `{${body.replace('"hello"', '"\\u00e9\\u4E2D\\u0000\\u001F\\u007f"')}}`,
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
  { name: 'U+2028 and U+FFFD as they are', line: j({ userMessage: 'a\u2028b\ufffd' }), fast: true },
  { name: 'empty message', line: j({ userMessage: '' }), fast: true },
  { name: 'sampleId (the id)', line: j({ sampleId: 's-9' }), fast: true },
  {
    name: 'sampleId with escapes and unicode',
    line: j({ sampleId: 'ü\n"x"😀\u0001' }),
    fast: true,
  },
  {
    name: 'conversationId with unicode and escapes',
    line: j({ conversationId: 'kó😀\\"' }),
    fast: true,
  },
  { name: 'model with an escape', line: j({ model: 'gpt\\4\n' }), fast: true },
  { name: 'history', line: j({ history: ['a', 'b\n', 'é'] }), fast: true },
  { name: 'empty history', line: j({ history: [] }), fast: true },
  { name: 'empty tools', line: j({ tools: [] }), fast: true },
  { name: 'tools with escapes', line: j({ tools: ['a\\b', 'a\\b', '\u00e9'] }), fast: true },
  {
    name: 'tools spaced out',
    line: `{${body.replace('["read_file"]', '[ "a" ,\t"b" , "a" ]')}}`,
    fast: true,
  },
  {
    name: 'nested metadata',
    line: j({ meta: { a: [1, { b: null, c: [true, false, -0.5e-3] }], d: {} }, e: [] }),
    fast: true,
  },
  {
    name: 'nested metadata with spaces, integer keys and __proto__ inside',
    line: `{${body},"m": { "b" : 1 , "2": [ 1.0 ,2 ], "__proto__": {"x":1e2} } }`,
    fast: true,
  },
  { name: 'extra key with unicode', line: j({ ключ: 'значение', 'k\u00e9': 1 }), fast: true },
  {
    name: 'extra values of every kind',
    line: `{${body},"s":"x\\ty","t":true,"f":false,"n":null,"i":-12,"z":0,"big":123456789012345678,"f1":1.50,"e":1E2,"nz":-0,"inf":1e400,"neg":-0.0}`,
    fast: true,
  },
  { name: 'confidence', line: j({ confidence: 0.93 }), fast: true },
  { name: 'confidence as a string', line: j({ confidence: '0.93' }), fast: true },
  {
    name: 'key order reversed',
    line: JSON.stringify(Object.fromEntries(Object.entries({ ...base, x: 1 }).reverse())),
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
  {
    name: 'duration -0',
    line: `{${body.replace('"turnDurationMs":10', '"turnDurationMs":-0')}}`,
    fast: true,
  },
  {
    name: 'delta -0',
    line: `{${body.replace('"promptTokenDelta":-5', '"promptTokenDelta":-0')}}`,
    fast: true,
  },
  { name: 'label 0', line: j({ label: 0 }), fast: true },
  {
    name: 'long numbers',
    line: j({ numRequests: 123456789012, promptTokenDelta: -98765432109 }),
    fast: true,
  },
  {
    name: 'timestamp with offset',
    line: j({ timestamp: '2024-02-29T23:59:59.123456789+05:30' }),
    fast: true,
  },
  // The emitter must decline these (or write them exactly).
  { name: 'integer-like extra key', line: j({ x: 1, '7': 'seven' }), fast: false },
  { name: 'integer-like extra key 0', line: `{${body},"0":1}`, fast: false },
  { name: '__proto__ extra key', line: `{${body},"__proto__":{"a":1}}`, fast: false },
  { name: 'repeated extra key', line: `{${body},"x":1,"y":2,"x":3}`, fast: false },
  { name: 'duplicate known key', line: `{${body},"label":0}`, fast: false },
  { name: 'escaped extra key', line: `{${body},"x\\u0041":1}`, fast: false },
  {
    name: 'deep nesting',
    line: j({ deep: JSON.parse('['.repeat(50) + ']'.repeat(50)) }),
    fast: false,
  },
  {
    name: 'huge integers',
    line: j({ turnIndex: 12345678901234567890, turnCount: 1e21 }),
    fast: false,
  },
  {
    name: 'id from a number id field',
    line: JSON.stringify({ ...withoutLabel, label: 0, id: 5 }),
    fast: true,
  },
];

describe('DatasetLineEmitter writes the exact path bytes or declines', () => {
  for (const c of LINES) {
    it(`${c.fast ? 'writes' : 'writes or declines'}: ${c.name}`, () => {
      const em = new DatasetLineEmitter();
      const bytes = enc.encode(c.line);
      const wrote = check(em, bytes);
      if (c.fast) expect(wrote).toBe(true);
      // The same line as an upsampled copy (a non-ASCII id), and with its own id.
      expect(check(em, bytes, 'x-é#dup1', 'x-é')).toBe(wrote);
      expect(check(em, bytes, null)).toBe(wrote);
    });
  }

  it('declines invalid UTF-8 anywhere in the line, and a byte-order mark', () => {
    const em = new DatasetLineEmitter();
    const line = enc.encode(j({ userMessage: 'ab', note: 'cd' }));
    const bad = [[0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x80], [0xff]];
    for (const word of ['ab', 'cd']) {
      const at = Buffer.from(line).indexOf(word);
      for (const b of bad) {
        const bytes = new Uint8Array([...line.subarray(0, at), ...b, ...line.subarray(at)]);
        expect(em.emit(bytes, 0, bytes.length, 'i', cell)).toBe(-1);
      }
    }
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...line]);
    expect(em.emit(bom, 0, bom.length, 'i', cell)).toBe(-1);
  });

  it('checks UTF-8 as Buffer.isUtf8 does', async () => {
    const { isUtf8 } = await import('node:buffer');
    let s = 7;
    const rand = (n: number) => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n;
    for (let t = 0; t < 20000; t++) {
      const b = new Uint8Array(1 + rand(6));
      for (let k = 0; k < b.length; k++) b[k] = rand(4) === 0 ? rand(128) : 0x80 + rand(128);
      expect(utf8Backslash(b, 0, b.length) >= 0, [...b].join(',')).toBe(isUtf8(b));
    }
  });

  it('writes a line in the middle of a buffer', () => {
    const em = new DatasetLineEmitter();
    const a = j({ userMessage: 'first' });
    const b = j({ userMessage: 'é second', x: [1] });
    const bytes = enc.encode(`${a}\n${b}\n`);
    const s = enc.encode(a).length + 1;
    const n = em.emit(bytes, s, bytes.length - 1, 'id', cell);
    expect(dec.decode(em.out.subarray(0, n))).toBe(dec.decode(exactBytes(enc.encode(b), 'id')));
  });

  it('agrees on mutated lines: writes them exactly or declines', () => {
    let s = 12345;
    const rand = (n: number) => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n;
    const seeds = [
      j({ userMessage: 'a "q" \\ é 😀', sampleId: 'id-1', meta: { k: [1, 2.5, null] } }),
      j({ history: ['h1'], tools: ['a', 'b'], z: 1, confidence: 0.5 }),
    ];
    const alphabet = '{}[]":,\\u0123456789.eE-+ tfnrlasx\u00e9\u0001';
    const em = new DatasetLineEmitter();
    let wrote = 0;
    for (let t = 0; t < 4000; t++) {
      const chars = [...seeds[t % seeds.length]!];
      for (let e = 1 + rand(3); e > 0; e--) {
        const at = rand(chars.length);
        const op = rand(3);
        const ch = alphabet[rand(alphabet.length)]!;
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, ch);
        else chars[at] = ch;
      }
      if (check(em, enc.encode(chars.join('')), t % 2 ? null : 'id')) wrote++;
    }
    expect(wrote).toBeGreaterThan(100);
  });

  it('writes generated rows en masse exactly, and profiles them as the exact path does', () => {
    const config = BalanceConfigSchema.parse({ total: 10, stratify: ['turnBucket', 'complexity'] });
    const exactProfile = new ProfileBuilder(config);
    const fastProfile = new ProfileBuilder(config);
    const em = new DatasetLineEmitter();
    let n = 0;
    let i = 0;
    for (const turn of generateTelemetry({ seed: 5, rows: 20000, annotated: true })) {
      const extra =
        i % 3 === 0 ? { confidence: (i % 11) / 10 } : i % 3 === 1 ? { history: ['x', 'y'] } : {};
      const bytes = enc.encode(JSON.stringify({ ...turn, ...extra }));
      expect(check(em, bytes, i % 2 ? null : `id-${i}`, i % 7 === 0 ? 'src' : undefined)).toBe(
        true,
      );
      fastProfile.addSignals(em.signals);
      exactProfile.add(JSON.parse(dec.decode(exactBytes(bytes, 'x'))));
      i++;
      n++;
    }
    expect(n).toBe(20000);
    expect(fastProfile.snapshot()).toEqual(exactProfile.snapshot());
  });
});

describe('StreamingBalancer.finishRawInto', () => {
  /** A file's bytes and lines: generated rows, and rows the emitter declines or the exact path reads. */
  function input(): { bytes: Buffer; lines: string[] } {
    const lines: string[] = [];
    let i = 0;
    for (const turn of generateTelemetry({ seed: 9, rows: 3000, annotated: true })) {
      const t = turn as unknown as Record<string, unknown>;
      if (i % 50 === 1) lines.push(JSON.stringify({ ...t, '7': 'integer-like key' }));
      else if (i % 50 === 2) lines.push(JSON.stringify({ ...t, userMessage: `é\n${i}` }) + '\r');
      else if (i % 50 === 3) lines.push(JSON.stringify({ ...t, history: ['before', 'x'] }));
      else if (i % 50 === 4) lines.push(JSON.stringify({ ...t, confidence: 0.75, x: { y: [1] } }));
      else lines.push(JSON.stringify(t));
      i++;
    }
    return { bytes: Buffer.from(lines.join('\n') + '\n'), lines };
  }

  const ranges = (bytes: Buffer, rs: readonly { at: number; len: number }[]) => ({
    bytes,
    start: (k: number) => rs[k]!.at,
    end: (k: number) => rs[k]!.at + rs[k]!.len,
    text: (k: number) => {
      const r = rs[k]!;
      let end = r.at + r.len;
      if (bytes[end - 1] === 13) end--;
      return bytes.toString('utf8', r.at, end);
    },
  });

  function balancerOver(config: ReturnType<typeof BalanceConfigSchema.parse>, bytes: Buffer) {
    const b = new StreamingBalancer(config);
    let at = 0;
    let lineNo = 0;
    for (let nl = bytes.indexOf(10); nl !== -1; nl = bytes.indexOf(10, at)) {
      lineNo++;
      // Every third line the exact way (addLine), the rest through the scanner.
      const s = lineNo % 3 === 0 ? -1 : b.scanLine(bytes, at, nl);
      if (s === 1) b.addScanned(bytes, at, nl - at, null);
      else if (s < 0) b.addLine(ranges(bytes, [{ at, len: nl - at }]).text(0), lineNo, at, nl - at);
      at = nl + 1;
    }
    return b;
  }

  const configs = {
    plain: { total: 600, ratio: 0.5 },
    split: { total: 600, ratio: 0.7, validation: 0.1, test: 0.1 },
    upsample: { total: 5000, ratio: 0.5, onShortfall: 'upsample' },
  } as const;

  for (const [name, c] of Object.entries(configs)) {
    it(`writes the same bytes and profile as finishInto: ${name}`, async () => {
      const config = BalanceConfigSchema.parse({
        ...c,
        nearDedup: false,
        stratify: ['turnBucket', 'complexity'],
      });
      const { bytes } = input();
      const exact: Record<string, string[]> = { train: [], validation: [], test: [] };
      const exactProfile = new ProfileBuilder(config);
      const want = await balancerOver(config, bytes).finishInto(
        (line, split) => {
          exact[split]!.push(JSON.stringify(line));
          exactProfile.add(line);
        },
        (rs) => Promise.resolve(rs.map((_, k) => ranges(bytes, rs).text(k))),
      );
      const raw: Record<string, string[]> = { train: [], validation: [], test: [] };
      const rawProfile = new ProfileBuilder(config);
      let declined = 0;
      const got = await balancerOver(config, bytes).finishRawInto(
        {
          line: (line, split) => {
            declined++;
            raw[split]!.push(JSON.stringify(line));
            rawProfile.add(line);
          },
          raw: (b, s, e, split) => raw[split]!.push(Buffer.from(b.subarray(s, e)).toString()),
          profile: (row) => rawProfile.addSignals(row),
        },
        (rs) => ranges(bytes, rs),
      );
      expect(raw).toEqual(exact);
      expect(got.manifest).toEqual(want.manifest);
      expect(rawProfile.snapshot()).toEqual(exactProfile.snapshot());
      expect(declined).toBeGreaterThan(0); // the integer-like keys
      expect(declined).toBeLessThan(exact.train!.length / 10);
      if (name === 'upsample') expect(got.manifest.selected.upsampled).toBeGreaterThan(0);
      if (name === 'split') expect(exact.test!.length).toBeGreaterThan(0);
    });
  }
});
