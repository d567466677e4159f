/**
 * Dataset lines straight from the input's bytes: the JSONL line of a selected row,
 * written from the UTF-8 bytes of its input line, byte for byte what the exact path
 * writes (`JSON.stringify(toDatasetLine(JSON.parse(line), …))`, shared/dataset/record.ts)
 * without building the row or the line as objects.
 *
 * The emitter checks the row with the balancer's own scanner (shared/balance/scan.ts),
 * finds its fields (RowScanner.fieldsOf) and writes them in toDatasetLine's order: numbers from
 * the values the scanner read, strings as their input bytes when those are what
 * JSON.stringify gives (valid UTF-8, no backslash), else decoded and encoded again;
 * extra fields (the metadata) as they stand when plain, else through JSON.parse and
 * JSON.stringify. It declines (returns -1: the caller takes the exact path for that
 * line) whenever the scanner does, and for anything whose order or value the exact path
 * would change in ways it does not copy: invalid UTF-8, an extra key that is
 * integer-like (Object.keys puts those first), `__proto__`, or an extra key repeated.
 * test/balance/emit.test.ts holds it to the exact path on a table of tricky lines.
 */
import { LABEL_NAMES } from '../contracts/rows';
import type { SignalRow } from '../strata/strata';
import {
  F_CONV,
  F_DUR,
  F_HIST,
  F_MODEL,
  F_MSG,
  F_NREQ,
  F_PTD,
  F_SID,
  F_TC,
  F_TI,
  F_TOOLS,
  F_TS,
  FieldSpans,
  RowScanner,
  ScannedRow,
  type SpanDecoder,
} from './scan';

const enc = new TextEncoder();
const utf8 = new TextDecoder();
/** A known field's slot in the emitter's table: its bit's position. */
const P = (bit: number) => 31 - Math.clz32(bit);
const ascii = (s: string) => enc.encode(s);

const K_ID = ascii('{"id":');
const K_LABEL = ascii(',"label":');
const K_NAMES = LABEL_NAMES.map((n) => ascii(`,"labelName":${JSON.stringify(n)},"messages":[`));
const K_USER = ascii('{"role":"user","content":');
const K_CONV = ascii(',"conversationId":');
const K_TI = ascii(',"turnIndex":');
const K_TC = ascii(',"turnCount":');
const K_MODEL = ascii(',"model":');
const K_NREQ = ascii(',"numRequests":');
const K_DUR = ascii(',"turnDurationMs":');
const K_PTD = ascii(',"promptTokenDelta":');
const K_TOOLS = ascii(',"tools":');
const K_TS = ascii(',"timestamp":');
const K_DUP = ascii(',"upsampled":true,"duplicateOf":');
const K_META = ascii(',"metadata":{');
const PROTO = ascii('__proto__');
const CONFIDENCE = ascii('confidence');

/** The bytes of a cell's `"strata":…,"weight":…` (the same for every line of the cell). */
export function cellBytes(strata: Record<string, string>, weight: number): Uint8Array {
  return enc.encode(`,"strata":${JSON.stringify(strata)},"weight":${JSON.stringify(weight)}`);
}

/** What profiling needs of an emitted row (shared/report/profile.ts ProfileBuilder.addSignals). */
export interface EmittedSignals extends Omit<SignalRow, 'tools'> {
  label: 0 | 1;
  /** Distinct tool names (toolDiversity of the tools). */
  toolDiversity: number;
  /** metadata.confidence when it is a number. */
  confidence: number | undefined;
}

/**
 * Checks bytes [s, e) are valid UTF-8 (as isUtf8) and tells whether they hold a
 * backslash: -1 invalid, 0 valid without, 1 valid with a backslash.
 */
