/**
 * Telemetry turns in (conversationId, turnIndex) order with memory bounded by a buffer,
 * not by the input: an external merge sort. Turns are collected up to `runBytes` of
 * JSON, sorted and spilled to a temporary file; at the end the sorted runs are merged,
 * a line at a time from each. An input that fits in one run never touches the disk.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TelemetryTurn } from '../../shared/contracts/rows';

/** Bytes of turn JSON held before a run is sorted and spilled (SFT_SPILL_BYTES overrides). */
export const DEFAULT_RUN_BYTES = 16 << 20;

interface Held {
  conversationId: string;
  turnIndex: number;
  json: string;
}

type Keyed = Pick<Held, 'conversationId' | 'turnIndex'>;

const order = (a: Keyed, b: Keyed) =>
  a.conversationId < b.conversationId
    ? -1
    : a.conversationId > b.conversationId
      ? 1
      : a.turnIndex - b.turnIndex;

/** Reads a run file back line by line through a fixed buffer. */
class RunReader {
  private readonly buf = Buffer.alloc(1 << 20);
  private start = 0;
  private end = 0;
  private eof = false;
  head: { conversationId: string; turnIndex: number; turn: TelemetryTurn } | null = null;

  constructor(private readonly fd: number) {
    this.advance();
  }

  /** Moves `head` to the next line (null at the end). */
  advance(): void {
    for (;;) {
      const nl = this.buf.indexOf(10, this.start);
      if (nl !== -1 && nl < this.end) {
        const json = this.buf.toString('utf8', this.start, nl);
        this.start = nl + 1;
        const t = JSON.parse(json) as TelemetryTurn;
        this.head = { conversationId: t.conversationId, turnIndex: t.turnIndex, turn: t };
        return;
      }
      if (this.eof) {
        this.head = null;
        return;
      }
      this.refill();
    }
  }

  private refill(): void {
    const left = this.end - this.start;
    if (left === this.buf.length) throw new Error('a spilled turn is longer than the buffer');
    this.buf.copy(this.buf, 0, this.start, this.end);
    this.start = 0;
    this.end = left;
    const n = readSync(this.fd, this.buf, left, this.buf.length - left, null);
    if (n === 0) this.eof = true;
    this.end += n;
  }
}

export class TurnSorter {
  private held: Held[] = [];
  private heldBytes = 0;
  private dir: string | null = null;
  private runs: string[] = [];
  private readonly runBytes: number;

  constructor(runBytes?: number) {
    const env = Number(process.env.SFT_SPILL_BYTES);
    this.runBytes = runBytes ?? (env > 0 ? env : DEFAULT_RUN_BYTES);
  }

  /** Turns spilled to disk so far, in runs. */
  get spilledRuns(): number {
    return this.runs.length;
  }

  add(turn: TelemetryTurn): void {
    const json = JSON.stringify(turn);
    this.held.push({ conversationId: turn.conversationId, turnIndex: turn.turnIndex, json });
    this.heldBytes += json.length;
    if (this.heldBytes >= this.runBytes) this.spill();
  }

  private spill(): void {
    this.held.sort(order);
    this.dir ??= mkdtempSync(join(tmpdir(), 'sft-balancer-turns-'));
    const path = join(this.dir, `run-${this.runs.length}.jsonl`);
    const fd = openSync(path, 'wx', 0o600);
    try {
      const parts: string[] = [];
      let size = 0;
      const write = () => {
        const chunk = Buffer.from(parts.join(''), 'utf8');
        for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off);
        parts.length = 0;
        size = 0;
      };
      for (const h of this.held) {
        parts.push(h.json, '\n');
        size += h.json.length + 1;
        if (size >= 1 << 20) write();
      }
      write();
    } finally {
      closeSync(fd);
    }
    this.runs.push(path);
    this.held = [];
    this.heldBytes = 0;
  }

  /**
   * Every turn added, in (conversationId, turnIndex) order (duplicates adjacent, in
   * no particular order). Removes the spilled files when done, or on an error.
   */
  *sorted(): Generator<TelemetryTurn> {
    try {
      if (this.runs.length === 0) {
        const held = this.held.sort(order);
        this.held = [];
        this.heldBytes = 0;
        for (let i = 0; i < held.length; i++) {
          const h = held[i]!;
          held[i] = undefined as unknown as Held; // let it go as it is handed on
          yield JSON.parse(h.json) as TelemetryTurn;
        }
        return;
      }
      if (this.held.length > 0) this.spill();
      const fds = this.runs.map((p) => openSync(p, 'r'));
      try {
        // A binary heap of the run readers by their head line.
        const heap = fds.map((fd) => new RunReader(fd)).filter((r) => r.head !== null);
        const less = (a: RunReader, b: RunReader) => order(a.head!, b.head!) < 0;
        const down = (i: number) => {
          for (;;) {
            const l = 2 * i + 1;
            const r = l + 1;
            let m = i;
            if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
            if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
            if (m === i) return;
            [heap[i], heap[m]] = [heap[m]!, heap[i]!];
            i = m;
          }
        };
        for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
        while (heap.length > 0) {
          const top = heap[0]!;
          const turn = top.head!.turn;
          top.advance();
          if (top.head === null) {
            heap[0] = heap[heap.length - 1]!;
            heap.pop();
          }
          if (heap.length > 0) down(0);
          yield turn;
        }
      } finally {
        for (const fd of fds) closeSync(fd);
      }
    } finally {
      this.dispose();
    }
  }

  /** Removes the spilled runs (safe to call twice). */
  dispose(): void {
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
    this.runs = [];
    this.held = [];
  }
}
