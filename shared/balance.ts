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
  type AnnotatedRow,
  type DatasetLine,
  type Label,
  type QuarantineReason,
} from './contracts';
import { allocate, allocationWeights, nominalShares, waterLevel } from './allocation';
import { classTargets, type BalanceConfig } from './config';
import { sampleIdOf, toDatasetLine } from './dataset';
import { InexactSelectionError, NoValidRowsError, ShortfallError } from './errors';
import { FingerprintTable, GrowableColumns } from './fptable';
import { hash64, seed32, unitHash } from './hash';
import { MaxHeap, type HeapItem } from './heap';
import { compileStrata, type CompiledStrata, type Strata } from './strata';

/** A row set aside, with where it was and why. */
export interface QuarantineRecord {
  line: number;
  reason: QuarantineReason;
  field?: string;
  detail: string;
  /** The start of the offending line, for a human to look at. */
  raw: string;
}

interface Entry extends HeapItem {
  key: number;
  tie: number;
  id: string;
  row: AnnotatedRow;
  cell: Cell;
  group: number;
}

interface Cell {
  index: number;
  label: Label;
  key: string;
  strata: Strata;
  /** Rows seen (after exclusion by stratum, before dedup). */
  rows: number;
  /** Distinct rows available: what allocation works with. */
  supply: number;
  heap: MaxHeap<Entry>;
  cap: number;
  /** Retained entries removed because a duplicate with a smaller key replaced them. */
  revoked: number;
  minEvictedKey: number;
  minEvictedTie: number;
}

const less = (
  a: { key: number; tie: number; id: string },
  b: { key: number; tie: number; id: string },
) => a.key < b.key || (a.key === b.key && (a.tie < b.tie || (a.tie === b.tie && a.id < b.id)));

/** Candidates kept beyond the provable bound, to absorb dedup replacements. */
const CAP_MARGIN = 64;
/** Rows between recomputations of the per-cell bounds (stale bounds are safe: higher). */
const RECAP_EVERY = 4096;

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
  split: { train: number; validation: number; validationConversations: number };
}

export interface BalanceResult {
  train: DatasetLine[];
  validation: DatasetLine[];
  manifest: BalanceManifest;
}

/** The sampling key in [0, 1) from the two lanes of an id's hash (53 bits). */
const keyOf = (hi: number, lo: number) => (hi * 2 ** 21 + (lo >>> 11)) / 2 ** 53;

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

export class StreamingBalancer {
  /** Cells by label × stratum code: index label * strata.size + code. */
  private readonly cells: (Cell | undefined)[] = [];
  private readonly compiled: CompiledStrata;
  private readonly cellList: Cell[] = [];
  private readonly seedKey: number;
  private readonly seedSplit: number;
  private readonly targets: [number, number];
  private readonly sampleIds = new FingerprintTable();
  private readonly groups = new FingerprintTable();
  private readonly reps = new GrowableColumns();
  private readonly retainedByGroup = new Map<number, Entry>();
  private sinceRecap = 0;
  private offered = 0;
  private valid = 0;
  private outOfStrata = 0;
  private duplicatesRemoved = 0;
  private readonly quarantineCounts: Record<string, number> = {};

  constructor(readonly config: BalanceConfig) {
    const s = seed32(config.seed);
    this.seedKey = s;
    this.seedSplit = (s ^ 0xc2b2ae35) >>> 0;
    this.targets = classTargets(config.total, config.ratio);
    this.compiled = compileStrata(config.stratify, config);
  }

  /** Rows seen so far (offered plus quarantined), for progress reports. */
  get progress(): { rows: number; valid: number; quarantined: number } {
    const quarantined = this.quarantinedTotal();
    return { rows: this.offered + quarantined, valid: this.valid, quarantined };
  }

