/**
 * The streaming balancer: one pass over annotated rows, exact class counts, quotas
 * across strata, memory bounded by the target rather than the input.
 *
 * Every row gets a sampling key u = hash(seed, sampleId) in [0, 1). Within each
 * (label, stratum) cell the balancer keeps only the rows with the smallest keys, and
 * the final selection is the q smallest of each cell. Because the key depends on the
 * row and the seed alone, the same rows give the same dataset in any order, and the
 * per-cell candidate lists of separate batches merge (the k smallest keys of a union
 * are among the k smallest of each part).
 *
 * How many candidates a cell needs: with equal allocation, q_s = min(supply_s, λ),
 * and the water level λ only falls as supply grows, so λ seen so far bounds the
 * final quota; a class then retains about n_class rows. Other allocation modes keep
 * up to n_class per cell.
 */
import {
  LABEL_NAMES,
  checkAnnotated,
  describeProblem,
  rowShape,
  shapeRow,
  strataNeeding,
  type RowShape,
  type AnnotatedRow,
  type DatasetLine,
  type Label,
  type QuarantineReason,
} from '../contracts/rows';
import { allocate, allocationWeights, nominalShares, waterLevel } from './allocation';
import { classTargets, splitShares, type BalanceConfig } from '../contracts/config';
import { assignSplits, type SplitName } from '../split/index';
import { sampleIdOf, toDatasetLine } from '../dataset/record';
import {
  InexactSelectionError,
  NearDedupRefillError,
  NoValidRowsError,
  ShortfallError,
} from '../errors/index';
import { dedupSignatures, GreedyDeduper, parseDedupOptions, signerFor } from '../dedup/index';
import type { DedupOptions } from '../dedup/index';
import { FingerprintTable, GrowableColumns } from '../util/fptable';
import { hash64, seed32 } from '../util/hash';
import { before, CandidateBuffer, type Candidate } from './candidates';
import { compileStrata, type CompiledStrata, type Strata } from '../strata/strata';
import { RowScanner, ScannedRow, type SpanDecoder } from './scan';
import {
  OUT_OF_STRATA,
  recordedId,
  type RowRecords,
  type RecordColumns,
  type RecordedChunk,
  type RepeatedId,
} from './records';
import { cellBytes, DatasetLineEmitter, type EmittedSignals, type EmitterOptions } from './emit';
import { PermanentError } from '../errors';
import {
  batchRanges,
  signalsAt,
  type EmitBatch,
  type EmitHelper,
  type EmittedBatch,
} from './emit-batch';

/** Quarantined rows counted by reason, and by "reason field". */
export interface QuarantineTally {
  counts: Record<string, number>;
  fields: Record<string, number>;
}

/** A row set aside, with where it was and why. */
export interface QuarantineRecord {
  line: number;
  reason: QuarantineReason;
  field?: string;
  detail: string;
  /** The start of the offending line, for a human to look at. */
  raw: string;
}

export interface ClassShortfall {
  label: Label;
  labelName: string;
  target: number;
  available: number;
  delivered: number;
  action: 'shrunk' | 'upsampled' | 'failed';
}

export interface StratumShortfall {
  label: Label;
  stratum: string;
  nominal: number;
  available: number;
  selected: number;
  action: 'redistributed';
}

export interface BalanceManifest {
  config: BalanceConfig;
  seed: number | string;
  input: {
    /** Rows offered plus rows quarantined. */
    rows: number;
    /** Rows with a sampleId not seen before. */
    valid: number;
    quarantined: number;
    outOfStrata: number;
    duplicatesRemoved: number;
    byLabel: Record<string, number>;
    byLabelStratum: Record<string, Record<string, { rows: number; unique: number }>>;
  };
  quarantine: { total: number; byReason: Record<string, number> };
  targets: { total: number; byLabel: Record<string, number> };
  selected: {
    total: number;
    byLabel: Record<string, number>;
    byLabelStratum: Record<string, Record<string, number>>;
    upsampled: number;
  };
  shortfalls: { classes: ClassShortfall[]; strata: StratumShortfall[] };
  weights: Record<string, { share: number; weight: number }>;
  split: SplitManifest;
  /** Near-duplicate removal in the selection walk (absent when switched off). */
  nearDuplicates?: NearDuplicatesManifest;
}

/** What the near-duplicate walk removed, per class × stratum (docs/dedup.md). */
export interface NearDuplicatesManifest {
  threshold: number;
  removed: number;
  byLabelStratum: Record<string, Record<string, number>>;
  /** Scans of the input it took (more when a stratum ran out of candidates). */
  passes: number;
  note: string;
}

/** One line of duplicates.jsonl: a removed sample, the selected one it duplicates. */
export interface NearDuplicate {
  id: string;
  keptId: string;
  /** Estimated Jaccard of the two user messages (signature agreement). */
  similarity: number;
}

/** Options of one scan that do not change the dataset (so not config). */
export interface BalancerOptions {
  /**
   * Candidates kept per cell beyond the provable bound: dedup replacements and
   * near-duplicate removals eat into it. Default 64; a driver re-scanning after a
   * NearDedupRefillError passes the error's margin.
   */
  margin?: number;
  /** Which scan this is (1 = the first), recorded as nearDuplicates.passes. */
  pass?: number;
}

/**
 * The train / validation / test split (shared/split): groups by conversation, the class
 * ratio held per split where supply allows; `byLabel`, `targets` and `deviation` per split.
 */
export interface SplitManifest {
  train: number;
  validation: number;
  validationConversations: number;
  test?: number;
  testConversations?: number;
  shares?: [number, number, number];
  byLabel?: Record<SplitName, Record<string, number>>;
  targets?: Record<SplitName, Record<string, number>>;
  deviation?: { bySplit: Record<SplitName, Record<string, number>>; total: number };
  groups?: number;
}

export interface BalanceResult {
  train: DatasetLine[];
  validation: DatasetLine[];
  test: DatasetLine[];
  /** Near-duplicates removed, in sampling-key order (duplicates.jsonl). */
  duplicates: NearDuplicate[];
  manifest: BalanceManifest;
}

/** The sampling key in [0, 1) from the two lanes of an id's hash (53 bits). */
const keyOf = (hi: number, lo: number) => (hi * 2 ** 21 + (lo >>> 11)) / 2 ** 53;

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

interface Entry extends Candidate {
  /**
   * Where the row is: parsed, as its JSONL line, or only as the byte range of that
   * line in the input (`at`, `len`), read again if selected. Ranges keep memory and
   * garbage collection small: candidates then hold no row text at all.
   */
  row: AnnotatedRow | null;
  line: string | null;
  at: number;
  len: number;
  cell: Cell;
  group: number;
}

interface Cell {
  index: number;
  /** label × strata.size + stratum code: the same slot in every balancer of a config. */
  slot: number;
  label: Label;
  key: string;
  strata: Strata;
  /** Rows seen (after exclusion by stratum, before dedup). */
  rows: number;
  /** Distinct rows available: what allocation works with. */
  supply: number;
  candidates: CandidateBuffer<Entry>;
  cap: number;
  /** Retained entries removed because a duplicate with a smaller key replaced them. */
  revoked: number;
}

/**
 * A balancer's state as plain data (typed arrays and plain objects): what a worker
 * sends back so that balancers over parts of the input merge into one.
 */
export interface BalancerSnapshot {
  offered: number;
  valid: number;
  outOfStrata: number;
  duplicatesRemoved: number;
  quarantine: Record<string, number>;
  /** Quarantined rows by "reason field" (absent from older snapshots). */
  quarantineFields?: Record<string, number>;
  sampleIds: { hi: Uint32Array; lo: Uint32Array };
  /** Dedup groups by id: fingerprint and representative (key, tie, cell slot). */
  groups: {
    hi: Uint32Array;
    lo: Uint32Array;
    key: Float64Array;
    tie: Uint32Array;
    slot: Int32Array;
  } | null;
  cells: {
    slot: number;
    rows: number;
    supply: number;
    revoked: number;
    minDropped: { key: number; tie: number; id: string } | null;
    /** How many of the candidate columns are this cell's (cells follow one another). */
    count: number;
  }[];
  /**
   * Every cell's candidates as columns (cheap to send between threads: typed arrays and
   * one string, not an object per candidate). Candidate i's id is
   * ids.slice(idEnds[i - 1] ?? 0, idEnds[i]); rows and lines are null when none has one.
   */
  candidates: {
    key: Float64Array;
    tie: Uint32Array;
    group: Int32Array;
    at: Float64Array;
    len: Float64Array;
    idEnds: Uint32Array;
    ids: string;
    rows: (AnnotatedRow | null)[] | null;
    lines: (string | null)[] | null;
  };
}

/** Receives each dataset line as it is made, with the file it belongs in. */
export type DatasetSink = (line: DatasetLine, split: SplitName) => void;

/**
 * Receives each dataset line as it is made ({@link StreamingBalancer.finishRawInto}):
 * as its UTF-8 bytes [start, end) (valid during the call) with what profiling needs,
 * or, for a line the emitter declines, as the object the exact path makes.
 */
export interface RawDatasetSink {
  /** A line the exact path made (profile it too). */
  line(line: DatasetLine, split: SplitName): void;
  /** A line as bytes (its profile comes through {@link profile}). */
  raw(bytes: Uint8Array, start: number, end: number, split: SplitName): void;
  /** What profiling needs of each line given as bytes. */
  profile(row: EmittedSignals): void;
}

