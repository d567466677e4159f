/**
 * A fast path for `balance`: reads what a row needs straight from its UTF-8 bytes,
 * without decoding the line or building its object. One pass checks the line's JSON
 * syntax, finds the fields the balancer uses (label, the id's parts, the strata
 * signals, the user message) and checks them as {@link checkAnnotated} would; the
 * hashes of the id and of the message are taken over the UTF-16 code units that
 * JSON.parse would give, decoded on the fly.
 *
 * The scanner accepts only rows it is sure of: anything unusual (an escaped key, a
 * repeated field, a number that is not a plain integer where a value is needed,
 * invalid UTF-8 in a string it reads, deep nesting, a byte-order mark, any invalid
 * JSON or any field that fails validation) makes it return false, and the caller
 * takes the exact path (decode, JSON.parse, checkAnnotated). So a row it accepts is
 * one the exact path would accept with the same values; test/balance/scan.test.ts holds
 * it to JSON.parse on a table of tricky lines.
 */
import { daysIn, TURN_FIELDS } from '../contracts/rows';

/** Nesting (objects and arrays inside the row) beyond which the scanner gives up. */
const MAX_FAST_DEPTH = 32;

// Known fields: a bit each, to catch a repeated one (JSON.parse keeps the last: we give up).
export const F_CONV = 1;
export const F_TI = 2;
export const F_TC = 4;
export const F_MSG = 8;
export const F_MODEL = 16;
export const F_NREQ = 32;
export const F_DUR = 64;
export const F_PTD = 128;
export const F_TOOLS = 256;
export const F_TS = 512;
export const F_LABEL = 1024;
export const F_SID = 2048;
export const F_HIST = 4096;
/** The known fields' names, bit i of a field mask naming FIELD_NAMES[i]. */
const FIELD_NAMES = [...TURN_FIELDS, 'label', 'sampleId', 'history'];
const REQUIRED =
  F_CONV | F_TI | F_TC | F_MSG | F_MODEL | F_NREQ | F_DUR | F_PTD | F_TOOLS | F_TS | F_LABEL;

/** Decodes bytes [start, end) of a buffer as UTF-8 (the adapter passes Buffer's own). */
export type SpanDecoder = (bytes: Uint8Array, start: number, end: number) => string;

const utf8 = new TextDecoder();
const defaultDecoder: SpanDecoder = (b, s, e) => utf8.decode(b.subarray(s, e));

/** What the scanner read from an accepted row (one object, reused from row to row). */
export class ScannedRow {
  label: 0 | 1 = 0;
  turnIndex = 0;
  turnCount = 0;
  numRequests = 0;
  turnDurationMs = 0;
  promptTokenDelta = 0;
  /** Decoded only when the strata need it (modelFamily), else "". */
  model = '';
  /** Decoded only when the strata need them (complexity), else empty. */
  tools: string[] = [];
  /** hash64(sampleId, idSeed): of the row's sampleId, or of conversationId:turnIndex. */
  idHi = 0;
  idLo = 0;
  /** hash64(userMessage, messageSeed), when the scanner was asked for it. */
  msgHi = 0;
  msgLo = 0;
  /** Spans (inside the quotes) of the sampleId (or -1) and conversationId strings. */
  sidStart = -1;
  sidEnd = -1;
  convStart = 0;
  convEnd = 0;
  /** Whether those strings hold an escape (then they decode through JSON.parse). */
  sidEsc = false;
  convEsc = false;
}

/**
 * Where each field of the last scanned row is (when a scanner records them, see
 * {@link RowScanner.fieldSpans}): field j's bit (0 for an extra field), its key's
 * opening quote, and its value's bytes [valueStart, valueEnd), in the row's order.
 */
export class FieldSpans {
  n = 0;
  readonly bit: number[] = [];
  readonly keyAt: number[] = [];
  readonly valueStart: number[] = [];
  readonly valueEnd: number[] = [];

  push(bit: number, keyAt: number, valueStart: number, valueEnd: number): void {
    const j = this.n++;
    this.bit[j] = bit;
    this.keyAt[j] = keyAt;
    this.valueStart[j] = valueStart;
    this.valueEnd[j] = valueEnd;
  }
}