export function utf8Backslash(b: Uint8Array, s: number, e: number): -1 | 0 | 1 {
  let bs: 0 | 1 = 0;
  let i = s;
  while (i < e) {
    const c = b[i]!;
    if (c < 0x80) {
      if (c === 0x5c) bs = 1;
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return -1;
    if (i + n >= e) return -1;
    const c1 = b[i + 1]!;
    if (c1 < lo || c1 > hi) return -1;
    for (let k = 2; k <= n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return -1;
    i += n + 1;
  }
  return bs;
}

/** The first quote at or after `i` (a key's closing quote: keys the scanner reads hold no escape). */
function quoteAfter(b: Uint8Array, i: number): number {
  while (b[i] !== 0x22) i++;
  return i;
}

/** Whether bytes [s, e) of `b` equal `word`. */
function bytesAre(b: Uint8Array, s: number, e: number, word: Uint8Array): boolean {
  if (e - s !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[s + k] !== word[k]) return false;
  return true;
}

/** Whether two byte spans of `b` are equal. */
function sameBytes(b: Uint8Array, s1: number, e1: number, s2: number, e2: number): boolean {
  if (e1 - s1 !== e2 - s2) return false;
  for (let k = 0; k < e1 - s1; k++) if (b[s1 + k] !== b[s2 + k]) return false;
  return true;
}

/** Whether bytes [s, e) are a number JSON.stringify writes as they stand (a plain integer). */
function plainInteger(b: Uint8Array, s: number, e: number): boolean {
  let i = s;
  if (b[i] === 0x2d) i++;
  const n = e - i;
  if (n < 1 || n > 15) return false;
  if (b[i] === 0x30) return n === 1 && i === s; // "0" (not "-0")
  for (; i < e; i++) if (b[i]! < 0x30 || b[i]! > 0x39) return false;
  return true;
}

/** How an emitter reads bytes: the adapter may pass Buffer's own (faster) decoder and check. */
export interface EmitterOptions {
  decode?: SpanDecoder;
  /** {@link utf8Backslash} exactly: -1 invalid UTF-8, 1 valid with a backslash, 0 valid without. */
  check?: (b: Uint8Array, s: number, e: number) => -1 | 0 | 1;
}

export class DatasetLineEmitter {
  /** The last line emitted: bytes [0, length) (no newline). */
  out = new Uint8Array(1 << 16);
  private n = 0;
  private readonly scanner: RowScanner;
  private readonly row = new ScannedRow();
  private readonly spans = new FieldSpans();
  private readonly decode: SpanDecoder;
  /** Whether the line being emitted holds a backslash (then strings are checked one by one). */
  private bs = false;
  /** Element spans of the last string array walked. */
  private readonly elS: number[] = [];
  private readonly elE: number[] = [];
  private elN = 0;
  /** Spans (index into `spans`) of the known fields of the last row, by bit position. */
  private readonly at = new Int32Array(16);
  private readonly extras: number[] = [];
  readonly signals: EmittedSignals = {
    label: 0,
    turnIndex: 0,
    turnCount: 0,
    model: '',
    numRequests: 0,
    turnDurationMs: 0,
    promptTokenDelta: 0,
    toolDiversity: 0,
    confidence: undefined,
  };

  /** Checks a line's bytes: {@link utf8Backslash}, or the adapter's equal and faster one. */
  private readonly check: (b: Uint8Array, s: number, e: number) => -1 | 0 | 1;

  constructor(opts: EmitterOptions = {}) {
    const decode = opts.decode ?? ((b, s, e) => utf8.decode(b.subarray(s, e)));
    this.decode = decode;
    this.check = opts.check ?? utf8Backslash;
    this.scanner = new RowScanner({
      idSeed: 0,
      messageSeed: null,
      maxMessageChars: Infinity,
      needModel: false,
      needTools: false,
      hashId: false,
      decode,
    });
  }

  /**
   * Reads line bytes [start, end): true when the emitter can write it (its fields are
   * then found), false when the exact path must.
   */
  private read(b: Uint8Array, start: number, end: number): boolean {
    const u = this.check(b, start, end);
    if (u < 0) return false;
    this.bs = u === 1;
    if (this.scanner.scan(b, start, end, this.row) !== 1) return false;
    if (!this.scanner.fieldsOf(b, start, end, this.spans)) return false;
    const sp = this.spans;
    const at = this.at;
    at.fill(-1);
    const extras = this.extras;
    extras.length = 0;
    for (let j = 0; j < sp.n; j++) {
      const bit = sp.bit[j]!;
      if (bit !== 0) {
        at[P(bit)] = j;
        continue;
      }
      const ks = sp.keyAt[j]! + 1;
      const ke = quoteAfter(b, ks);
      const c = b[ks]!;
      if ((c >= 0x30 && c <= 0x39) || bytesAre(b, ks, ke, PROTO)) return false;
      for (const x of extras) {
        const xs = sp.keyAt[x]! + 1;
        if (sameBytes(b, ks, ke, xs, quoteAfter(b, xs))) return false;
      }
      extras.push(j);
    }
    return true;
  }

  /** The conversationId and user message of line bytes [start, end), or null (take the exact path). */
  fields(
    b: Uint8Array,
    start: number,
    end: number,
  ): { conversationId: string; userMessage: string } | null {
    if (!this.read(b, start, end)) return null;
    return {
      conversationId: this.stringAt(b, this.at[P(F_CONV)]!),
      userMessage: this.stringAt(b, this.at[P(F_MSG)]!),
    };
  }

  private stringAt(b: Uint8Array, j: number): string {
    const s = this.spans.valueStart[j]!;
    const e = this.spans.valueEnd[j]!;
    const t = this.decode(b, s + 1, e - 1);
    return this.bs && b.subarray(s, e).includes(0x5c) ? (JSON.parse(`"${t}"`) as string) : t;
  }

  /**
   * Writes the dataset line of line bytes [start, end) into {@link out}: its length,
   * or -1 when the exact path must write it. `id` null is the row's own id (its
   * sampleId, or conversationId:turnIndex), written from its bytes; `cell` is
   * {@link cellBytes} of its cell.
   */
  emit(
    b: Uint8Array,
    start: number,
    end: number,
    id: string | null,
    cell: Uint8Array,
    duplicateOf?: string,
  ): number {
    if (!this.read(b, start, end)) return -1;
    const r = this.row;
    this.n = 0;
    // Room for all but re-encoded text and history turns (which ask for their own): the
    // line's bytes copied, the cell, the keys, 32 bytes a field for punctuation.
    this.room(2 * (end - start) + cell.length + 32 * this.spans.n + 1024);
    this.lit(K_ID);
    if (id === null) this.ownId(b);
    else this.jsString(id);
    this.lit(K_LABEL);
    this.byte(0x30 + r.label);
    this.lit(K_NAMES[r.label]!);
    this.messages(b);
    this.lit(cell);
    this.lit(K_CONV);
    this.stringField(b, F_CONV);
    this.numbers(b);
    if (duplicateOf !== undefined) {
      this.lit(K_DUP);
      this.jsString(duplicateOf);
    }
    this.metadata(b);
    this.byte(0x7d);
    this.profile(b);
    return this.n;
  }

  /** The row's own id as JSON: its sampleId, or `${conversationId}:${turnIndex}` (sampleIdOf). */
  private ownId(b: Uint8Array): void {
    const sid = this.at[P(F_SID)]!;
    if (sid >= 0) return this.stringField(b, F_SID);
    const j = this.at[P(F_CONV)]!;
    const s = this.spans.valueStart[j]!;
    const e = this.spans.valueEnd[j]!;
    if (this.bs && b.subarray(s, e).includes(0x5c)) {
      return this.jsString(`${this.stringAt(b, j)}:${this.row.turnIndex}`);
    }
    this.copy(b, s, e - 1); // the opening quote and the text
    this.byte(0x3a);
    this.num(b, F_TI, this.row.turnIndex); // String() of an integer: what JSON.stringify writes
    this.byte(0x22);
  }

  /** turnIndex … timestamp, in toDatasetLine's order. */
  private numbers(b: Uint8Array): void {
    const r = this.row;
    this.lit(K_TI);
    this.num(b, F_TI, r.turnIndex);
    this.lit(K_TC);
    this.num(b, F_TC, r.turnCount);
    this.lit(K_MODEL);
    this.stringField(b, F_MODEL);
    this.lit(K_NREQ);
    this.num(b, F_NREQ, r.numRequests);
    this.lit(K_DUR);
    this.num(b, F_DUR, r.turnDurationMs);
    this.lit(K_PTD);
    this.num(b, F_PTD, r.promptTokenDelta);
    this.lit(K_TOOLS);
    const j = this.at[P(F_TOOLS)]!;
    const ts = this.spans.valueStart[j]!;
    const te = this.spans.valueEnd[j]!;
    this.strings(b, ts, te);
    if (!this.bs && this.compact(ts, te)) this.copy(b, ts, te);
    else {
      this.byte(0x5b);
      for (let k = 0; k < this.elN; k++) {
        if (k > 0) this.byte(0x2c);
        this.string(b, this.elS[k]!, this.elE[k]!);
      }
      this.byte(0x5d);
    }
    this.signals.toolDiversity = this.distinct(b);
    this.lit(K_TS);
    this.stringField(b, F_TS);
  }

  /** `"messages":[…]`'s items: the history's turns, then the message. */
  private messages(b: Uint8Array): void {
    const h = this.at[P(F_HIST)]!;
    if (h >= 0) {
      this.strings(b, this.spans.valueStart[h]!, this.spans.valueEnd[h]!);
      this.room(32 * this.elN);
      for (let k = 0; k < this.elN; k++) {
        this.lit(K_USER);
        this.string(b, this.elS[k]!, this.elE[k]!);
        this.byte(0x7d);
        this.byte(0x2c);
      }
    }
    this.lit(K_USER);
    this.stringField(b, F_MSG);
    this.byte(0x7d);
    this.byte(0x5d);
  }

  private metadata(b: Uint8Array): void {
    const x = this.extras;
    this.signals.confidence = undefined;
    if (x.length === 0) return;
    const sp = this.spans;
    this.lit(K_META);
    for (let k = 0; k < x.length; k++) {
      const j = x[k]!;
      if (k > 0) this.byte(0x2c);
      const ks = sp.keyAt[j]!;
      const ke = quoteAfter(b, ks + 1) + 1;
      this.copy(b, ks, ke);
      this.byte(0x3a);
      const s = sp.valueStart[j]!;
      const e = sp.valueEnd[j]!;
      const c = b[s]!;
      if (c === 0x22) this.string(b, s, e);
      else if (c === 0x74 || c === 0x66 || c === 0x6e || plainInteger(b, s, e)) this.copy(b, s, e);
      else this.jsText(JSON.stringify(JSON.parse(this.decode(b, s, e))));
      if (bytesAre(b, ks + 1, ke - 1, CONFIDENCE) && (c === 0x2d || (c >= 0x30 && c <= 0x39)))
        this.signals.confidence = Number(this.decode(b, s, e));
    }
    this.byte(0x7d);
  }

  /** The profile's values of the row just emitted. */
  private profile(b: Uint8Array): void {
    const r = this.row;
    const s = this.signals;
    s.label = r.label;
    s.turnIndex = r.turnIndex;
    s.turnCount = r.turnCount;
    s.model = this.model(b);
    s.numRequests = r.numRequests;
    s.turnDurationMs = r.turnDurationMs;
    s.promptTokenDelta = r.promptTokenDelta;
  }

  /** Models decoded, by their bytes: a file names few models. */
  private readonly models: { bytes: Uint8Array; text: string }[] = [];

  /** The model of the row just read, as JSON.parse gives it. */
  private model(b: Uint8Array): string {
    const j = this.at[P(F_MODEL)]!;
    const s = this.spans.valueStart[j]!;
    const e = this.spans.valueEnd[j]!;
    const m = this.models;
    for (let k = 0; k < m.length; k++) {
      const x = m[k]!;
      if (x.bytes.length !== e - s) continue;
      let same = true;
      for (let i = 0; i < e - s && same; i++) same = x.bytes[i] === b[s + i];
      if (same) return x.text;
    }
    const text = this.stringAt(b, j);
    if (m.length < 64) m.push({ bytes: b.slice(s, e), text });
    return text;
  }

  /** Distinct strings among the last array's elements (as JSON.parse would give them). */
  private distinct(b: Uint8Array): number {
    const n = this.elN;
    if (n < 2) return n;
    const S = this.elS;
    const E = this.elE;
    if (this.bs) {
      const set = new Set<string>();
      for (let k = 0; k < n; k++) set.add(JSON.parse(this.decode(b, S[k]!, E[k]!)) as string);
      return set.size;
    }
    let d = 0;
    outer: for (let k = 0; k < n; k++) {
      for (let m = 0; m < k; m++) if (sameBytes(b, S[k]!, E[k]!, S[m]!, E[m]!)) continue outer;
      d++;
    }
    return d;
  }

  /** Whether the array at [s, e) whose strings were just found holds nothing else (no space). */
  private compact(s: number, e: number): boolean {
    const n = this.elN;
    if (n === 0) return e - s === 2;
    if (this.elS[0] !== s + 1 || this.elE[n - 1] !== e - 1) return false;
    for (let k = 1; k < n; k++) if (this.elS[k] !== this.elE[k - 1]! + 1) return false;
    return true;
  }

  /** Finds the strings (quotes included) of the array at bytes [s, e) into elS/elE. */
  private strings(b: Uint8Array, s: number, e: number): void {
    let k = 0;
    let i = s + 1;
    while (i < e) {
      const c = b[i]!;
      if (c !== 0x22) {
        i++;
        continue;
      }
      let j = i + 1;
      for (let d = b[j]; d !== 0x22; d = b[j]) j += d === 0x5c ? 2 : 1;
      this.elS[k] = i;
      this.elE[k] = j + 1;
      k++;
      i = j + 1;
    }
    this.elN = k;
  }

  private stringField(b: Uint8Array, bit: number): void {
    const j = this.at[P(bit)]!;
    this.string(b, this.spans.valueStart[j]!, this.spans.valueEnd[j]!);
  }

  /** A JSON string at bytes [s, e) (quotes included), as JSON.stringify writes its value. */
  private string(b: Uint8Array, s: number, e: number): void {
    if (this.bs && b.subarray(s, e).includes(0x5c)) {
      this.jsText(JSON.stringify(JSON.parse(this.decode(b, s, e))));
    } else this.copy(b, s, e);
  }

  private jsString(s: string): void {
    const len = s.length;
    this.room(len + 2);
    const out = this.out;
    let n = this.n;
    out[n++] = 0x22;
    for (let k = 0; k < len; k++) {
      const c = s.charCodeAt(k);
      if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x80) {
        this.jsText(JSON.stringify(s));
        return;
      }
      out[n++] = c;
    }
    out[n++] = 0x22;
    this.n = n;
  }

  /** Writes JS text as UTF-8. */
  private jsText(t: string): void {
    this.room(t.length * 3);
    const out = this.out;
    let n = this.n;
    for (let k = 0; k < t.length; k++) {
      const c = t.charCodeAt(k);
      if (c >= 0x80) {
        n += enc.encodeInto(t.slice(k), out.subarray(n)).written;
        break;
      }
      out[n++] = c;
    }
    this.n = n;
  }

  /** A number field as JSON.stringify writes the value `v` read from it: its bytes when plain. */
  private num(b: Uint8Array, bit: number, v: number): void {
    const j = this.at[P(bit)]!;
    const s = this.spans.valueStart[j]!;
    const e = this.spans.valueEnd[j]!;
    if (plainInteger(b, s, e)) this.copy(b, s, e);
    else this.jsText(JSON.stringify(v));
  }

  private lit(word: Uint8Array): void {
    const out = this.out;
    let n = this.n;
    for (let k = 0; k < word.length; k++) out[n++] = word[k]!;
    this.n = n;
  }

  private copy(b: Uint8Array, s: number, e: number): void {
    const len = e - s;
    if (len > 48) {
      this.out.set(b.subarray(s, e), this.n);
      this.n += len;
      return;
    }
    const out = this.out;
    let n = this.n;
    for (let k = s; k < e; k++) out[n++] = b[k]!;
    this.n = n;
  }

  private byte(c: number): void {
    this.out[this.n++] = c;
  }

  private room(k: number): void {
    if (this.n + k <= this.out.length) return;
    const bigger = new Uint8Array(Math.max(this.out.length * 2, this.n + k));
    bigger.set(this.out.subarray(0, this.n));
    this.out = bigger;
  }
}