  /**
   * Parses, validates and offers one JSONL line. Returns the quarantine record when
   * the line is set aside (the caller writes it), null otherwise. Blank lines are skipped.
   */
  addLine(line: string, lineNo: number): QuarantineRecord | null {
    if (line.length === 0 || line.trim().length === 0) return null;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return this.quarantine(lineNo, line, { reason: 'invalid_json' }, undefined);
    }
    const problem = checkAnnotated(value, this.config.maxMessageChars);
    if (problem) return this.quarantine(lineNo, line, problem, value);
    const dup = this.offer(value as AnnotatedRow);
    if (dup)
      return this.quarantine(
        lineNo,
        line,
        { reason: 'duplicate_sample_id', field: 'sampleId' },
        value,
      );
    return null;
  }

  /**
   * Offers an already validated row (for callers that validated it themselves).
   * Returns true when its sampleId was seen before (the row is then ignored).
   */
  offer(row: AnnotatedRow): boolean {
    this.offered++;
    const id = sampleIdOf(row);
    // One 64-bit hash of the id: 53 bits make the sampling key, the other 11 a
    // tie-breaker, all 64 the fingerprint that catches a repeated sampleId.
    const [idHi, idLo] = hash64(id, this.seedKey);
    if (!this.sampleIds.intern(idHi, idLo).isNew) return true;
    this.valid++;
    const code = this.compiled.code(row);
    if (code < 0) {
      this.outOfStrata++;
      return false;
    }
    const cell = this.cells[row.label * this.compiled.size + code] ?? this.newCell(row.label, code);
    cell.rows++;
    const key = keyOf(idHi, idLo);
    const tie = idLo & 0x7ff;
    let group = -1;
    if (this.config.dedup) {
      const [mHi, mLo] = hash64(row.userMessage, 0x2545f491);
      const g = this.groups.intern(mHi, mLo);
      group = g.id;
      const reps = this.reps;
      if (!g.isNew) {
        this.duplicatesRemoved++;
        const rk = reps.keys[group]!;
        const rt = reps.ties[group]!;
        if (key > rk || (key === rk && tie >= rt)) return false;
        // The newcomer sorts first: it becomes the group's representative.
        const old = this.cellList[reps.cells[group]!]!;
        old.supply--;
        const retained = this.retainedByGroup.get(group);
        if (retained) {
          old.heap.remove(retained);
          this.retainedByGroup.delete(group);
          old.revoked++;
        }
      } else {
        reps.ensure(group);
      }
      reps.keys[group] = key;
      reps.ties[group] = tie;
      reps.cells[group] = cell.index;
    }
    cell.supply++;
    this.insert(cell, key, tie, id, row, group);
    if (++this.sinceRecap >= RECAP_EVERY) this.recap();
    return false;
  }

  /** Counts a row the caller quarantined itself (e.g. an unreadable line upstream). */
  recordQuarantine(reason: QuarantineReason): void {
    this.quarantineCounts[reason] = (this.quarantineCounts[reason] ?? 0) + 1;
  }

  private quarantine(
    lineNo: number,
    line: string,
    problem: { reason: QuarantineReason; field?: string },
    value: unknown,
  ): QuarantineRecord {
    this.quarantineCounts[problem.reason] = (this.quarantineCounts[problem.reason] ?? 0) + 1;
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

  private newCell(label: Label, code: number): Cell {
    const cell: Cell = {
      index: this.cellList.length,
      label,
      key: this.compiled.key(code),
      strata: this.compiled.strata(code),
      rows: 0,
      supply: 0,
      heap: new MaxHeap<Entry>(less),
      cap: this.targets[label],
      revoked: 0,
      minEvictedKey: Infinity,
      minEvictedTie: 0,
    };
    this.cells[label * this.compiled.size + code] = cell;
    this.cellList.push(cell);
    this.recap();
    return cell;
  }

  private insert(
    cell: Cell,
    key: number,
    tie: number,
    id: string,
    row: AnnotatedRow,
    group: number,
  ): void {
    const heap = cell.heap;
    if (heap.size >= cell.cap + CAP_MARGIN + 2 * cell.revoked) {
      const top = heap.peek()!;
      if (!(
        key < top.key ||
        (key === top.key && (tie < top.tie || (tie === top.tie && id < top.id)))
      )) {
        this.noteEvicted(cell, key, tie);
        return;
      }
      // Reuse the evicted entry's object: fewer allocations on the hot path.
      if (top.group >= 0) this.retainedByGroup.delete(top.group);
      this.noteEvicted(cell, top.key, top.tie);
      top.key = key;
      top.tie = tie;
      top.id = id;
      top.row = row;
      top.group = group;
      heap.replaceTop(top);
      if (group >= 0) this.retainedByGroup.set(group, top);
      return;
    }
    const entry: Entry = { pos: -1, key, tie, id, row, cell, group };
    heap.push(entry);
    if (group >= 0) this.retainedByGroup.set(group, entry);
  }

  private noteEvicted(cell: Cell, key: number, tie: number): void {
    if (key < cell.minEvictedKey || (key === cell.minEvictedKey && tie < cell.minEvictedTie)) {
      cell.minEvictedKey = key;
      cell.minEvictedTie = tie;
    }
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
      for (const c of cells) {
        c.cap = bound;
        const limit = c.cap + CAP_MARGIN + 2 * c.revoked;
        while (c.heap.size > limit) {
          const top = c.heap.pop()!;
          if (top.group >= 0) this.retainedByGroup.delete(top.group);
          this.noteEvicted(c, top.key, top.tie);
        }
      }
    }
  }

  /** Selects, weights and splits: the dataset and its manifest. */
  finish(): BalanceResult {
    const cfg = this.config;
    const cellsOf = (label: Label) =>
      this.cellList
        .filter((c) => c.label === label)
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const available: [number, number] = [0, 0];
    for (const c of this.cellList) available[c.label] += c.supply;
    if (available[0] + available[1] === 0) {
      throw new NoValidRowsError(
        `no valid rows to balance: ${this.offered + this.quarantinedTotal()} row(s) read, ${this.quarantinedTotal()} quarantined, ` +
          `${this.outOfStrata} outside the strata (turn-count buckets ${cfg.buckets
            .map((b) => `${b.name} ${b.min}-${b.max}`)
            .join(', ')})`,
      );
    }
    const [n0, n1] = this.targets;
    const classShortfalls: ClassShortfall[] = [];
    let deliver: [number, number] = [n0, n1];
    if (available[0] < n0 || available[1] < n1) {
      if (cfg.onShortfall === 'fail') {
        throw new ShortfallError(
          `not enough samples for ${cfg.total} at ratio ${cfg.ratio}: reasoning ${available[0]} of ${n0}, ` +
            `non_reasoning ${available[1]} of ${n1} (use --on-shortfall shrink or upsample)`,
        );
      }
      if (cfg.onShortfall === 'shrink') deliver = shrinkTargets(cfg.total, cfg.ratio, available);
      for (const label of [0, 1] as const) {
        const target = this.targets[label];
        if (available[label] >= target) continue;
        classShortfalls.push({
          label,
          labelName: LABEL_NAMES[label],
          target,
          available: available[label],
          delivered: deliver[label],
          action: cfg.onShortfall === 'shrink' ? 'shrunk' : 'upsampled',
        });
      }
      if (cfg.onShortfall === 'shrink') {
        // The class with room also shrinks to keep the ratio exact: report it too.
        for (const label of [0, 1] as const) {
          if (available[label] >= this.targets[label] && deliver[label] < this.targets[label]) {
            classShortfalls.push({
              label,
              labelName: LABEL_NAMES[label],
              target: this.targets[label],
              available: available[label],
              delivered: deliver[label],
              action: 'shrunk',
            });
          }
        }
      }
    }

    const stratumShortfalls: StratumShortfall[] = [];
    const picked: { entry: Entry; copyOf?: string; copyId?: string; key: number; tie: number }[] =
      [];
    const selectedByLabelStratum: Record<string, Record<string, number>> = { '0': {}, '1': {} };
    let upsampled = 0;
    for (const label of [0, 1] as const) {
      const cells = cellsOf(label);
      const supply = cells.map((c) => c.supply);
      const weights = allocationWeights(cfg.allocation, supply);
      const real = Math.min(deliver[label], available[label]);
      const quotas = allocate(real, supply, weights);
      const nominal = nominalShares(real, weights);
      const classPicked: Entry[] = [];
      cells.forEach((cell, i) => {
        const q = quotas[i]!;
        const chosen = this.selectFrom(cell, q);
        classPicked.push(...chosen);
        selectedByLabelStratum[label]![cell.key] = q;
        if (cell.supply < nominal[i]!) {
          stratumShortfalls.push({
            label,
            stratum: cell.key,
            nominal: Math.round(nominal[i]! * 100) / 100,
            available: cell.supply,
            selected: q,
            action: 'redistributed',
          });
        }
      });
      for (const e of classPicked) picked.push({ entry: e, key: e.key, tie: e.tie });
      // Upsampling: the seed's sampling with replacement, made deterministic and visible.
      const missing = deliver[label] - real;
      if (missing > 0 && classPicked.length > 0) {
        classPicked.sort((a, b) => (less(a, b) ? -1 : 1));
        for (let j = 0; j < missing; j++) {
          const src = classPicked[j % classPicked.length]!;
          const copyId = `${src.id}#dup${Math.floor(j / classPicked.length) + 1}`;
          const [h, l] = hash64(copyId, this.seedKey);
          picked.push({ entry: src, copyOf: src.id, copyId, key: keyOf(h, l), tie: l & 0x7ff });
          selectedByLabelStratum[label]![src.cell.key]! += 1;
          upsampled++;
        }
      }
    }

    // Strategy 4: inverse-frequency weight of each stratum over the distinct input.
    const totalSupply = available[0] + available[1];
    const stratumSupply = new Map<string, number>();
    for (const c of this.cellList)
      stratumSupply.set(c.key, (stratumSupply.get(c.key) ?? 0) + c.supply);
    const weights: Record<string, { share: number; weight: number }> = {};
    for (const k of [...stratumSupply.keys()].sort()) {
      const share = stratumSupply.get(k)! / totalSupply;
      weights[k] = { share: round6(share), weight: round6(1 / share) };
    }

    picked.sort((a, b) =>
      less(
        { key: a.key, tie: a.tie, id: a.copyId ?? a.entry.id },
        { key: b.key, tie: b.tie, id: b.copyId ?? b.entry.id },
      )
        ? -1
        : 1,
    );
    const train: DatasetLine[] = [];
    const validation: DatasetLine[] = [];
    const validationConversations = new Set<string>();
    for (const p of picked) {
      const e = p.entry;
      const line = toDatasetLine(e.row, {
        id: p.copyId ?? e.id,
        strata: e.cell.strata,
        weight: weights[e.cell.key]!.weight,
        ...(p.copyOf !== undefined ? { duplicateOf: p.copyOf } : {}),
      });
      if (cfg.validation > 0 && unitHash(e.row.conversationId, this.seedSplit) < cfg.validation) {
        validation.push(line);
        validationConversations.add(e.row.conversationId);
      } else {
        train.push(line);
      }
    }

    const byLabelStratum: BalanceManifest['input']['byLabelStratum'] = { '0': {}, '1': {} };
    for (const label of [0, 1] as const)
      for (const c of cellsOf(label))
        byLabelStratum[label]![c.key] = { rows: c.rows, unique: c.supply };
    const selectedByLabel = { '0': 0, '1': 0 };
    for (const p of picked) selectedByLabel[String(p.entry.row.label) as '0' | '1']++;
    const quarantineByReason = Object.fromEntries(Object.entries(this.quarantineCounts).sort());
    return {
      train,
      validation,
      manifest: {
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
          byLabelStratum: selectedByLabelStratum,
          upsampled,
        },
        shortfalls: { classes: classShortfalls, strata: stratumShortfalls },
        weights,
        split: {
          train: train.length,
          validation: validation.length,
          validationConversations: validationConversations.size,
        },
      },
    };
  }

  /** The q smallest keys of a cell, after proving no evicted row belonged among them. */
  private selectFrom(cell: Cell, q: number): Entry[] {
    if (q === 0) return [];
    const sorted = cell.heap.sorted();
    const last = sorted[q - 1];
    const evictedBefore =
      last !== undefined &&
      (cell.minEvictedKey < last.key ||
        (cell.minEvictedKey === last.key && cell.minEvictedTie < last.tie));
    if (last === undefined || evictedBefore) {
      throw new InexactSelectionError(
        `stratum ${LABEL_NAMES[cell.label]}/${cell.key}: deduplication replaced ${cell.revoked} retained ` +
          `sample(s), more than the streaming margin absorbs; rerun with --no-dedup or dedupe the input first`,
      );
    }
    return sorted.slice(0, q);
  }
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
