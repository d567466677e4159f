/**
 * Rows recorded, not yet balanced: what a scan of a plain file keeps of each valid row
 * when the balancer resolves the whole input at once (StreamingBalancer.absorb) instead
 * of balancing row by row. A row is a handful of numbers in typed columns (its id's and
 * message's fingerprints, its cell, where its line is) and its id's bytes in one arena:
 * no object and no string per row, so threads record at the speed of the byte scanner,
 * with no hash table to probe and nothing for the garbage collector.
 *
 * Memory is about 60 bytes a row (the fingerprint tables the resolution builds are
 * ~50 more), so this path is for inputs up to {@link MAX_RECORDED_ROWS} rows; larger ones
 * stream through the balancer as before (memory bounded by the target there).
 */
import { touched } from '../util/fptable';

/** The most rows recorded in memory (~250 MB of records): a larger input streams. */
export const MAX_RECORDED_ROWS = 4_000_000;

/** A row whose cell is outside the strata (still counted, and its sampleId still taken). */
export const OUT_OF_STRATA = -1;

/** The columns of {@link RowRecords}, as plain data (to send between threads). */
export interface RecordColumns {
  n: number;
  idHi: Uint32Array;
  idLo: Uint32Array;
  msgHi: Uint32Array;
  msgLo: Uint32Array;
  /** label × strata.size + stratum code, or OUT_OF_STRATA. */
  slot: Int32Array;
  at: Float64Array;
  len: Float64Array;
  /** The line's number within its chunk (1-based). */
  line: Int32Array;
  /** Row i's id is arena bytes [idEnd[i - 1], idEnd[i]) (UTF-8), unless in `ids`. */
  idEnd: Uint32Array;
  arena: Uint8Array;
  arenaLen: number;
  /** Ids not in the arena (escaped in the input, or read the exact way), by row. */
  ids: Map<number, string>;
}

// The id bytes are UTF-8 the scanner already checked strictly; a leading U+FEFF is kept.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

export class RowRecords {
  private c: RecordColumns;

  constructor(capacity = 1 << 14) {
    this.c = RowRecords.alloc(Math.max(16, capacity), 24 * Math.max(16, capacity));
  }

  /** Records from their columns (as {@link columns} gave them, e.g. from another thread). */
  static from(c: RecordColumns): RowRecords {
    const r = new RowRecords(16);
    r.c = c;
    return r;
  }

  get size(): number {
    return this.c.n;
  }

  /** The columns (views of this object's arrays: they change as rows are added). */
  get columns(): RecordColumns {
    return this.c;
  }

  /** The buffers to transfer with {@link columns} (the receiver owns them then). */
  transferList(): ArrayBuffer[] {
    const c = this.c;
    return [c.idHi, c.idLo, c.msgHi, c.msgLo, c.slot, c.at, c.len, c.line, c.idEnd, c.arena].map(
      (a) => a.buffer as ArrayBuffer,
    );
  }

  /**
   * Appends a row (its id still to come: {@link idBytes} or {@link idText}, once each);
   * returns its index.
   */
  push(
    idHi: number,
    idLo: number,
    msgHi: number,
    msgLo: number,
    slot: number,
    at: number,
    len: number,
    line: number,
  ): number {
    let c = this.c;
    if (c.n === c.idHi.length) c = this.grow();
    const i = c.n++;
    c.idHi[i] = idHi;
    c.idLo[i] = idLo;
    c.msgHi[i] = msgHi;
    c.msgLo[i] = msgLo;
    c.slot[i] = slot;
    c.at[i] = at;
    c.len[i] = len;
    c.line[i] = line;
    c.idEnd[i] = c.arenaLen;
    return i;
  }