/** A cyrb53-style hash over UTF-16 code units fed one at a time: {@link hash64}, exactly. */
class UnitHasher {
  h1 = 0;
  h2 = 0;
  n = 0;
  pend = -1;
  reset(seed: number): void {
    this.h1 = 0xdeadbeef ^ seed;
    this.h2 = 0x41c6ce57 ^ seed;
    this.n = 0;
    this.pend = -1;
  }
  unit(u: number): void {
    this.n++;
    if (this.pend < 0) {
      this.pend = u;
      return;
    }
    const w = this.pend | (u << 16);
    this.pend = -1;
    this.h1 = Math.imul(this.h1 ^ w, 2654435761);
    this.h2 = Math.imul(this.h2 ^ w, 1597334677);
  }
  /** Finishes; the two lanes are then in h1 and h2 (unsigned). */
  finish(): void {
    let h1 = this.h1;
    let h2 = this.h2;
    if (this.pend >= 0) {
      h1 = Math.imul(h1 ^ this.pend, 2654435761);
      h2 = Math.imul(h2 ^ this.pend, 1597334677);
    }
    const n = this.n;
    h1 ^= n;
    h2 ^= n;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.h1 = h1 >>> 0;
    this.h2 = h2 >>> 0;
  }

  /**
   * Feeds the code units of the JSON string whose contents are bytes [s, e) (no
   * quotes): UTF-8 decoded strictly, escapes resolved. False on anything invalid.
   */
  span(b: Uint8Array, s: number, e: number): boolean {
    let i = s;
    if (this.pend < 0) {
      // Plain ASCII two units a step, as hash64 takes them.
      let h1 = this.h1;
      let h2 = this.h2;
      while (i + 1 < e) {
        const c0 = b[i]!;
        const c1 = b[i + 1]!;
        if (STR[c0] !== 0 || STR[c1] !== 0) break;
        const w = c0 | (c1 << 16);
        h1 = Math.imul(h1 ^ w, 2654435761);
        h2 = Math.imul(h2 ^ w, 1597334677);
        i += 2;
      }
      this.h1 = h1;
      this.h2 = h2;
      this.n += i - s;
    }
    while (i < e) {
      const c = b[i]!;
      if (c < 0x80) {
        if (c === 0x5c) {
          const x = b[i + 1]!;
          let u: number;
          if (x === 0x6e) u = 10;
          else if (x === 0x22 || x === 0x5c || x === 0x2f) u = x;
          else if (x === 0x74) u = 9;
          else if (x === 0x72) u = 13;
          else if (x === 0x62) u = 8;
          else if (x === 0x66) u = 12;
          else if (x === 0x75) {
            u = 0;
            for (let k = i + 2; k < i + 6; k++) {
              const h = hexValue(b[k]!);
              if (h < 0) return false;
              u = (u << 4) | h;
            }
            i += 4;
          } else return false;
          this.unit(u);
          i += 2;
          continue;
        }
        this.unit(c);
        i++;
        continue;
      }
      // Multi-byte UTF-8, strictly (no overlongs, surrogates or values past U+10FFFF).
      if (c >= 0xc2 && c <= 0xdf) {
        const c1 = b[i + 1]!;
        if (i + 1 >= e || (c1 & 0xc0) !== 0x80) return false;
        this.unit(((c & 0x1f) << 6) | (c1 & 0x3f));
        i += 2;
      } else if (c >= 0xe0 && c <= 0xef) {
        if (i + 2 >= e) return false;
        const c1 = b[i + 1]!;
        const c2 = b[i + 2]!;
        const lo = c === 0xe0 ? 0xa0 : 0x80;
        const hi = c === 0xed ? 0x9f : 0xbf;
        if (c1 < lo || c1 > hi || (c2 & 0xc0) !== 0x80) return false;
        this.unit(((c & 0x0f) << 12) | ((c1 & 0x3f) << 6) | (c2 & 0x3f));
        i += 3;
      } else if (c >= 0xf0 && c <= 0xf4) {
        if (i + 3 >= e) return false;
        const c1 = b[i + 1]!;
        const c2 = b[i + 2]!;
        const c3 = b[i + 3]!;
        const lo = c === 0xf0 ? 0x90 : 0x80;
        const hi = c === 0xf4 ? 0x8f : 0xbf;
        if (c1 < lo || c1 > hi || (c2 & 0xc0) !== 0x80 || (c3 & 0xc0) !== 0x80) return false;
        const cp =
          (((c & 0x07) << 18) | ((c1 & 0x3f) << 12) | ((c2 & 0x3f) << 6) | (c3 & 0x3f)) - 0x10000;
        this.unit(0xd800 + (cp >> 10));
        this.unit(0xdc00 + (cp & 0x3ff));
        i += 4;
      } else return false;
    }
    return true;
  }
}