/** Lines read back as bytes (adapters/files/lines.ts loadRangeBytes): line i is bytes [start(i), end(i)). */
export interface LineBytes {
  bytes: Uint8Array;
  start(i: number): number;
  end(i: number): number;
  /** Line i as text, as a {@link RangeLoader} gives it. */
  text(i: number): string;
}

/** Reads the lines at the given byte ranges (sorted by `at`) as bytes. */
export type ByteLoader = (
  ranges: readonly { at: number; len: number }[],
) => LineBytes | Promise<LineBytes>;

/** What the split reads of a selected row. */
type Parts = { conversationId: string; userMessage: string };

/** How the build writes a selected row (exact or from bytes), and reads its split's parts. */
interface LineOut {
  put(p: Selection['picked'][number], split: SplitName, weight: number): void;
  parts(e: Entry): Parts;
}

/**
 * `items` in candidate order ({@link before}): by key alone when no two share a key (the
 * keys then sorted as numbers, each item placed by a binary search of its key: far
 * cheaper than comparing objects or a Map of keys), else in full.
 */
function sortByKey<T extends { key: number; tie: number; id: string }>(items: T[]): T[] {
  const n = items.length;
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = items[i]!.key;
  const sorted = keys.slice().sort();
  for (let i = 1; i < n; i++) {
    if (sorted[i] === sorted[i - 1]) return items.sort((a, b) => (before(a, b) ? -1 : 1));
  }
  const out = items.slice();
  for (let i = 0; i < n; i++) out[rankOf(sorted, keys[i]!)] = items[i]!;
  return out;
}