  /**
   * The last row's id: bytes [s, e) of `b` (plain UTF-8, no escape), then, when `turn`
   * is not negative, ":" and its digits (an id made of conversationId and turnIndex).
   */
  idBytes(b: Uint8Array, s: number, e: number, turn: number): void {
    const c = this.c;
    const digits = turn >= 0 ? String(turn) : '';
    const need = e - s + (turn >= 0 ? 1 + digits.length : 0);
    if (c.arenaLen + need > 0xffffffff) {
      return this.idText(utf8.decode(b.subarray(s, e)) + (turn >= 0 ? `:${digits}` : ''));
    }
    if (c.arenaLen + need > c.arena.length) this.growArena(need);
    const a = c.arena;
    let k = c.arenaLen;
    for (let j = s; j < e; j++) a[k++] = b[j]!;
    if (turn >= 0) {
      a[k++] = 0x3a;
      for (let j = 0; j < digits.length; j++) a[k++] = digits.charCodeAt(j);
    }
    c.arenaLen = k;
    c.idEnd[c.n - 1] = k;
  }

  /** The last row's id as a string (kept aside: escaped, or read the exact way). */
  idText(id: string): void {
    this.c.ids.set(this.c.n - 1, id);
  }

  /** Row i's id. */
  idOf(i: number): string {
    return recordedId(this.c, i);
  }

  private grow(): RecordColumns {
    const old = this.c;
    const next = RowRecords.alloc(old.idHi.length * 2, 0);
    next.idHi.set(old.idHi);
    next.idLo.set(old.idLo);
    next.msgHi.set(old.msgHi);
    next.msgLo.set(old.msgLo);
    next.slot.set(old.slot);
    next.at.set(old.at);
    next.len.set(old.len);
    next.line.set(old.line);
    next.idEnd.set(old.idEnd);
    next.n = old.n;
    next.arena = old.arena;
    next.arenaLen = old.arenaLen;
    next.ids = old.ids;
    return (this.c = next);
  }

  private growArena(need: number): void {
    const c = this.c;
    const size = Math.min(0xffffffff, Math.max(c.arena.length * 2, c.arenaLen + need));
    const next = new Uint8Array(size);
    next.set(c.arena.subarray(0, c.arenaLen));
    c.arena = next;
  }

  private static alloc(rows: number, arenaBytes: number): RecordColumns {
    return {
      n: 0,
      idHi: touched(new Uint32Array(rows)),
      idLo: touched(new Uint32Array(rows)),
      msgHi: touched(new Uint32Array(rows)),
      msgLo: touched(new Uint32Array(rows)),
      slot: touched(new Int32Array(rows)),
      at: touched(new Float64Array(rows)),
      len: touched(new Float64Array(rows)),
      line: touched(new Int32Array(rows)),
      idEnd: touched(new Uint32Array(rows)),
      arena: new Uint8Array(arenaBytes),
      arenaLen: 0,
      ids: new Map(),
    };
  }
}

/** Row i's id in recorded columns. */
export function recordedId(c: RecordColumns, i: number): string {
  const kept = c.ids.size === 0 ? undefined : c.ids.get(i);
  if (kept !== undefined) return kept;
  const a = c.arena;
  const s = i === 0 ? 0 : c.idEnd[i - 1]!;
  const e = c.idEnd[i]!;
  // Short ASCII ids (the usual ones) without the decoder's per-call cost.
  if (e - s <= 64) {
    let k = s;
    while (k < e && a[k]! < 0x80) k++;
    if (k === e) return String.fromCharCode.apply(null, a.subarray(s, e) as unknown as number[]);
  }
  return utf8.decode(a.subarray(s, e));
}

/** One chunk of the input as recorded: rows [start, end) of part `part`'s records. */
export interface RecordedChunk {
  /** The chunk's index in file order. */
  chunk: number;
  part: number;
  start: number;
  end: number;
  /** Line number of the chunk's first line, less one (lines of the chunks before it). */
  lineBase: number;
}

/** A row whose sampleId was read before (to quarantine): where its line is. */
export interface RepeatedId {
  at: number;
  len: number;
  /** Its line number in the input. */
  line: number;
}