/**
 * Byte classes inside a JSON string: 0 plain ASCII, 1 the closing quote, 2 a
 * backslash, 3 a control byte (invalid there; also the newline after a line), 4 a
 * byte of a multi-byte UTF-8 character.
 */
const STR = new Uint8Array(256);
for (let c = 0; c < 256; c++)
  STR[c] = c < 0x20 ? 3 : c === 0x22 ? 1 : c === 0x5c ? 2 : c >= 0x80 ? 4 : 0;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** Whether bytes [s, e) spell the ASCII `name`. */
function keyIs(b: Uint8Array, s: number, e: number, name: string): boolean {
  if (e - s !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (b[s + k] !== name.charCodeAt(k)) return false;
  return true;
}

/** {@link isIsoTimestamp} over bytes [s, e) of ASCII (the same rules, byte for byte). */
function digits(b: Uint8Array, i: number, n: number, e: number): number {
  let v = 0;
  for (let j = i; j < i + n; j++) {
    if (j >= e) return -1;
    const c = b[j]! - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

export function isIsoTimestampBytes(b: Uint8Array, s: number, e: number): boolean {
  const len = e - s;
  if (len < 17 || b[s + 4] !== 45 || b[s + 7] !== 45 || b[s + 10] !== 84) return false;
  const y = digits(b, s, 4, e);
  const mo = digits(b, s + 5, 2, e);
  const d = digits(b, s + 8, 2, e);
  const h = digits(b, s + 11, 2, e);
  const mi = digits(b, s + 14, 2, e);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h < 0 || h > 23 || mi < 0)
    return false;
  if (mi > 59 || b[s + 13] !== 58) return false;
  let i = s + 16;
  if (i < e && b[i] === 58) {
    const sec = digits(b, i + 1, 2, e);
    if (sec < 0 || sec > 59) return false;
    i += 3;
    if (i < e && b[i] === 46) {
      let n = 0;
      i++;
      while (n < 10 && digits(b, i, 1, e) >= 0) {
        i++;
        n++;
      }
      if (n < 1 || n > 9) return false;
    }
  }
  if (i === e - 1 && b[i] === 90) return true; // Z
  if (i >= e) return false;
  const sign = b[i];
  if (sign !== 43 && sign !== 45) return false;
  const oh = digits(b, i + 1, 2, e);
  const colon = i + 3 < e && b[i + 3] === 58 ? 1 : 0;
  const om = digits(b, i + 3 + colon, 2, e);
  return oh >= 0 && oh <= 23 && om >= 0 && om <= 59 && i + 5 + colon === e;
}

export interface ScanOptions {
  /** Seed of the id hash (the balancer's seed key). */
  idSeed: number;
  /** Seed of the message hash, or null to skip it (no deduplication). */
  messageSeed: number | null;
  maxMessageChars: number;
  /** Decode `model` (modelFamily strata). */
  needModel: boolean;
  /** Decode `tools` (complexity strata). */
  needTools: boolean;
  /** Hash the id (default on): off, idHi and idLo are left as they were. */
  hashId?: boolean;
  decode?: SpanDecoder;
}

/**
 * Reads one JSONL line's bytes [start, end) into `out`. Returns 1 when the row is
 * valid and `out` holds what it needs, 0 for a blank line (only JSON whitespace),
 * and -1 when the caller must take the exact path.
 */
export class RowScanner {
  private readonly hasher = new UnitHasher();
  private readonly decode: SpanDecoder;
  /** Container kinds of the nesting being skipped (1 object, 2 array). */
  private readonly stack = new Uint8Array(MAX_FAST_DEPTH + 1);
  /** Where the last scanned value ended, and its string's flags. */
  private pos = 0;
  private esc = false;
  private ascii = true;
  private num = 0;

  /** When set, {@link scan} records where every field is (off on the hot path of the scan). */
  fieldSpans: FieldSpans | null = null;

  constructor(private readonly opts: ScanOptions) {
    this.decode = opts.decode ?? defaultDecoder;
  }

  /** The row's id as a string (sampleId, or conversationId:turnIndex). */
  idOf(b: Uint8Array, r: ScannedRow): string {
    if (r.sidStart >= 0) return this.text(b, r.sidStart, r.sidEnd, r.sidEsc);
    return `${this.text(b, r.convStart, r.convEnd, r.convEsc)}:${r.turnIndex}`;
  }

  private text(b: Uint8Array, s: number, e: number, esc: boolean): string {
    const t = this.decode(b, s, e);
    return esc ? (JSON.parse(`"${t}"`) as string) : t;
  }

  /** Skips a string starting at its opening quote `i`; sets pos past the closing quote. */
  private string(b: Uint8Array, i: number, end: number): boolean {
    let esc = false;
    let ascii = true;
    i++;
    for (;;) {
      // The byte at `end` is a newline (class 3) or past the buffer (undefined): both stop.
      const t = STR[b[i]!];
      if (t === 0) {
        i++;
        continue;
      }
      if (i >= end) return false;
      if (t === 1) break;
      if (t === 4) {
        ascii = false;
        i++;
        continue;
      }
      if (t !== 2) return false;
      esc = true;
      const x = b[i + 1];
      if (x === 0x75) {
        if (i + 5 >= end) return false;
        for (let k = i + 2; k < i + 6; k++) if (hexValue(b[k]!) < 0) return false;
        i += 6;
        continue;
      }
      if (
        x !== 0x22 &&
        x !== 0x5c &&
        x !== 0x2f &&
        x !== 0x62 &&
        x !== 0x66 &&
        x !== 0x6e &&
        x !== 0x72 &&
        x !== 0x74
      )
        return false;
      i += 2;
    }
    this.pos = i + 1;
    this.esc = esc;
    this.ascii = ascii;
    return true;
  }

  /**
   * The user message at its opening quote `i`, plain ASCII, hashed in the same pass
   * (two units a step, as hash64). False when it is not plain ASCII: then the general
   * path reads it.
   */
  private asciiMessage(b: Uint8Array, i: number, seed: number): boolean {
    const s = ++i;
    let h1 = 0xdeadbeef ^ seed;
    let h2 = 0x41c6ce57 ^ seed;
    for (;;) {
      const c0 = b[i]!;
      if (STR[c0] !== 0) break;
      const c1 = b[i + 1]!;
      if (STR[c1] !== 0) {
        if (c1 !== 0x22) return false;
        h1 = Math.imul(h1 ^ c0, 2654435761);
        h2 = Math.imul(h2 ^ c0, 1597334677);
        i++;
        break;
      }
      const w = c0 | (c1 << 16);
      h1 = Math.imul(h1 ^ w, 2654435761);
      h2 = Math.imul(h2 ^ w, 1597334677);
      i += 2;
    }
    if (b[i] !== 0x22) return false;
    const n = i - s;
    h1 ^= n;
    h2 ^= n;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.h1 = h1 >>> 0;
    this.h2 = h2 >>> 0;
    this.pos = i + 1;
    return true;
  }
  private h1 = 0;
  private h2 = 0;

  /**
   * Reads a number at `i` (JSON grammar) into `num`; sets pos after it. Returns 1 for
   * a plain integer (optional minus, at most 15 digits), 2 for any other valid number,
   * 0 for invalid.
   */
  private number(b: Uint8Array, i: number, end: number): number {
    const start = i;
    let neg = false;
    if (b[i] === 0x2d) {
      neg = true;
      i++;
    }
    const first = i;
    let c = b[i]!;
    if (i >= end || c < 0x30 || c > 0x39) return 0;
    let v = 0;
    if (c === 0x30) i++;
    else {
      while (i < end && (c = b[i]!) >= 0x30 && c <= 0x39) {
        v = v * 10 + (c - 0x30);
        i++;
      }
    }
    const intDigits = i - first;
    let plain = intDigits <= 15;
    if (i < end && b[i] === 0x2e) {
      plain = false;
      i++;
      const d0 = i;
      while (i < end && (c = b[i]!) >= 0x30 && c <= 0x39) i++;
      if (i === d0) return 0;
    }
    if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
      plain = false;
      i++;
      if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
      const d0 = i;
      while (i < end && (c = b[i]!) >= 0x30 && c <= 0x39) i++;
      if (i === d0) return 0;
    }
    this.pos = i;
    if (!plain) {
      // JSON.parse and Number() both round the decimal to the nearest double.
      this.num = Number(this.decode(b, start, i));
      return 2;
    }
    this.num = neg ? -v : v;
    return 1;
  }

  /** A number that is a finite integer (as checkInt wants), read into `num`. */
  private int(b: Uint8Array, i: number, end: number): boolean {
    const k = this.number(b, i, end);
    return k === 1 || (k === 2 && Number.isInteger(this.num));
  }

  private literal(b: Uint8Array, i: number, end: number, word: string): boolean {
    if (i + word.length > end) return false;
    for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return false;
    this.pos = i + word.length;
    return true;
  }

  /** Skips any value at `i` (nesting up to MAX_FAST_DEPTH); sets pos after it. */
  private value(b: Uint8Array, i: number, end: number): boolean {
    let depth = 0;
    const stack = this.stack;
    for (;;) {
      // A value starts at i.
      const c = b[i];
      if (c === 0x22) {
        if (!this.string(b, i, end)) return false;
      } else if (c === 0x7b || c === 0x5b) {
        if (++depth > MAX_FAST_DEPTH) return false;
        stack[depth] = c === 0x7b ? 1 : 2;
        i++;
        while (i < end && isWs(b[i]!)) i++;
        if (b[i] === (c === 0x7b ? 0x7d : 0x5d)) {
          depth--;
          this.pos = i + 1;
        } else {
          if (c === 0x7b) {
            if (b[i] !== 0x22 || !this.string(b, i, end)) return false;
            i = this.pos;
            while (i < end && isWs(b[i]!)) i++;
            if (b[i] !== 0x3a) return false;
            i++;
          }
          while (i < end && isWs(b[i]!)) i++;
          continue;
        }
      } else if (c === 0x74) {
        if (!this.literal(b, i, end, 'true')) return false;
      } else if (c === 0x66) {
        if (!this.literal(b, i, end, 'false')) return false;
      } else if (c === 0x6e) {
        if (!this.literal(b, i, end, 'null')) return false;
      } else if (this.number(b, i, end) === 0) return false;
      // After a value: close containers or move to the next member.
      i = this.pos;
      for (;;) {
        if (depth === 0) {
          this.pos = i;
          return true;
        }
        while (i < end && isWs(b[i]!)) i++;
        const d = b[i];
        if (d === 0x2c) {
          i++;
          while (i < end && isWs(b[i]!)) i++;
          if (stack[depth] === 1) {
            if (b[i] !== 0x22 || !this.string(b, i, end)) return false;
            i = this.pos;
            while (i < end && isWs(b[i]!)) i++;
            if (b[i] !== 0x3a) return false;
            i++;
            while (i < end && isWs(b[i]!)) i++;
          }
          break;
        }
        if (d === (stack[depth] === 1 ? 0x7d : 0x5d)) {
          depth--;
          i++;
          continue;
        }
        return false;
      }
    }
  }

  /**
   * An array of strings at `i`; sets pos after it. With `into`, the strings are
   * decoded into it. False when it is not an array of strings (or is unusual).
   */
  private stringArray(b: Uint8Array, i: number, end: number, into: string[] | null): boolean {
    if (b[i] !== 0x5b) return false;
    i++;
    while (i < end && isWs(b[i]!)) i++;
    if (b[i] === 0x5d) {
      this.pos = i + 1;
      return true;
    }
    for (;;) {
      if (b[i] !== 0x22 || !this.string(b, i, end)) return false;
      if (into !== null) into.push(this.text(b, i + 1, this.pos - 1, this.esc));
      i = this.pos;
      while (i < end && isWs(b[i]!)) i++;
      if (b[i] === 0x5d) {
        this.pos = i + 1;
        return true;
      }
      if (b[i] !== 0x2c) return false;
      i++;
      while (i < end && isWs(b[i]!)) i++;
    }
  }

  /**
   * The keys of the last row, in order, as the bytes `"key":` with their field bits
   * (0 for an extra field): rows of a file mostly share one layout, so a key is
   * recognised by one comparison with the key at the same place in the row before.
   */
  private readonly tmplKeys: Uint8Array[] = [];
  private readonly tmplBits: number[] = [];
  private tmplLen = 0;

  /** The field bit of a known key (bytes [ks, ke) of plain ASCII), 0 for an extra field. */
  private static fieldOf(b: Uint8Array, ks: number, ke: number): number {
    for (let f = 0; f < FIELD_NAMES.length; f++) {
      if (keyIs(b, ks, ke, FIELD_NAMES[f]!)) return 1 << f;
    }
    return 0;
  }

  scan(b: Uint8Array, start: number, end: number, r: ScannedRow): -1 | 0 | 1 {
    let i = start;
    while (i < end && isWs(b[i]!)) i++;
    if (i === end) return 0;
    if (b[i] !== 0x7b) return -1;
    i++;
    while (i < end && isWs(b[i]!)) i++;
    let seen = 0;
    let msgStart = 0;
    let msgEnd = 0;
    let msgAscii = true;
    let msgEsc = false;
    let msgHashed = false;
    const o = this.opts;
    r.sidStart = -1;
    if (o.needTools) r.tools = [];
    const keys = this.tmplKeys;
    const bits = this.tmplBits;
    const spans = this.fieldSpans;
    if (spans !== null) spans.n = 0;
    let field = 0;
    if (b[i] !== 0x7d) {
      for (; ; field++) {
        const keyAt = i;
        let bit = -1;
        if (field < this.tmplLen) {
          const k = keys[field]!;
          const n = k.length;
          let j = 0;
          while (j < n && b[i + j] === k[j]) j++;
          if (j === n) {
            bit = bits[field]!;
            i += n;
          }
        }
        if (bit < 0) {
          if (b[i] !== 0x22 || !this.string(b, i, end) || this.esc) return -1;
          const ks = i + 1;
          const ke = this.pos - 1;
          bit = this.ascii ? RowScanner.fieldOf(b, ks, ke) : 0;
          i = this.pos;
          if (b[i] === 0x3a && this.ascii && field < 64) {
            // Learn the layout from here on.
            // A copy: Buffer's own slice() is a view, and the reader reuses its buffer.
            keys[field] = Uint8Array.prototype.slice.call(b, ks - 1, i + 1);
            bits[field] = bit;
            this.tmplLen = field + 1;
          }
          while (i < end && isWs(b[i]!)) i++;
          if (b[i] !== 0x3a) return -1;
          i++;
        }
        while (i < end && isWs(b[i]!)) i++;
        const c = b[i];
        switch (bit) {
          case 0:
            if (c === 0x22 ? !this.string(b, i, end) : !this.value(b, i, end)) return -1;
            break;
          case F_LABEL:
            if (this.number(b, i, end) !== 1 || (this.num !== 0 && this.num !== 1)) return -1;
            if (this.num === 0 && b[i] === 0x2d) return -1; // -0: JSON.parse gives -0, not 0
            r.label = this.num;
            break;
          case F_MODEL:
            if (c !== 0x22 || !this.string(b, i, end) || this.pos - i < 3) return -1;
            if (o.needModel) r.model = this.text(b, i + 1, this.pos - 1, this.esc);
            break;
          case F_TOOLS:
            if (!this.stringArray(b, i, end, o.needTools ? r.tools : null)) return -1;
            break;
          case F_HIST:
            if (!this.stringArray(b, i, end, null)) return -1;
            break;
          case F_SID:
            if (c !== 0x22 || !this.string(b, i, end) || this.pos - i < 3) return -1;
            r.sidStart = i + 1;
            r.sidEnd = this.pos - 1;
            r.sidEsc = this.esc;
            break;
          case F_TI:
            if (!this.int(b, i, end) || this.num < 1) return -1;
            r.turnIndex = this.num;
            break;
          case F_TC:
            if (!this.int(b, i, end) || this.num < 1) return -1;
            r.turnCount = this.num;
            break;
          case F_TS:
            if (c !== 0x22 || !this.string(b, i, end) || this.esc || !this.ascii) return -1;
            if (!isIsoTimestampBytes(b, i + 1, this.pos - 1)) return -1;
            break;
          case F_MSG:
            if (c !== 0x22) return -1;
            if (o.messageSeed !== null && this.asciiMessage(b, i, o.messageSeed)) {
              msgHashed = true;
              msgStart = i + 1;
              msgEnd = this.pos - 1;
            } else {
              if (!this.string(b, i, end)) return -1;
              msgHashed = false;
              msgStart = i + 1;
              msgEnd = this.pos - 1;
              msgAscii = this.ascii;
              msgEsc = this.esc;
            }
            break;
          case F_NREQ:
            if (!this.int(b, i, end) || this.num < 0) return -1;
            r.numRequests = this.num;
            break;
          case F_CONV:
            if (c !== 0x22 || !this.string(b, i, end) || this.pos - i < 3) return -1;
            r.convStart = i + 1;
            r.convEnd = this.pos - 1;
            r.convEsc = this.esc;
            break;
          case F_DUR:
            if (this.number(b, i, end) === 0 || !Number.isFinite(this.num) || this.num < 0)
              return -1;
            r.turnDurationMs = this.num;
            break;
          case F_PTD:
            if (!this.int(b, i, end)) return -1;
            r.promptTokenDelta = this.num;
            break;
        }
        if (bit !== 0) {
          if (seen & bit) return -1;
          seen |= bit;
        }
        if (spans !== null) spans.push(bit, keyAt, i, this.pos);
        i = this.pos;
        while (i < end && isWs(b[i]!)) i++;
        if (b[i] === 0x2c) {
          i++;
          while (i < end && isWs(b[i]!)) i++;
          continue;
        }
        if (b[i] === 0x7d) break;
        return -1;
      }
    }
    i++;
    while (i < end && isWs(b[i]!)) i++;
    if (i !== end) return -1;
    if ((seen & REQUIRED) !== REQUIRED) return -1;
    if (r.turnIndex > r.turnCount) return -1;
    const h = this.hasher;
    // The message: its length in UTF-16 units, and its hash when deduplicating.
    if (msgHashed) {
      if (msgEnd - msgStart > o.maxMessageChars) return -1;
      r.msgHi = this.h1;
      r.msgLo = this.h2;
    } else if (msgAscii && !msgEsc && o.messageSeed === null) {
      if (msgEnd - msgStart > o.maxMessageChars) return -1;
    } else {
      h.reset(o.messageSeed ?? 0);
      if (!h.span(b, msgStart, msgEnd)) return -1;
      if (h.n > o.maxMessageChars) return -1;
      h.finish();
      r.msgHi = h.h1;
      r.msgLo = h.h2;
    }
    if (o.hashId === false) return 1;
    // The id: sampleId, or conversationId ":" turnIndex.
    h.reset(o.idSeed);
    if (r.sidStart >= 0) {
      if (!h.span(b, r.sidStart, r.sidEnd)) return -1;
    } else {
      if (!h.span(b, r.convStart, r.convEnd)) return -1;
      h.unit(0x3a);
      const t = String(r.turnIndex);
      for (let k = 0; k < t.length; k++) h.unit(t.charCodeAt(k));
    }
    h.finish();
    r.idHi = h.h1;
    r.idLo = h.h2;
    return 1;
  }
}