/** The index of `x` in `sorted` (ascending, distinct, holding x). */
function rankOf(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** toDatasetLine of a selected row (an upsampled copy names its source). */
const datasetLineOf = (
  row: AnnotatedRow,
  p: { entry: { cell: { strata: Strata } }; id: string; copyOf?: string },
  weight: number,
): DatasetLine =>
  toDatasetLine(row, {
    id: p.id,
    strata: p.entry.cell.strata,
    weight,
    ...(p.copyOf !== undefined ? { duplicateOf: p.copyOf } : {}),
  });

type Selection = ReturnType<StreamingBalancer['select']>;

/** Reads the lines at the given byte ranges of the input, in the order asked. */
export type RangeLoader = (ranges: readonly { at: number; len: number }[]) => Promise<string[]>;

/**
 * An integer read from a Float64Array, as a small integer when it is one: V8 boxes such a
 * read, and one boxed value stored in an entry's field turns that field into a boxed
 * double in every entry (each one migrated on its next access), which made sorting and
 * loading the candidates twice as slow.
 */
const smi = (n: number): number => (n >= 0 && n < 0x40000000 ? n | 0 : n);

/** Two parts of the input named the same sampleId: merging cannot decide, balance in one pass. */
export class MergeConflictError extends PermanentError {}

/** Fewer picked lines than this are not worth a helper thread. */
const MIN_HELPED_LINES = 2048;
/**
 * The share of the picked lines a helper loads and emits: more than half, as this
 * thread also writes and profiles every line.
 */
const HELPER_SHARE = 0.6;

/** Candidates kept beyond the provable bound, to absorb dedup replacements. */
export const CAP_MARGIN = 64;
/**
 * With near-dedup, each cell also keeps this share of its bound (removals eat into it):
 * templated telemetry loses a third or more of a cell's walk to near-duplicates, and a
 * second scan costs more than the candidates (byte ranges, or rows in the fan-in) do.
 */
const NEAR_MARGIN_SHARE = 1;
const NEAR_NOTE = 'among the walked candidates, not a census of the population';
/** Rows between recomputations of the per-cell bounds (stale bounds are safe: higher). */
const RECAP_EVERY = 4096;
const MESSAGE_SEED = 0x2545f491;

/** What an absorb in progress holds (see StreamingBalancer.beginAbsorb). */
interface Absorbing {
  /** The records fed so far, and the global index of each one's first row. */
  parts: RecordColumns[];
  base: number[];
  total: number;
  /**
   * Per group (without dedup: per kept row): its representative's key, tie, slot (in
   * `cells`) and global row; `reps` of them.
   */
  rep: GrowableColumns;
  reps: number;
  repeated: RepeatedId[];
}

/** The part holding global row `row` (base: each part's first row, ascending). */
function partOf(base: readonly number[], row: number): number {
  let lo = 0;
  let hi = base.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (base[mid]! <= row) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export class StreamingBalancer {
  /** Cells by slot: label × strata.size + stratum code. */
  private readonly cells: (Cell | undefined)[] = [];
  private readonly compiled: CompiledStrata;
  private readonly cellList: Cell[] = [];
  private readonly seedKey: number;
  private readonly targets: [number, number];
  private readonly sampleIds = new FingerprintTable();
  private readonly groups = new FingerprintTable();
  private readonly reps = new GrowableColumns();
  /** The retained entry of each dedup group, by group id (undefined once dropped). */
  private readonly groupEntry: (Entry | undefined)[] = [];
  private sinceRecap = 0;
  private offered = 0;
  private valid = 0;
  private outOfStrata = 0;
  private duplicatesRemoved = 0;
  private readonly quarantineCounts: Record<string, number> = {};
  /** Quarantined rows by "reason field" (e.g. "missing_field userMessage"), for the console. */
  private readonly quarantineFields: Record<string, number> = {};
  /** What a row must carry for this config, computed once. */
  private readonly shape: RowShape;
  /** A column mapping is in force (the byte scanner is then not used). */
  private readonly mapped: boolean;

  private readonly margin: number;
  private readonly marginShare: number;
  private readonly pass: number;

  constructor(
    readonly config: BalanceConfig,
    options: BalancerOptions = {},
  ) {
    this.margin = Math.max(CAP_MARGIN, Math.ceil(options.margin ?? CAP_MARGIN));
    this.marginShare = config.nearDedup ? NEAR_MARGIN_SHARE : 0;
    this.pass = options.pass ?? 1;
    const s = seed32(config.seed);
    this.seedKey = s;
    this.targets = classTargets(config.total, config.ratio);
    this.compiled = compileStrata(config.stratify, config);
    this.shape = rowShape({
      annotated: true,
      stratify: config.stratify,
      columns: config.columns,
    });
    this.mapped = Object.keys(config.columns ?? {}).length > 0;
  }

  /**
   * Makes room for `rows` rows in all (an estimate: more only costs growth), so the
   * sampleId and message tables do not grow while scanning or merging.
   */
  reserve(rows: number): void {
    this.sampleIds.reserve(rows);
    if (!this.config.dedup) return;
    this.groups.reserve(rows);
    this.reps.reserve(rows);
  }

  /** Candidates held right now, over all cells: what memory grows with. */
  get candidateCount(): number {
    let n = 0;
    for (const c of this.cellList) n += c.candidates.items.length;
    return n;
  }

  /** Rows seen so far (offered plus quarantined), for progress reports. */
  get progress(): { rows: number; valid: number; quarantined: number } {
    const quarantined = this.quarantinedTotal();
    return { rows: this.offered + quarantined, valid: this.valid, quarantined };
  }

  /**
   * A line parsed and checked as an annotated row: the row, the quarantine record of a
   * bad one (invalid JSON, a failed check), or null for a blank line.
   */
  private checkLine(line: string, lineNo: number): { row: AnnotatedRow } | QuarantineRecord | null {
    if (line.length === 0 || line.trim().length === 0) return null;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return this.quarantine(lineNo, line, { reason: 'invalid_json' }, undefined);
    }
    const problem = checkAnnotated(value, this.config.maxMessageChars, this.shape);
    if (problem) return this.quarantine(lineNo, line, problem, value);
    return { row: value as AnnotatedRow };
  }

  /**
   * Parses, validates and offers one JSONL line. Returns the quarantine record when
   * the line is set aside (the caller writes it), null otherwise. Blank lines are
   * skipped. The line itself is what a retained candidate keeps, not the parsed object.
   */
  addLine(line: string, lineNo: number, at = -1, len = 0): QuarantineRecord | null {
    const checked = this.checkLine(line, lineNo);
    if (checked === null || 'reason' in checked) return checked;
    const value = checked.row;
    if (this.add(value, line, at, len)) {
      return this.quarantine(
        lineNo,
        line,
        { reason: 'duplicate_sample_id', field: 'sampleId' },
        value,
      );
    }
    return null;
  }

  /**
   * Offers an already validated row (for callers that validated it themselves).
   * Returns true when its sampleId was seen before (the row is then ignored).
   */
  offer(row: AnnotatedRow): boolean {
    return this.add(row, null, -1, 0);
  }

  /**
   * {@link offer} for a row that is also the line at byte range (`at`, `len`) of a
   * file: a candidate keeps only the range, read again if selected (finish with a loader).
   */
  offerAt(row: AnnotatedRow, at: number, len: number): boolean {
    return this.add(row, null, at, len);
  }

  private add(row: AnnotatedRow, line: string | null, at: number, len: number): boolean {
    this.offered++;
    const id = sampleIdOf(row);
    // One 64-bit hash of the id: 53 bits make the sampling key, the other 11 a
    // tie-breaker, all 64 the fingerprint that catches a repeated sampleId.
    const [idHi, idLo] = hash64(id, this.seedKey);
    if (this.sampleIds.intern(idHi, idLo) >= 0) return true;
    this.valid++;
    const code = this.compiled.code(row);
    if (code < 0) {
      this.outOfStrata++;
      return false;
    }
    let mHi = 0;
    let mLo = 0;
    if (this.config.dedup) [mHi, mLo] = hash64(row.userMessage, MESSAGE_SEED);
    const cell = this.place(row.label, code, idHi, idLo, mHi, mLo);
    if (cell === null) return false;
    const key = keyOf(idHi, idLo);
    const tie = idLo & 0x7ff;
    if (cell.candidates.admits(key, tie, id)) {
      this.keep(cell, {
        key,
        tie,
        id,
        dead: false,
        row: line === null && at < 0 ? row : null,
        line: at < 0 ? line : null,
        at,
        len,
        cell,
        group: this.placedGroup,
      });
    }
    if (++this.sinceRecap >= RECAP_EVERY) this.recap();
    return false;
  }

  /** The group of the row last placed (-1 without deduplication). */
  private placedGroup = -1;

  /**
   * Counts a new (not repeated) valid row in its cell and its dedup group; returns the
   * cell, or null when the row is a duplicate that does not take its group over.
   */
  private place(
    label: Label,
    code: number,
    idHi: number,
    idLo: number,
    mHi: number,
    mLo: number,
  ): Cell | null {
    const slot = label * this.compiled.size + code;
    const cell = this.cells[slot] ?? this.newCell(slot);
    cell.rows++;
    let group = -1;
    if (this.config.dedup) {
      const key = keyOf(idHi, idLo);
      const tie = idLo & 0x7ff;
      const r = this.groups.intern(mHi, mLo);
      if (r >= 0) {
        group = r;
        this.duplicatesRemoved++;
        if (!this.takeOver(group, key, tie)) return null;
      } else {
        group = -r - 1;
        this.reps.ensure(group);
      }
      this.reps.keys[group] = key;
      this.reps.ties[group] = tie;
      this.reps.cells[group] = cell.index;
    }
    this.placedGroup = group;
    cell.supply++;
    return cell;
  }

  private scanner: RowScanner | null = null;
  private readonly scanned = new ScannedRow();

  /**
   * The fast path of {@link addLine}: reads a row from its UTF-8 bytes [start, end)
   * without building it (shared/scan.ts). Returns 0 for a blank line, 1 when the row
   * was offered (its outcome is then in {@link lastScanned}), and -1 when the scanner
   * cannot vouch for the row: the caller then decodes the line and calls addLine.
   */
  scanLine(bytes: Uint8Array, start: number, end: number, decode?: SpanDecoder): -1 | 0 | 1 {
    // The scanner reads the contract's own field names: a column mapping (issue 18) could
    // name another column for a field the row also holds, so mapped input takes the exact path.
    if (this.mapped) return -1;
    let sc = this.scanner;
    if (sc === null) {
      const stratify = this.config.stratify;
      sc = this.scanner = new RowScanner({
        idSeed: this.seedKey,
        messageSeed: this.config.dedup ? MESSAGE_SEED : null,
        maxMessageChars: this.config.maxMessageChars,
        needModel: stratify.includes('modelFamily'),
        needTools: stratify.includes('complexity'),
        ...(decode ? { decode } : {}),
      });
    }
    return sc.scan(bytes, start, end, this.scanned);
  }

  /**
   * Offers the row {@link scanLine} just accepted, kept as the byte range (at, len)
   * of the input, or as `line` when given. Returns true when its sampleId was seen
   * before (the caller then quarantines the line: {@link duplicateRecord}).
   */
  addScanned(bytes: Uint8Array, at: number, len: number, line: string | null): boolean {
    const r = this.scanned;
    this.offered++;
    const idHi = r.idHi;
    const idLo = r.idLo;
    if (this.sampleIds.intern(idHi, idLo) >= 0) return true;
    this.valid++;
    const code = this.compiled.code(r);
    if (code < 0) {
      this.outOfStrata++;
      return false;
    }
    const cell = this.place(r.label, code, idHi, idLo, r.msgHi, r.msgLo);
    if (cell === null) return false;
    const key = keyOf(idHi, idLo);
    const tie = idLo & 0x7ff;
    const cand = cell.candidates;
    const d = cand.minDropped;
    // Compare on (key, tie) first: the id is decoded only for rows that may be kept.
    if (d === null || key < d.key || (key === d.key && tie <= d.tie)) {
      const id = this.scanner!.idOf(bytes, r);
      if (cand.admits(key, tie, id)) {
        this.keep(cell, {
          key,
          tie,
          id,
          dead: false,
          row: null,
          line,
          at: line === null ? at : -1,
          len: line === null ? len : 0,
          cell,
          group: this.placedGroup,
        });
      }
    }
    if (++this.sinceRecap >= RECAP_EVERY) this.recap();
    return false;
  }

  /**
   * Records the row {@link scanLine} just accepted (kept as the byte range at, len of
   * line `lineNo`), for {@link absorb}: nothing is balanced yet.
   */
  recordScanned(bytes: Uint8Array, at: number, len: number, lineNo: number, out: RowRecords): void {
    const r = this.scanned;
    const code = this.compiled.code(r);
    const slot = code < 0 ? OUT_OF_STRATA : r.label * this.compiled.size + code;
    out.push(r.idHi, r.idLo, r.msgHi, r.msgLo, slot, at, len, lineNo);
    if (r.sidStart >= 0) {
      if (r.sidEsc) out.idText(this.scanner!.idOf(bytes, r));
      else out.idBytes(bytes, r.sidStart, r.sidEnd, -1);
    } else if (r.convEsc) out.idText(this.scanner!.idOf(bytes, r));
    else out.idBytes(bytes, r.convStart, r.convEnd, r.turnIndex);
  }

  /**
   * {@link addLine} for {@link absorb}: a line the scanner could not vouch for, parsed and
   * checked; a valid row is recorded, a bad one's quarantine record returned.
   */
  recordLine(
    line: string,
    lineNo: number,
    at: number,
    len: number,
    out: RowRecords,
  ): QuarantineRecord | null {
    const checked = this.checkLine(line, lineNo);
    if (checked === null || 'reason' in checked) return checked;
    const { row } = checked;
    const id = sampleIdOf(row);
    const [idHi, idLo] = hash64(id, this.seedKey);
    const code = this.compiled.code(row);
    const slot = code < 0 ? OUT_OF_STRATA : row.label * this.compiled.size + code;
    const [mHi, mLo] = this.config.dedup ? hash64(row.userMessage, MESSAGE_SEED) : [0, 0];
    out.push(idHi, idLo, mHi, mLo, slot, at, len, lineNo);
    out.idText(id);
    return null;
  }

  /**
   * Balances recorded rows at once: the same state, for the same rows in file order, as
   * offering them one by one would leave for the end phase without near-dedup (the same
   * counts, cells, supply and selection), but with no candidate buffers: the rows'
   * fingerprints go through the tables in one tight loop, then each cell's quota is
   * known and only the rows it selects become candidates. `chunks`: every chunk of the
   * input, in file order, and where its rows are. Returns the rows whose sampleId was
   * read before (to quarantine with {@link duplicateRecord}).
   */
  absorb(parts: readonly RowRecords[], chunks: readonly RecordedChunk[]): RepeatedId[] {
    let total = 0;
    for (const p of parts) total += p.size;
    this.beginAbsorb(total);
    for (const ch of chunks) this.absorbChunk(parts[ch.part]!, ch.start, ch.end, ch.lineBase);
    return this.endAbsorb();
  }

  /** {@link absorb} chunk by chunk: the state between {@link beginAbsorb} and {@link endAbsorb}. */
  private absorbing: Absorbing | null = null;

  /**
   * Starts an {@link absorb} fed chunk by chunk, in file order ({@link absorbChunk}), for
   * about `rows` rows (an estimate: more only costs growth).
   */
  beginAbsorb(rows: number): void {
    const n = Math.max(16, rows);
    this.sampleIds.reserve(this.sampleIds.size + n);
    if (this.config.dedup) this.groups.reserve(n);
    const rep = new GrowableColumns();
    rep.reserve(n);
    this.absorbing = { parts: [], base: [], total: 0, rep, reps: 0, repeated: [] };
  }

  /**
   * Resolves rows [start, end) of `records` (the next chunk of the input in file order;
   * its first line is line lineBase + 1). The records are kept until {@link endAbsorb}.
   */
  absorbChunk(records: RowRecords, start: number, end: number, lineBase: number): void {
    const st = this.absorbing!;
    const c = records.columns;
    let part = st.parts.lastIndexOf(c);
    if (part < 0) {
      part = st.parts.push(c) - 1;
      st.base.push(st.total);
      st.total += c.n;
    }
    const first = st.base[part]!;
    const dedup = this.config.dedup;
    const cells = this.cells;
    const { idHi, idLo, msgHi, msgLo, slot: slots } = c;
    st.rep.ensure(st.reps + (end - start));
    const { keys: repKey, ties: repTie, cells: repSlot, rows: repRow } = st.rep;
    for (let i = start; i < end; i++) {
      this.offered++;
      const hi = idHi[i]!;
      const lo = idLo[i]!;
      if (this.sampleIds.intern(hi, lo) >= 0) {
        st.repeated.push({ at: c.at[i]!, len: c.len[i]!, line: lineBase + c.line[i]! });
        continue;
      }
      this.valid++;
      const slot = slots[i]!;
      if (slot === OUT_OF_STRATA) {
        this.outOfStrata++;
        continue;
      }
      const cell = cells[slot] ?? this.newCell(slot);
      cell.rows++;
      const key = keyOf(hi, lo);
      const tie = lo & 0x7ff;
      let g = st.reps;
      if (dedup) {
        const r = this.groups.intern(msgHi[i]!, msgLo[i]!);
        if (r >= 0) {
          this.duplicatesRemoved++;
          const rk = repKey[r]!;
          if (key > rk || (key === rk && tie >= repTie[r]!)) continue;
          cells[repSlot[r]!]!.supply--;
          g = r;
        } else st.reps++;
      } else st.reps++;
      repKey[g] = key;
      repTie[g] = tie;
      repSlot[g] = slot;
      repRow[g] = first + i;
      cell.supply++;
    }
  }

  /** Ends an {@link absorb} fed chunk by chunk: the candidates made, the repeated rows returned. */
  endAbsorb(): RepeatedId[] {
    const st = this.absorbing!;
    this.absorbing = null;
    this.candidatesFromReps(st);
    return st.repeated;
  }

  /**
   * The candidates {@link absorb} leaves in each cell: its representatives with the
   * smallest keys, as many as its quota (all of them when the plan fails: selection
   * then fails the same way).
   */
  private candidatesFromReps(st: Absorbing): void {
    let quotas: Map<Cell, number> | null = null;
    try {
      if (this.cellList.some((c) => c.supply > 0)) quotas = this.plan((c) => c.supply).quotas;
    } catch {
      quotas = null; // select() throws the same error from the same supplies
    }
    // Each cell's representatives (keys and groups), in group order.
    const n = st.reps;
    const { keys: repKey, ties: repTie, cells: repSlot, rows: repRow } = st.rep;
    const count = new Int32Array(this.cells.length);
    for (let g = 0; g < n; g++) count[repSlot[g]!]!++;
    const keys = Array.from(count, (c) => new Float64Array(c));
    const groups = Array.from(count, (c) => new Int32Array(c));
    const fill = new Int32Array(count.length);
    for (let g = 0; g < n; g++) {
      const slot = repSlot[g]!;
      const j = fill[slot]!++;
      keys[slot]![j] = repKey[g]!;
      groups[slot]![j] = g;
    }
    for (const cell of this.cellList) {
      const k = keys[cell.slot]!;
      const q = quotas ? (quotas.get(cell) ?? 0) : k.length;
      if (q === 0 || k.length === 0) continue;
      const kth = q < k.length ? nthSmallest(k.slice(), q - 1) : Infinity;
      const gs = groups[cell.slot]!;
      const items = cell.candidates.items;
      for (let j = 0; j < k.length; j++) {
        const key = k[j]!;
        if (key > kth) continue;
        const g = gs[j]!;
        const row = repRow[g]!;
        const p = partOf(st.base, row);
        const i = row - st.base[p]!;
        const c = st.parts[p]!;
        items.push({
          key,
          tie: repTie[g]!,
          id: recordedId(c, i),
          dead: false,
          row: null,
          line: null,
          at: smi(c.at[i]!),
          len: smi(c.len[i]!),
          cell,
          group: this.config.dedup ? g : -1,
        });
      }
    }
  }

  /** The quarantine record of a line whose sampleId was already read. */
  duplicateRecord(line: string, lineNo: number): QuarantineRecord {
    return this.quarantine(
      lineNo,
      line,
      { reason: 'duplicate_sample_id', field: 'sampleId' },
      undefined,
    );
  }

  /**
   * A duplicate of group `group` arrived with (key, tie): when it sorts before the
   * group's representative it takes over (the old one leaves its cell) and true is
   * returned; otherwise it is the duplicate.
   */
  private takeOver(group: number, key: number, tie: number): boolean {
    const reps = this.reps;
    const rk = reps.keys[group]!;
    if (key > rk || (key === rk && tie >= reps.ties[group]!)) return false;
    const old = this.cellList[reps.cells[group]!]!;
    old.supply--;
    const retained = this.groupEntry[group];
    if (retained) {
      retained.dead = true;
      this.groupEntry[group] = undefined;
      old.revoked++;
    }
    return true;
  }

  private keep(cell: Cell, entry: Entry): void {
    if (entry.group >= 0) this.groupEntry[entry.group] = entry;
    cell.candidates.add(entry, this.retain(cell), this.onDrop);
  }

  /** Candidates a cell keeps: its bound, the margin, and room for dedup replacements. */
  private retain(c: Cell): number {
    return c.cap + this.margin + Math.ceil(c.cap * this.marginShare) + 2 * c.revoked;
  }

  private readonly onDrop = (e: Entry): void => {
    if (e.group >= 0 && this.groupEntry[e.group] === e) this.groupEntry[e.group] = undefined;
  };

  /** Counts a row the caller quarantined itself (e.g. an unreadable line upstream). */
  recordQuarantine(reason: QuarantineReason, field?: string): void {
    this.quarantineCounts[reason] = (this.quarantineCounts[reason] ?? 0) + 1;
    const k = field === undefined ? reason : `${reason} ${field}`;
    this.quarantineFields[k] = (this.quarantineFields[k] ?? 0) + 1;
  }

  /** Rows quarantined so far by reason (and by "reason field"), as plain data. */
  quarantineTally(): QuarantineTally {
    return { counts: { ...this.quarantineCounts }, fields: { ...this.quarantineFields } };
  }

  /** Adds another balancer's {@link quarantineTally} (it read another part of the input). */
  addQuarantineTally(t: QuarantineTally): void {
    for (const [reason, n] of Object.entries(t.counts))
      this.quarantineCounts[reason] = (this.quarantineCounts[reason] ?? 0) + n;
    for (const [k, n] of Object.entries(t.fields))
      this.quarantineFields[k] = (this.quarantineFields[k] ?? 0) + n;
  }

  private quarantine(
    lineNo: number,
    line: string,
    problem: { reason: QuarantineReason; field?: string },
    value: unknown,
  ): QuarantineRecord {
    this.recordQuarantine(problem.reason, problem.field);
    const rec: QuarantineRecord = {
      line: lineNo,
      reason: problem.reason,
      detail: describeProblem(value, problem, true),
      raw: line.length > 500 ? `${line.slice(0, 500)}…` : line,
    };
    if (problem.field !== undefined) rec.field = problem.field;
    return rec;
  }

  private quarantinedTotal(): number {
    let n = 0;
    for (const v of Object.values(this.quarantineCounts)) n += v;
    return n;
  }

  private newCell(slot: number): Cell {
    const size = this.compiled.size;
    const label: Label = slot >= size ? 1 : 0;
    const code = slot - label * size;
    const cell: Cell = {
      index: this.cellList.length,
      slot,
      label,
      key: this.compiled.key(code),
      strata: this.compiled.strata(code),
      rows: 0,
      supply: 0,
      candidates: new CandidateBuffer<Entry>(),
      cap: this.targets[label],
      revoked: 0,
    };
    this.cells[slot] = cell;
    this.cellList.push(cell);
    this.recap();
    return cell;
  }

  /** Recomputes each cell's retention bound from the supply seen so far. */
  private recap(): void {
    this.sinceRecap = 0;
    for (const label of [0, 1] as const) {
      const cells = this.cellList.filter((c) => c.label === label);
      const n = this.targets[label];
      let bound = n;
      if (this.config.allocation === 'equal') {
        const supply = cells.map((c) => c.supply);
        const { level } = waterLevel(n, supply, allocationWeights('equal', supply));
        if (level !== Infinity) bound = Math.min(n, Math.ceil(level));
      }
      for (const c of cells) c.cap = bound;
    }
  }

  /** This balancer's state as plain data, to merge into another over the rest of the input. */
  snapshot(): BalancerSnapshot {
    let groups: BalancerSnapshot['groups'] = null;
    if (this.config.dedup) {
      const { hi, lo } = this.groups.export();
      const n = hi.length;
      const slot = new Int32Array(n);
      for (let g = 0; g < n; g++) slot[g] = this.cellList[this.reps.cells[g]!]!.slot;
      groups = { hi, lo, key: this.reps.keys.slice(0, n), tie: this.reps.ties.slice(0, n), slot };
    }
    const cells = this.cellList.map((c) => {
      c.candidates.compact(this.retain(c), this.onDrop);
      const { rows, supply, revoked } = c;
      const count = c.candidates.items.length;
      return { slot: c.slot, rows, supply, revoked, minDropped: c.candidates.minDropped, count };
    });
    return {
      offered: this.offered,
      valid: this.valid,
      outOfStrata: this.outOfStrata,
      duplicatesRemoved: this.duplicatesRemoved,
      quarantine: { ...this.quarantineCounts },
      quarantineFields: { ...this.quarantineFields },
      sampleIds: this.sampleIds.export(),
      groups,
      cells,
      candidates: this.candidateColumns(),
    };
  }

  /** The candidates of every cell, cell after cell, as columns (see BalancerSnapshot). */
  private candidateColumns(): BalancerSnapshot['candidates'] {
    const all = this.cellList.flatMap((c) => c.candidates.items);
    const n = all.length;
    const cols = {
      key: new Float64Array(n),
      tie: new Uint32Array(n),
      group: new Int32Array(n),
      at: new Float64Array(n),
      len: new Float64Array(n),
      idEnds: new Uint32Array(n),
    };
    const ids: string[] = new Array<string>(n);
    let end = 0;
    let rows = false;
    let lines = false;
    for (let i = 0; i < n; i++) {
      const e = all[i]!;
      cols.key[i] = e.key;
      cols.tie[i] = e.tie;
      cols.group[i] = e.group;
      cols.at[i] = e.at;
      cols.len[i] = e.len;
      ids[i] = e.id;
      cols.idEnds[i] = end += e.id.length;
      rows ||= e.row !== null;
      lines ||= e.line !== null;
    }
    return {
      ...cols,
      ids: ids.join(''),
      rows: rows ? all.map((e) => e.row) : null,
      lines: lines ? all.map((e) => e.line) : null,
    };
  }

  /**
   * Folds in the snapshot of a balancer (same config) that saw another part of the
   * input. The result is what one balancer over both parts would hold, so the dataset
   * is the same bytes. Throws MergeConflictError when both parts hold a sampleId.
   */
  merge(part: BalancerSnapshot): void {
    const { hi, lo } = part.sampleIds;
    this.sampleIds.reserve(this.sampleIds.size + hi.length);
    if (part.groups) {
      const n = this.groups.size + part.groups.hi.length;
      this.groups.reserve(n);
      this.reps.reserve(n);
    }
    for (let i = 0; i < hi.length; i++) {
      if (this.sampleIds.intern(hi[i]!, lo[i]!) >= 0) {
        throw new MergeConflictError('the same sampleId occurs in two parts of the input');
      }
    }
    this.offered += part.offered;
    this.valid += part.valid;
    this.outOfStrata += part.outOfStrata;
    this.duplicatesRemoved += part.duplicatesRemoved;
    for (const [reason, n] of Object.entries(part.quarantine)) {
      this.quarantineCounts[reason] = (this.quarantineCounts[reason] ?? 0) + n;
    }
    for (const [k, n] of Object.entries(part.quarantineFields ?? {}))
      this.quarantineFields[k] = (this.quarantineFields[k] ?? 0) + n;
    const entries = this.mergeCandidates(part);
    if (part.groups) this.mergeGroups(part.groups, part.candidates.group, entries);
    this.recap();
  }

  /**
   * Folds a part's dedup groups into ours: a group both hold keeps the representative
   * that sorts first, and the other leaves its cell. `partGroup` is each part candidate's
   * group, `entries` the merged entries of those candidates.
   */
  private mergeGroups(
    groups: NonNullable<BalancerSnapshot['groups']>,
    partGroup: Int32Array,
    entries: Entry[],
  ): void {
    /** The merged entry of each of the part's groups that has one (else -1). */
    const entryOf = new Int32Array(groups.hi.length).fill(-1);
    for (let i = 0; i < partGroup.length; i++) if (partGroup[i]! >= 0) entryOf[partGroup[i]!] = i;
    for (let g = 0; g < groups.hi.length; g++) {
      const r = this.groups.intern(groups.hi[g]!, groups.lo[g]!);
      const key = groups.key[g]!;
      const tie = groups.tie[g]!;
      const cell = this.cells[groups.slot[g]!]!;
      const entry = entryOf[g]! >= 0 ? entries[entryOf[g]!] : undefined;
      let id: number;
      if (r >= 0) {
        id = r;
        this.duplicatesRemoved++;
        if (!this.takeOver(id, key, tie)) {
          // The part's representative loses to ours: it leaves the part's cell.
          cell.supply--;
          if (entry) {
            entry.dead = true;
            cell.revoked++;
          }
          continue;
        }
      } else {
        id = -r - 1;
        this.reps.ensure(id);
      }
      this.reps.keys[id] = key;
      this.reps.ties[id] = tie;
      this.reps.cells[id] = cell.index;
      if (entry) {
        entry.group = id;
        this.groupEntry[id] = entry;
      }
    }
  }

  /** Adds a part's cell counts and candidates to this balancer's cells; returns the new entries. */
  private mergeCandidates(part: BalancerSnapshot): Entry[] {
    const c = part.candidates;
    const entries: Entry[] = new Array<Entry>(c.key.length);
    let i = 0;
    for (const pc of part.cells) {
      const cell = this.cells[pc.slot] ?? this.newCell(pc.slot);
      cell.rows += pc.rows;
      cell.supply += pc.supply;
      cell.revoked += pc.revoked;
      cell.candidates.noteDropped(pc.minDropped);
      const items = cell.candidates.items;
      for (const stop = i + pc.count; i < stop; i++) {
        const entry: Entry = {
          key: c.key[i]!,
          tie: c.tie[i]!,
          id: c.ids.slice(i === 0 ? 0 : c.idEnds[i - 1]!, c.idEnds[i]),
          dead: false,
          row: c.rows?.[i] ?? null,
          line: c.lines?.[i] ?? null,
          at: smi(c.at[i]!),
          len: smi(c.len[i]!),
          cell,
          group: -1,
        };
        items.push(entry);
        entries[i] = entry;
      }
    }
    return entries;
  }

  /**
   * Selects, weights and splits: the dataset and its manifest. Every selected row
   * must be in memory (rows offered, or lines added without a byte range); use
   * {@link finishWith} when candidates were kept as byte ranges.
   */
  finish(): BalanceResult {
    return this.build(this.select());
  }

  /** {@link finish}, reading the selected rows kept as byte ranges through `load`. */
  async finishWith(load: RangeLoader): Promise<BalanceResult> {
    if (this.config.nearDedup) await this.loadCandidates(load);
    const sel = this.select();
    await this.loadPicked(sel, load);
    return this.build(sel);
  }

  /**
   * {@link finishWith} that hands each dataset line to `sink` as it is made instead
   * of collecting them (the result's train and validation arrays stay empty): memory
   * then holds the selected rows' text, not a hundred thousand objects.
   */
  async finishInto(sink: DatasetSink, load?: RangeLoader): Promise<BalanceResult> {
    if (load && this.config.nearDedup) await this.loadCandidates(load);
    const sel = this.select();
    if (load) await this.loadPicked(sel, load);
    return this.build(sel, sink);
  }

  /**
   * {@link finishInto} for candidates kept as byte ranges, read back through `load` as
   * bytes: each dataset line is written from its input line's bytes (shared/balance/emit.ts)
   * and handed to `sink.raw`, what profiling needs to `sink.profile`; a line the emitter
   * declines goes the exact way to `sink.line`. (Emitting in file order into one buffer
   * first, to read the input in memory order, cost as much in fresh pages as it saved.)
   * The same bytes as finishInto. With near-dedup (its walk reads every candidate's
   * message) or a column mapping the exact path runs, the lines read through `load` too.
   */
  async finishRawInto(
    sink: RawDatasetSink,
    load: ByteLoader,
    bytes: EmitterOptions = {},
    /** Loads and emits half of the lines elsewhere (a worker thread) meanwhile; see {@link finishHelped}. */
    helper?: EmitHelper,
  ): Promise<BalanceResult> {
    // A column mapping renames fields the bytes still hold under their input names.
    if (this.config.nearDedup || this.mapped) {
      const text: RangeLoader = async (ranges) => {
        const got = await load(ranges);
        return ranges.map((_, i) => got.text(i));
      };
      return this.finishInto((line, split) => sink.line(line, split), text);
    }
    const sel = this.select();
    const shares = splitShares(this.config);
    // A split reads every line's conversation before the first is written: all here.
    if (helper && sel.picked.length >= MIN_HELPED_LINES && shares[1] === 0 && shares[2] === 0)
      return this.finishHelped(sel, sink, load, bytes, helper);
    const pending = [...new Set(sel.picked.map((p) => p.entry))]
      .filter((e) => e.row === null && e.line === null)
      .sort((a, b) => a.at - b.at);
    const lines = await load(pending.map((e) => ({ at: e.at, len: e.len })));
    return this.build(sel, undefined, (w) => this.rawOut(sink, lines, pending, bytes, w));
  }

  /**
   * {@link finishRawInto} with the picked lines split by file position: the later part
   * ({@link HELPER_SHARE}) loaded and emitted by `helper` (a worker thread) meanwhile,
   * in key order, chunk by chunk; this thread writes every line in key order, emitting
   * its own as it goes and copying the helper's, and profiles them all (a declined line
   * the exact way). The same bytes as without a helper.
   */
  private async finishHelped(
    sel: Selection,
    sink: RawDatasetSink,
    load: ByteLoader,
    opts: EmitterOptions,
    helper: EmitHelper,
  ): Promise<BalanceResult> {
    sel.picked = sortByKey(sel.picked);
    const { batches, side } = this.emitBatches(sel.picked, this.weights(sel.available));
    const theirs = helper(batches[1]);
    theirs.catch(() => undefined); // awaited below, after this thread's own read
    const mine = { batch: batches[0], lines: await load(batchRanges(batches[0])) };
    const next = await theirs;
    return this.build(sel, undefined, () => this.batchOut(sink, side, mine, opts, next));
  }

  /**
   * The two batches of {@link finishHelped}: the input lines of the picked rows kept as
   * byte ranges, in file order, cut at {@link HELPER_SHARE}; and for each picked row (key
   * order) its batch: 0, 1, or 2 for a row held in memory (made the exact way here).
   * Positions are found by sorting them as numbers (no Map or Set of entries).
   */
  private emitBatches(picked: Selection['picked'], weights: Record<string, { weight: number }>) {
    const n = picked.length;
    const ats = new Float64Array(n).fill(-1);
    const lens = new Float64Array(n);
    const cellOf = new Int32Array(n);
    const cells = new Map<Cell, number>();
    const cellList: Uint8Array[] = [];
    // One pass over the entries (scattered in memory), the rest over typed arrays.
    picked.forEach(({ entry: e }, j) => {
      if (e.row !== null || e.line !== null) return;
      ats[j] = e.at;
      lens[j] = e.len;
      let cell = cells.get(e.cell);
      if (cell === undefined) {
        cells.set(e.cell, (cell = cellList.length));
        cellList.push(cellBytes(e.cell.strata, weights[e.cell.key]!.weight));
      }
      cellOf[j] = cell;
    });
    const pos = ats.slice().sort();
    let u = 0; // distinct positions, compacted in place
    for (let i = 0; i < n; i++)
      if (pos[i]! >= 0 && (u === 0 || pos[i] !== pos[u - 1])) pos[u++] = pos[i]!;
    const at = pos.subarray(0, u);
    const len = new Float64Array(u);
    const half = Math.round(u * (1 - HELPER_SHARE));
    const cols = [0, 1].map(() => ({
      line: new Int32Array(n),
      cell: new Int32Array(n),
      id: [] as (string | null)[],
      copyOf: [] as (string | null)[],
    }));
    const side = new Uint8Array(n);
    picked.forEach((p, j) => {
      if (ats[j]! < 0) return void (side[j] = 2);
      const k = rankOf(at, ats[j]!);
      len[k] = lens[j]!;
      const c = cols[(side[j] = k < half ? 0 : 1)]!;
      c.line[c.id.length] = k < half ? k : k - half;
      c.cell[c.id.length] = cellOf[j]!;
      c.id.push(p.copyOf === undefined ? null : p.id);
      c.copyOf.push(p.copyOf ?? null);
    });
    const batch = (b: number, from: number, to: number): EmitBatch => ({
      at: at.slice(from, to),
      len: len.slice(from, to),
      line: cols[b]!.line.slice(0, cols[b]!.id.length),
      cell: cols[b]!.cell.slice(0, cols[b]!.id.length),
      id: cols[b]!.id,
      copyOf: cols[b]!.copyOf,
      cells: cellList,
    });
    return { batches: [batch(0, 0, half), batch(1, half, u)] as const, side };
  }

  /** Writes the lines of {@link finishHelped} in key order: this thread's emitted here, the helper's copied. */
  private batchOut(
    sink: RawDatasetSink,
    side: Uint8Array,
    mine: { batch: EmitBatch; lines: LineBytes },
    opts: EmitterOptions,
    theirs: () => EmittedBatch,
  ): LineOut {
    const em = new DatasetLineEmitter(opts);
    const { batch, lines } = mine;
    const exact = (e: Entry) => e.row ?? this.reshape(JSON.parse(e.line!) as AnnotatedRow);
    const parsed = (text: string) => this.reshape(JSON.parse(text) as AnnotatedRow);
    const signals = {} as EmittedSignals;
    let chunk: EmittedBatch | null = null;
    let i = 0; // the next line of `chunk`
    let m = 0; // the next line of `batch`
    let j = 0; // the next picked row
    return {
      parts: exact, // only a split reads them, and a split is never helped
      put: (p, split, weight) => {
        const s = side[j++]!;
        if (s === 2) return sink.line(datasetLineOf(exact(p.entry), p, weight), split);
        if (s === 0) {
          const k = batch.line[m]!;
          const cell = batch.cells[batch.cell[m++]!]!;
          const id = p.copyOf === undefined ? null : p.id;
          const n = em.emit(lines.bytes, lines.start(k), lines.end(k), id, cell, p.copyOf);
          if (n < 0) return sink.line(datasetLineOf(parsed(lines.text(k)), p, weight), split);
          sink.profile(em.signals);
          return sink.raw(em.out, 0, n, split);
        }
        if (chunk === null || i === chunk.ends.length) [chunk, i] = [theirs(), 0];
        const text = chunk.declined.get(i);
        if (text !== undefined) {
          i++;
          return sink.line(datasetLineOf(parsed(text), p, weight), split);
        }
        sink.profile(signalsAt(chunk, i, signals));
        sink.raw(chunk.bytes, i === 0 ? 0 : chunk.ends[i - 1]!, chunk.ends[i++]!, split);
      },
    };
  }

  private async loadPicked(sel: Selection, load: RangeLoader): Promise<void> {
    await this.loadEntries(
      sel.picked.map((p) => p.entry),
      load,
    );
  }

  /** The near-duplicate walk reads every retained candidate's message: load them all. */
  private async loadCandidates(load: RangeLoader): Promise<void> {
    const all: Entry[] = [];
    for (const c of this.cellList) for (const e of c.candidates.items) if (!e.dead) all.push(e);
    await this.loadEntries(all, load);
  }

  private async loadEntries(entries: readonly Entry[], load: RangeLoader): Promise<void> {
    const pending = [...new Set(entries)]
      .filter((e) => e.row === null && e.line === null)
      .sort((a, b) => a.at - b.at);
    if (pending.length === 0) return;
    const lines = await load(pending.map((e) => ({ at: e.at, len: e.len })));
    pending.forEach((e, i) => (e.line = lines[i] ?? null));
  }

  private readonly cellsOf = (label: Label): Cell[] =>
    this.cellList
      .filter((c) => c.label === label)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  private select() {
    const available: [number, number] = [0, 0];
    for (const c of this.cellList) available[c.label] += c.supply;
    if (available[0] + available[1] === 0) throw this.noRows();
    if (!this.config.nearDedup) {
      const plan = this.plan((c) => c.supply);
      const chosen = new Map<Cell, Entry[]>();
      for (const [c, q] of plan.quotas) chosen.set(c, this.selectFrom(c, q));
      return { available, cellsOf: this.cellsOf, near: null, ...this.pickFrom(plan, chosen) };
    }
    return { available, cellsOf: this.cellsOf, ...this.selectNear() };
  }

  private noRows(): NoValidRowsError {
    const cfg = this.config;
    const q = this.quarantinedTotal();
    if (q > 0 && this.offered === 0) {
      const top = Object.entries(this.quarantineFields)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 3)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      const first = Object.entries(this.quarantineFields).sort((a, b) => b[1] - a[1])[0]![0];
      const [reason, field] = first.split(' ');
      const strata =
        reason === 'missing_field' && field
          ? strataNeeding(field).filter((st) => cfg.stratify.includes(st as never))
          : [];
      const hint = strata.length
        ? ` (${field} is read by --stratify ${strata.join(',')}; without strata: --stratify "")`
        : '';
      return new NoValidRowsError(
        `no valid rows to balance: all ${q} rows quarantined: ${top} — see quarantine.jsonl${hint}`,
      );
    }
    return new NoValidRowsError(
      `no valid rows to balance: ${this.offered + this.quarantinedTotal()} row(s) read, ${this.quarantinedTotal()} quarantined, ` +
        `${this.outOfStrata} outside the strata (turn-count buckets ${cfg.buckets
          .map((b) => `${b.name} ${b.min}-${b.max}`)
          .join(', ')})`,
    );
  }

  /** Class targets after the shortfall policy, for this supply per cell. */
  private classPlan(available: [number, number]) {
    const cfg = this.config;
    const [n0, n1] = this.targets;
    const classShortfalls: ClassShortfall[] = [];
    let deliver: [number, number] = [n0, n1];
    if (available[0] >= n0 && available[1] >= n1) return { deliver, classShortfalls };
    if (cfg.onShortfall === 'fail') {
      throw new ShortfallError(
        `not enough samples for ${cfg.total} at ratio ${cfg.ratio}: reasoning ${available[0]} of ${n0}, ` +
          `non_reasoning ${available[1]} of ${n1} (use --on-shortfall shrink or upsample)`,
      );
    }
    if (cfg.onShortfall === 'shrink') deliver = shrinkTargets(cfg.total, cfg.ratio, available);
    const short = (label: Label, action: ClassShortfall['action']) =>
      classShortfalls.push({
        label,
        labelName: LABEL_NAMES[label],
        target: this.targets[label],
        available: available[label],
        delivered: deliver[label],
        action,
      });
    for (const label of [0, 1] as const) {
      if (available[label] >= this.targets[label]) continue;
      short(label, cfg.onShortfall === 'shrink' ? 'shrunk' : 'upsampled');
    }
    // The class with room also shrinks to keep the ratio exact: report it too.
    if (cfg.onShortfall === 'shrink')
      for (const label of [0, 1] as const)
        if (available[label] >= this.targets[label] && deliver[label] < this.targets[label])
          short(label, 'shrunk');
    return { deliver, classShortfalls };
  }

  /** Quotas per cell for this supply per cell (the allocation), and the shortfalls. */
  private plan(supplyOf: (c: Cell) => number) {
    const available: [number, number] = [0, 0];
    for (const c of this.cellList) available[c.label] += supplyOf(c);
    const { deliver, classShortfalls } = this.classPlan(available);
    const stratumShortfalls: StratumShortfall[] = [];
    const quotas = new Map<Cell, number>();
    const real: [number, number] = [0, 0];
    for (const label of [0, 1] as const) {
      const cells = this.cellsOf(label);
      const supply = cells.map(supplyOf);
      const weights = allocationWeights(this.config.allocation, supply);
      real[label] = Math.min(deliver[label], available[label]);
      const q = allocate(real[label], supply, weights);
      const nominal = nominalShares(real[label], weights);
      cells.forEach((cell, i) => {
        quotas.set(cell, q[i]!);
        if (supply[i]! < nominal[i]!) {
          stratumShortfalls.push({
            label,
            stratum: cell.key,
            nominal: Math.round(nominal[i]! * 100) / 100,
            available: supply[i]!,
            selected: q[i]!,
            action: 'redistributed',
          });
        }
      });
    }
    return { deliver, real, classShortfalls, stratumShortfalls, quotas };
  }

  /** The chosen rows per cell, plus the upsampled copies a class short of its target needs. */
  private pickFrom(plan: ReturnType<StreamingBalancer['plan']>, chosen: Map<Cell, Entry[]>) {
    /** Selected rows and upsampled copies (a copy has its own id and key). */
    const picked: { entry: Entry; id: string; key: number; tie: number; copyOf?: string }[] = [];
    const selectedByLabelStratum: Record<string, Record<string, number>> = { '0': {}, '1': {} };
    let upsampled = 0;
    for (const label of [0, 1] as const) {
      const classPicked: Entry[] = [];
      for (const cell of this.cellsOf(label)) {
        const got = chosen.get(cell) ?? [];
        classPicked.push(...got);
        selectedByLabelStratum[label]![cell.key] = got.length;
      }
      for (const e of classPicked) picked.push({ entry: e, id: e.id, key: e.key, tie: e.tie });
      // Upsampling: the seed's sampling with replacement, made deterministic and visible.
      const missing = plan.deliver[label] - plan.real[label];
      if (missing > 0 && classPicked.length > 0) {
        classPicked.sort((a, b) => (before(a, b) ? -1 : 1));
        for (let j = 0; j < missing; j++) {
          const src = classPicked[j % classPicked.length]!;
          const copyId = `${src.id}#dup${Math.floor(j / classPicked.length) + 1}`;
          const [h, l] = hash64(copyId, this.seedKey);
          picked.push({ entry: src, id: copyId, key: keyOf(h, l), tie: l & 0x7ff, copyOf: src.id });
          selectedByLabelStratum[label]![src.cell.key]! += 1;
          upsampled++;
        }
      }
    }
    return {
      deliver: plan.deliver,
      classShortfalls: plan.classShortfalls,
      stratumShortfalls: plan.stratumShortfalls,
      picked,
      selectedByLabelStratum,
      upsampled,
    };
  }

  /** Dedup settings of the near-duplicate walk: the keep key is the sampling key. */
  private dedupOptions(mode: 'greedy' | 'cluster'): DedupOptions {
    return parseDedupOptions({
      threshold: this.config.dedupThreshold,
      seed: this.config.seed,
      mode,
    });
  }

  /** The user message of a candidate as it goes into the dataset line. */
  private messageOf(e: Entry): string {
    if (e.row === null && e.line === null) {
      throw new Error('candidates were kept as byte ranges: finish with a loader');
    }
    return (e.row ?? this.reshape(JSON.parse(e.line!) as AnnotatedRow)).userMessage;
  }

  /**
   * Selection with near-duplicate removal (docs/dedup.md "In the build"): quotas from
   * the supply, then {@link walk}. A cell left short while rows of it were dropped
   * cannot be proven: NearDedupRefillError asks the driver for a wider margin. A cell
   * left short with its whole population walked delivers what it has: its supply is
   * lowered to that and the quotas recomputed, until nothing changes.
   */
  private selectNear() {
    const o = this.dedupOptions('greedy');
    const signer = signerFor(o);
    const sigs = new Map<Entry, Int32Array>();
    const signature = (e: Entry): Int32Array => {
      let s = sigs.get(e);
      if (s === undefined) sigs.set(e, (s = signer.sign(this.messageOf(e))));
      return s;
    };
    const eff = new Map<Cell, number>(this.cellList.map((c) => [c, c.supply]));
    /** Cells whose whole population is walked and delivered less than its supply. */
    const lowered = new Set<Cell>();
    for (;;) {
      const plan = this.plan((c) => eff.get(c)!);
      const walk = this.walk(plan.quotas, o, signature, lowered);
      const refill: { cell: Cell; missing: number; tried: number; got: number }[] = [];
      let lower = false;
      for (const [cell, q] of plan.quotas) {
        const got = walk.chosen.get(cell)?.length ?? 0;
        if (got >= q) continue;
        if (cell.candidates.minDropped !== null) {
          refill.push({ cell, missing: q - got, tried: walk.tried.get(cell) ?? 0, got });
        } else {
          eff.set(cell, got);
          lowered.add(cell);
          lower = true;
        }
      }
      if (refill.length > 0) throw this.refillError(refill);
      if (lower) continue;
      const byLabelStratum: Record<string, Record<string, number>> = { '0': {}, '1': {} };
      for (const label of [0, 1] as const)
        for (const c of this.cellsOf(label)) byLabelStratum[label]![c.key] = 0;
      for (const r of walk.removed) byLabelStratum[r.cell.label]![r.cell.key]! += 1;
      const near: NearDuplicatesManifest = {
        threshold: o.threshold,
        removed: walk.removed.length,
        byLabelStratum,
        passes: this.pass,
        note: NEAR_NOTE,
      };
      const duplicates = walk.removed.map((r) => ({
        id: r.id,
        keptId: r.keptId,
        similarity: r.similarity,
      }));
      return { ...this.pickFrom(plan, walk.chosen), near: { manifest: near, duplicates } };
    }
  }

  /**
   * One walk over every cell's retained candidates in ONE global sampling-key order:
   * a candidate that is a verified near-duplicate of an already selected sample is
   * removed; otherwise it is selected while its cell is under quota, else skipped.
   * Only selected samples are indexed; a cell's candidates stop at its smallest
   * dropped key (nothing past it is proven to be the next). A `lowered` cell (its
   * whole population retained) is walked to the end, so its removals are all counted.
   */
  private walk(
    quotas: Map<Cell, number>,
    o: DedupOptions,
    signature: (e: Entry) => Int32Array,
    lowered: ReadonlySet<Cell>,
  ) {
    const all: Entry[] = [];
    for (const [cell, q] of quotas) {
      if (q === 0) continue;
      const d = cell.candidates.minDropped;
      for (const e of cell.candidates.sorted()) {
        if (d !== null && !before(e, d)) break;
        all.push(e);
      }
    }
    all.sort((a, b) => (before(a, b) ? -1 : 1));
    const g = new GreedyDeduper(o);
    const chosen = new Map<Cell, Entry[]>();
    const tried = new Map<Cell, number>();
    const removed: (NearDuplicate & { cell: Cell })[] = [];
    for (const e of all) {
      let got = chosen.get(e.cell);
      if (got === undefined) chosen.set(e.cell, (got = []));
      if (got.length >= quotas.get(e.cell)!) {
        const d = lowered.has(e.cell) ? g.duplicateOf(signature(e)) : undefined;
        if (d)
          removed.push({
            id: e.id,
            keptId: d.keptId,
            similarity: round6(d.similarity),
            cell: e.cell,
          });
        continue;
      }
      tried.set(e.cell, (tried.get(e.cell) ?? 0) + 1);
      const keptId = g.offer(e.id, signature(e));
      if (keptId === undefined) got.push(e);
      else removed.push({ id: e.id, keptId, similarity: round6(g.lastSimilarity), cell: e.cell });
    }
    return { chosen, tried, removed };
  }

  /** How many more candidates the short cells need (from the removal rate seen, with headroom). */
  private refillError(
    short: { cell: Cell; missing: number; tried: number; got: number }[],
  ): NearDedupRefillError {
    const cells = short.map((s) => {
      const kept = s.tried === 0 ? 0.5 : Math.max(0.05, s.got / s.tried);
      const need = Math.ceil((1.5 * s.missing) / kept) + CAP_MARGIN;
      return { label: s.cell.label, stratum: s.cell.key, missing: s.missing, need };
    });
    const most = Math.max(...cells.map((c) => c.need));
    const margin = Math.max(2 * this.margin, this.margin + most);
    const names = cells
      .map((c) => `${LABEL_NAMES[c.label]}/${c.stratum} ${c.missing} short`)
      .join(', ');
    return new NearDedupRefillError(
      `near-duplicate removal used up the retained candidates of ${names}: scan again with margin ${margin}`,
      margin,
      cells,
    );
  }

  /** Strategy 4: inverse-frequency weight of each stratum over the distinct input. */
  private weights(available: [number, number]): Record<string, { share: number; weight: number }> {
    const totalSupply = available[0] + available[1];
    const stratumSupply = new Map<string, number>();
    for (const c of this.cellList)
      stratumSupply.set(c.key, (stratumSupply.get(c.key) ?? 0) + c.supply);
    const weights: Record<string, { share: number; weight: number }> = {};
    for (const k of [...stratumSupply.keys()].sort()) {
      const share = stratumSupply.get(k)! / totalSupply;
      weights[k] = { share: round6(share), weight: round6(1 / share) };
    }
    return weights;
  }

  /** Dataset lines made the exact way: each row parsed, toDatasetLine, to `sink` or collected. */
  private exactOut(
    sel: Selection,
    sink: DatasetSink | undefined,
    out: Record<SplitName, DatasetLine[]>,
  ): LineOut {
    for (const p of sel.picked) {
      if (p.entry.row === null && p.entry.line === null) {
        throw new Error('selected rows were kept as byte ranges: finish with a loader');
      }
    }
    // Parsed on the spot and not kept: an upsampled copy parses its source again.
    const rowOf = (e: Entry) => e.row ?? this.reshape(JSON.parse(e.line!) as AnnotatedRow);
    return {
      parts: rowOf,
      put: (p, split, weight) => {
        const e = p.entry;
        const row = rowOf(e);
        if (sink && sel.upsampled === 0) e.line = null; // no copy needs it again: let it go
        const line = datasetLineOf(row, p, weight);
        if (sink) sink(line, split);
        else out[split].push(line);
      },
    };
  }

  /**
   * Dataset lines written from the input's bytes (shared/balance/emit.ts), a line the
   * emitter declines (or a row not kept as a byte range) the exact way.
   */
  private rawOut(
    sink: RawDatasetSink,
    lines: LineBytes,
    pending: readonly Entry[],
    opts: EmitterOptions,
    weights: Record<string, { weight: number }>,
  ): LineOut {
    const em = new DatasetLineEmitter(opts);
    const index = new Map<Entry, number>();
    pending.forEach((e, i) => index.set(e, i));
    const cells = new Map<Cell, Uint8Array>();
    const cellOf = (c: Cell) => {
      let cb = cells.get(c);
      if (cb === undefined) cells.set(c, (cb = cellBytes(c.strata, weights[c.key]!.weight)));
      return cb;
    };
    const exactRow = (e: Entry): AnnotatedRow => {
      const k = index.get(e);
      if (k !== undefined) return this.reshape(JSON.parse(lines.text(k)) as AnnotatedRow);
      if (e.row === null && e.line === null) throw new Error('a selected row was not loaded');
      return e.row ?? this.reshape(JSON.parse(e.line!) as AnnotatedRow);
    };
    return {
      parts: (e) => {
        const k = index.get(e);
        const f = k === undefined ? null : em.fields(lines.bytes, lines.start(k), lines.end(k));
        return f ?? exactRow(e);
      },
      put: (p, split, weight) => {
        const e = p.entry;
        const k = index.get(e);
        if (k !== undefined) {
          // A selected row's id is its own (written from its bytes); a copy's is new.
          const id = p.copyOf === undefined ? null : p.id;
          const n = em.emit(
            lines.bytes,
            lines.start(k),
            lines.end(k),
            id,
            cellOf(e.cell),
            p.copyOf,
          );
          if (n >= 0) {
            sink.profile(em.signals);
            return sink.raw(em.out, 0, n, split);
          }
        }
        sink.line(datasetLineOf(exactRow(e), p, weight), split);
      },
    };
  }

  /** Writes the selection (sorted by sampling key) through `emit`, split; returns the manifest's split section. */
  private writeLines(sel: Selection, weights: Record<string, { weight: number }>, emit: LineOut) {
    const picked = sortByKey(sel.picked);
    const splits = this.assignSplits(picked, (e) => emit.parts(e));
    const counts: Record<SplitName, number> = { train: 0, validation: 0, test: 0 };
    const conversations: Record<SplitName, Set<string>> = {
      train: new Set(),
      validation: new Set(),
      test: new Set(),
    };
    for (const p of picked) {
      const split = splits ? splits.assignment.get(p.id)! : 'train';
      counts[split]++;
      // Without a split every line is train: only the held-out conversations are counted.
      if (splits) conversations[split].add(splits.conversation.get(p.entry)!);
      emit.put(p, split, weights[p.entry.cell.key]!.weight);
    }
    const cfg = this.config;
    const splitManifest: SplitManifest = {
      train: counts.train,
      validation: counts.validation,
      validationConversations: conversations.validation.size,
    };
    if (splits) {
      if ((cfg.test ?? 0) > 0) {
        splitManifest.test = counts.test;
        splitManifest.testConversations = conversations.test.size;
      }
      splitManifest.shares = splitShares(cfg).map(round6) as [number, number, number];
      splitManifest.byLabel = splits.counts;
      splitManifest.targets = splits.targets;
      splitManifest.deviation = splits.deviation;
      splitManifest.groups = splits.groups;
    }
    return splitManifest;
  }

  private build(
    sel: Selection,
    sink?: DatasetSink,
    raw?: (weights: Record<string, { weight: number }>) => LineOut,
  ): BalanceResult {
    const out: Record<SplitName, DatasetLine[]> = { train: [], validation: [], test: [] };
    const weights = this.weights(sel.available);
    const emit = raw ? raw(weights) : this.exactOut(sel, sink, out);
    const splitManifest = this.writeLines(sel, weights, emit);
    return {
      train: out.train,
      validation: out.validation,
      test: out.test,
      duplicates: sel.near ? sel.near.duplicates : [],
      manifest: this.manifestOf(sel, weights, splitManifest),
    };
  }

  private manifestOf(
    sel: Selection,
    weights: Record<string, { share: number; weight: number }>,
    split: SplitManifest,
  ): BalanceManifest {
    const cfg = this.config;
    const { available, picked, near } = sel;
    const [n0, n1] = this.targets;
    const byLabelStratum: BalanceManifest['input']['byLabelStratum'] = { '0': {}, '1': {} };
    for (const label of [0, 1] as const)
      for (const c of sel.cellsOf(label))
        byLabelStratum[label]![c.key] = { rows: c.rows, unique: c.supply };
    const selectedByLabel = { '0': 0, '1': 0 };
    for (const p of picked) selectedByLabel[p.entry.cell.label === 0 ? '0' : '1']++;
    const quarantineByReason = Object.fromEntries(Object.entries(this.quarantineCounts).sort());
    return {
      config: cfg,
      seed: cfg.seed,
      input: {
        rows: this.offered + this.quarantinedTotal(),
        valid: this.valid,
        quarantined: this.quarantinedTotal(),
        outOfStrata: this.outOfStrata,
        duplicatesRemoved: this.duplicatesRemoved,
        byLabel: { '0': available[0], '1': available[1] },
        byLabelStratum,
      },
      quarantine: { total: this.quarantinedTotal(), byReason: quarantineByReason },
      targets: { total: cfg.total, byLabel: { '0': n0, '1': n1 } },
      selected: {
        total: picked.length,
        byLabel: selectedByLabel,
        byLabelStratum: sel.selectedByLabelStratum,
        upsampled: sel.upsampled,
      },
      shortfalls: { classes: sel.classShortfalls, strata: sel.stratumShortfalls },
      weights,
      split,
      ...(near ? { nearDuplicates: near.manifest } : {}),
    };
  }

  /** A kept line parsed again gets the renames and defaults it had when it was checked. */
  private reshape(row: AnnotatedRow): AnnotatedRow {
    shapeRow(row, this.shape);
    return row;
  }

  /**
   * Splits the selection (shared/split assignSplits) when the config holds out
   * validation or test: grouped by conversation, the class ratio per split exact where
   * the groups allow; null when everything is train. Depends on ids, labels,
   * conversations and the seed only, so any input order gives the same split.
   */
  private assignSplits(
    picked: readonly { entry: Entry; id: string }[],
    partsOf: (e: Entry) => Parts,
  ) {
    const shares = splitShares(this.config);
    if (shares[1] === 0 && shares[2] === 0) return null;
    const conversation = new Map<Entry, string>();
    const input = picked.map((p) => {
      let c = conversation.get(p.entry);
      if (c === undefined) {
        c = partsOf(p.entry).conversationId;
        conversation.set(p.entry, c);
      }
      return { id: p.id, conversationId: c, label: p.entry.cell.label };
    });
    // Near-dedup off: near-duplicate clusters of the selection keep a pair in one split
    // (on, the walk left no verified pair in the selection).
    if (!this.config.nearDedup) {
      const o = this.dedupOptions('cluster');
      const signer = signerFor(o);
      const signed = picked.map((p) => ({
        id: p.id,
        signature: signer.sign((p.entry.row ?? partsOf(p.entry)).userMessage),
      }));
      const { clusterOf } = dedupSignatures(signed, o);
      for (const s of input) {
        const k = clusterOf.get(s.id);
        if (k !== undefined) (s as { clusterId?: string }).clusterId = k;
      }
    }
    return { ...assignSplits(input, shares, this.config.seed), conversation };
  }

  /**
   * The q smallest keys of a cell, after proving no dropped row belonged among them:
   * the q-th smallest key found by quickselect over the keys, and only the candidates
   * up to it sorted (the order and checks of sorting them all).
   */
  private selectFrom(cell: Cell, q: number): Entry[] {
    if (q === 0) return [];
    const items = cell.candidates.items;
    const live: Entry[] = [];
    const keys = new Float64Array(items.length);
    for (const c of items) if (!c.dead) keys[live.push(c) - 1] = c.key;
    let upTo = live;
    if (q < live.length) {
      const kth = nthSmallest(keys.slice(0, live.length), q - 1);
      upTo = live.filter((_, i) => keys[i]! <= kth);
    }
    const sorted = sortByKey(upTo);
    const last = sorted[q - 1];
    const dropped = cell.candidates.minDropped;
    if (last === undefined || (dropped !== null && before(dropped, last))) {
      throw new InexactSelectionError(
        `stratum ${LABEL_NAMES[cell.label]}/${cell.key}: deduplication replaced ${cell.revoked} retained ` +
          `sample(s), more than the streaming margin absorbs; rerun with --no-dedup or dedupe the input first`,
      );
    }
    return sorted.slice(0, q);
  }
}

/** The k-th smallest of `a` (0-based), rearranging it (quickselect, median-of-three pivot). */
export function nthSmallest(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    const x = a[lo]!;
    const y = a[mid]!;
    const z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}

/**
 * The largest total T ≤ `total` whose exact split round(T·r) / T − round(T·r) fits
 * the available supply of each class.
 */
export function shrinkTargets(
  total: number,
  ratio: number,
  available: readonly [number, number],
): [number, number] {
  let t = total;
  if (ratio > 0) t = Math.min(t, Math.floor(available[0] / ratio) + 1);
  if (ratio < 1) t = Math.min(t, Math.floor(available[1] / (1 - ratio)) + 1);
  for (; t > 0; t--) {
    const [a, b] = classTargets(t, ratio);
    if (a <= available[0] && b <= available[1]) return [a, b];
  }
  return [0, 0];
}
