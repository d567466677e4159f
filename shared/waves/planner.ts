/**
 * Yield-aware judging: judge in waves only what the balanced dataset needs.
 *
 * Samples are grouped by stratum (the balance's strata, known before judging) and by
 * a cheap signal bin (quantiles of a score such as `signalsScore`). Within each
 * (stratum, bin) cell samples are judged in the balancer's own key order,
 * u = hash(seed, sampleId), so every cell's judged set is a key prefix: the result
 * does not depend on input order, and the balancer's "smallest keys" selection over
 * the judged rows is the one a full judging run would make inside every bin judged
 * deep enough.
 *
 * Wave 1 is a stratified pilot. After each wave the planner estimates, per stratum
 * and bin, the yield of each class (a beta posterior shrunk toward the bin's yield
 * over all strata), from it each class × stratum supply (with its uncertainty), the
 * balance's quotas over that estimated supply (the same `allocate` the balancer
 * uses), and plans the next wave: first an exploration floor in every bin, then rows
 * from the bins most likely to fill the quotas still open. It stops when every quota
 * is met (or its stratum holds practically no more of that class), when the judge
 * budget or the wave limit is reached, or when nothing is left to judge.
 *
 * The exploration floor is what keeps the dataset from collapsing onto "obvious"
 * examples: every bin of a stratum is judged to at least `explore` × the key depth
 * an unbiased (judge-everything) selection would reach in it, so every bin keeps at
 * least about that share of its fair representation; `binMix` measures the rest.
 */
import { z } from 'zod';
import { allocate, allocationWeights, nominalShares } from '../balance/allocation';
import { shrinkTargets } from '../balance/balancer';
import { classTargets, type BalanceConfig } from '../contracts/config';
import type { Label } from '../contracts/rows';
import { seed32, unitHash } from '../util/hash';

/** The most waves a run may judge in (blob paths name waves with three digits). */
export const MAX_WAVES = 100;

export const WaveSettingsSchema = z.object({
  /** Signal bins (quantiles of the score over all samples). */
  bins: z.number().int().min(1).max(100).default(10),
  /** Pilot wave: this share of every (stratum, bin) cell, at least `pilotMin` rows. */
  pilotShare: z.number().min(0).max(1).default(0.01),
  pilotMin: z.number().int().min(1).default(20),
  /**
   * Exploration floor in [0, 1]: every bin is judged to at least this share of the key
   * depth an unbiased selection needs in its stratum (1 = no signal bias at all).
   */
  explore: z.number().min(0).max(1).default(0.3),
  /**
   * Cap on the exploration floor's cost: in one wave, the floor may be expected to find
   * at most this share of a stratum's open need in rows of a class beyond that class's
   * need (past it, the floor's rows are scaled down evenly across bins); null = no cap.
   */
  exploreCap: z.number().min(0).nullable().default(null),
  /**
   * A class × stratum cell whose stratum is expected to hold fewer than this share of
   * the cell's nominal quota among the rows not yet judged counts as exhausted: the
   * balance redistributes the rest of its quota to the other strata.
   */
  slack: z.number().min(0).max(1).default(0.02),
  /**
   * Bins whose expected usefulness is within this share of the best bin's are judged
   * to the same depth (least deep first) rather than best first: a little more
   * spending for a mix closer to the population's.
   */
  evenness: z.number().min(0).max(1).default(0.05),
  /** Prior strength (rows) of the pooled bin yield in each cell's yield estimate. */
  priorRows: z.number().min(0).default(4),
  /** Samples judged at most (the judge budget); null = no limit. */
  maxJudged: z.number().int().positive().nullable().default(null),
  /**
   * The judge budget in currency (the price table's, shared/judge/prices.ts); null = no
   * limit. After the pilot wave, a wave takes at most what the rest of the budget buys
   * at the cost per sample seen so far; once it is spent, judging stops
   * (budget-exhausted).
   */
  maxCost: z.number().positive().nullable().default(null),
  maxWaves: z.number().int().min(1).max(MAX_WAVES).default(20),
});
export type WaveSettings = z.infer<typeof WaveSettingsSchema>;
export type WaveSettingsInput = z.input<typeof WaveSettingsSchema>;

/** One unlabeled sample as the planner sees it: no label, only what is free. */
export interface WaveItem {
  id: string;
  /** Stratum key (strataKey of the balance's stratifiers). */
  stratum: string;
  /** Cheap signal score; higher or lower, only its bins matter. */
  score: number;
  /** Dedup group (e.g. the user message): only the smallest-key member is judged. */
  group?: string;
}

export type WaveOutcome =
  'quotas-met' | 'supply-exhausted' | 'budget-exhausted' | 'wave-limit' | 'running';

export interface CellEstimate {
  label: Label;
  stratum: string;
  /** Rows of the stratum (after dedup), judged or not. */
  rows: number;
  judged: number;
  found: number;
  /** Estimated class supply in the stratum (found + expected among the unjudged). */
  estimate: number;
  /** Standard deviation of that estimate. */
  sd: number;
  /** The quota the balance's allocation gives this cell over the estimated supply. */
  quota: number;
  /**
   * The quota judging everything would give (the same allocation over the estimated
   * supply with no cell exhausted early): the target beside which `quota` is shown.
   */
  target: number;
  /** Below this many expected unjudged rows of the class, the cell counts as exhausted. */
  exhaustAt: number;
  exhausted: boolean;
  met: boolean;
}

export interface WaveRecord {
  wave: number;
  kind: 'pilot' | 'yield';
  /** Samples sent to the judge in this wave. */
  judged: number;
  /** Labels returned, by class; the rest came back unlabeled. */
  found: Record<string, number>;
  /** Yield seen in this wave per stratum: found / judged by class. */
  yields: Record<string, { judged: number; '0': number; '1': number }>;
  /** Judge requests (batches) this wave took, when the caller reports them. */
  requests?: number;
  /** Quotas still open after this wave (class × stratum → rows missing). */
  open: Record<string, number>;
}

export interface BinMix {
  label: Label;
  /** Per bin: delivered share, estimated population share, and their ratio. */
  bins: {
    bin: number;
    delivered: number;
    deliveredShare: number;
    populationShare: number;
    ratio: number | null;
  }[];
  /** Total variation distance between the two mixes (0 = same mix). */
  tv: number;
  /** Smallest delivered/population ratio over bins holding ≥ 1% of the class. */
  minRatio: number | null;
}

interface Cell {
  stratum: number;
  bin: number;
  /** Item indexes in key order. */
  order: number[];
  /** Judged prefix length. */
  next: number;
  /** Labelled counts in the judged prefix, by class; unlabeled counted in `next` only. */
  k: [number, number];
  /** Rows whose verdict is still pending. */
  pending: number;
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;

/**
 * The wave planner. Deterministic: the same items, config, settings and verdicts
 * give the same waves in any input order.
 */
export class WavePlanner {
  readonly settings: WaveSettings;
  private readonly keys: Float64Array;
  private readonly items: readonly WaveItem[];
  private readonly strata: string[];
  private readonly cells: Cell[] = [];
  /** cell index of each item, -1 when a duplicate not judged. */
  private readonly cellOf: Int32Array;
  private readonly labelOf: Int8Array;
  private readonly cuts: number[];
  private readonly targets: [number, number];
  private readonly waves: WaveRecord[] = [];
  private judgedTotal = 0;
  private spentTotal = 0;
  private outcome: WaveOutcome = 'running';
  private duplicates = 0;

  constructor(
    items: readonly WaveItem[],
    readonly config: BalanceConfig,
    settings: WaveSettingsInput = {},
  ) {
    this.settings = WaveSettingsSchema.parse(settings);
    this.items = items;
    const seed = seed32(config.seed);
    this.keys = new Float64Array(items.length);
    for (let i = 0; i < items.length; i++) this.keys[i] = unitHash(items[i]!.id, seed);
    this.targets = classTargets(config.total, config.ratio);
    this.labelOf = new Int8Array(items.length).fill(-1);
    this.cellOf = new Int32Array(items.length).fill(-1);
    const before = (a: number, b: number) =>
      this.keys[a]! - this.keys[b]! || (items[a]!.id < items[b]!.id ? -1 : 1);
    // Dedup: the balancer keeps the smallest-key row of a group, so only it is judged.
    const keep: number[] = [];
    const rep = new Map<string, number>();
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!.group;
      if (g === undefined) {
        keep.push(i);
        continue;
      }
      const r = rep.get(g);
      if (r === undefined) rep.set(g, i);
      else {
        this.duplicates++;
        if (before(i, r) < 0) rep.set(g, i);
      }
    }
    for (const i of rep.values()) keep.push(i);
    this.cuts = quantileCuts(
      keep.map((i) => items[i]!.score),
      this.settings.bins,
    );
    this.strata = [...new Set(keep.map((i) => items[i]!.stratum))].sort();
    const sIndex = new Map(this.strata.map((s, i) => [s, i]));
    const nb = this.cuts.length + 1;
    for (let s = 0; s < this.strata.length; s++)
      for (let b = 0; b < nb; b++)
        this.cells.push({ stratum: s, bin: b, order: [], next: 0, k: [0, 0], pending: 0 });
    for (const i of keep) {
      const c = sIndex.get(items[i]!.stratum)! * nb + binOf(items[i]!.score, this.cuts);
      this.cellOf[i] = c;
      this.cells[c]!.order.push(i);
    }
    for (const c of this.cells) c.order.sort(before);
  }

  /** Number of signal bins actually used (ties can merge quantiles). */
  get binCount(): number {
    return this.cuts.length + 1;
  }

  get judged(): number {
    return this.judgedTotal;
  }

  /** What the judge calls cost so far (as recorded). */
  get spent(): number {
    return this.spentTotal;
  }

  get state(): WaveOutcome {
    return this.outcome;
  }

  /** The bin of a score (0 = lowest scores). */
  binOf(score: number): number {
    return binOf(score, this.cuts);
  }

  /**
   * The next wave's sample ids (in key order per cell), or null when judging is over
   * (see {@link state} for why). Verdicts of the previous wave must be recorded first.
   */
  nextWave(): string[] | null {
    if (this.outcome !== 'running') return null;
    if (this.cells.some((c) => c.pending > 0)) throw new Error('record the previous wave first');
    const s = this.settings;
    let budget = s.maxJudged === null ? Infinity : s.maxJudged - this.judgedTotal;
    if (s.maxCost !== null && this.waves.length > 0) {
      // A budget in currency: what the rest buys at the cost per sample so far.
      if (this.spentTotal >= s.maxCost) return this.stop('budget-exhausted');
      if (this.spentTotal > 0)
        budget = Math.min(
          budget,
          Math.floor(((s.maxCost - this.spentTotal) * this.judgedTotal) / this.spentTotal),
        );
    }
    const unjudged = this.cells.reduce((a, c) => a + c.order.length - c.next, 0);
    let take: number[];
    if (this.waves.length === 0) {
      take = this.cells.map((c) =>
        Math.min(c.order.length, Math.max(s.pilotMin, Math.ceil(s.pilotShare * c.order.length))),
      );
    } else {
      const est = this.estimate();
      if (est.cells.every((c) => c.met || c.exhausted)) return this.stop('quotas-met');
      if (unjudged === 0) return this.stop('supply-exhausted');
      if (this.waves.length >= s.maxWaves) return this.stop('wave-limit');
      take = this.plan(est);
      if (take.every((t) => t === 0)) return this.stop('supply-exhausted');
    }
    if (budget <= 0) return this.stop('budget-exhausted');
    const planned = take.reduce((a, b) => a + b, 0);
    if (planned > budget) take = scaleDown(take, budget);
    const ids: string[] = [];
    take.forEach((t, ci) => {
      const cell = this.cells[ci]!;
      for (let j = 0; j < t; j++) ids.push(this.items[cell.order[cell.next + j]!]!.id);
      cell.next += t;
      cell.pending += t;
    });
    this.judgedTotal += ids.length;
    this.waves.push({
      wave: this.waves.length + 1,
      kind: this.waves.length === 0 ? 'pilot' : 'yield',
      judged: ids.length,
      found: { '0': 0, '1': 0 },
      yields: {},
      open: {},
    });
    this.waveIds = new Set(ids);
    return ids;
  }

  private waveIds = new Set<string>();
  private idIndex: Map<string, number> | null = null;

  /** Records the verdicts of the current wave (label null = the judge gave none). */
  record(
    verdicts: readonly { id: string; label: Label | null }[],
    requests?: number,
    /** What the wave's judge calls cost (for a budget in currency). */
    cost?: number,
  ): void {
    this.idIndex ??= new Map(this.items.map((it, i) => [it.id, i]));
    const wave = this.waves[this.waves.length - 1];
    if (!wave) throw new Error('no wave to record');
    if (requests !== undefined) wave.requests = requests;
    if (cost !== undefined) this.spentTotal += cost;
    for (const v of verdicts) {
      if (!this.waveIds.delete(v.id)) continue;
      const i = this.idIndex.get(v.id)!;
      const cell = this.cells[this.cellOf[i]!]!;
      cell.pending--;
      const y = (wave.yields[this.strata[cell.stratum]!] ??= { judged: 0, '0': 0, '1': 0 });
      y.judged++;
      if (v.label !== null) {
        this.labelOf[i] = v.label;
        cell.k[v.label]++;
        wave.found[String(v.label)]!++;
        y[v.label === 0 ? '0' : '1']++;
      }
    }
    // Ids the judge never answered count as judged and unlabeled.
    for (const id of this.waveIds) {
      const i = this.idIndex.get(id)!;
      const cell = this.cells[this.cellOf[i]!]!;
      cell.pending--;
      const y = (wave.yields[this.strata[cell.stratum]!] ??= { judged: 0, '0': 0, '1': 0 });
      y.judged++;
    }
    this.waveIds.clear();
    for (const y of Object.values(wave.yields)) {
      y['0'] = round(y['0'] / Math.max(1, y.judged));
      y['1'] = round(y['1'] / Math.max(1, y.judged));
    }
    const est = this.estimate();
    for (const c of est.cells)
      if (!c.met && !c.exhausted) wave.open[`${c.label}|${c.stratum}`] = c.quota - c.found;
  }

  private stop(outcome: WaveOutcome): null {
    this.outcome = outcome;
    return null;
  }

  /** Per cell yield estimates: p[c][cell] and their variances. */
  private yields(): { p: [Float64Array, Float64Array]; v: [Float64Array, Float64Array] } {
    const nb = this.binCount;
    const m = this.settings.priorRows;
    const pool = Array.from({ length: nb }, () => ({ n: 0, k: [0, 0] }));
    for (const c of this.cells) {
      const q = pool[c.bin]!;
      q.n += c.next - c.pending;
      q.k[0]! += c.k[0];
      q.k[1]! += c.k[1];
    }
    const p: [Float64Array, Float64Array] = [
      new Float64Array(this.cells.length),
      new Float64Array(this.cells.length),
    ];
    const v: [Float64Array, Float64Array] = [
      new Float64Array(this.cells.length),
      new Float64Array(this.cells.length),
    ];
    this.cells.forEach((c, ci) => {
      const n = c.next - c.pending;
      const q = pool[c.bin]!;
      for (const label of [0, 1] as const) {
        const prior = (q.k[label]! + 0.5) / (q.n + 1);
        const mean = (c.k[label] + m * prior) / (n + m);
        p[label][ci] = mean;
        v[label][ci] = (mean * (1 - mean)) / (n + m + 1);
      }
    });
    return { p, v };
  }

  /** Estimated supply, quotas and status of every class × stratum cell. */
  estimate(): { cells: CellEstimate[]; deliver: [number, number] } {
    const { p, v } = this.yields();
    const S = this.strata.length;
    const found: number[][] = [new Array<number>(S).fill(0), new Array<number>(S).fill(0)];
    const rem: number[][] = [new Array<number>(S).fill(0), new Array<number>(S).fill(0)];
    const varr: number[][] = [new Array<number>(S).fill(0), new Array<number>(S).fill(0)];
    const rows = new Array<number>(S).fill(0);
    const judged = new Array<number>(S).fill(0);
    this.cells.forEach((c, ci) => {
      const left = c.order.length - c.next;
      rows[c.stratum]! += c.order.length;
      judged[c.stratum]! += c.next;
      for (const label of [0, 1] as const) {
        found[label]![c.stratum]! += c.k[label];
        rem[label]![c.stratum]! += left * p[label][ci]!;
        varr[label]![c.stratum]! += left * left * v[label][ci]!;
      }
    });
    const cfg = this.config;
    const nominal = (label: Label) => {
      const w = allocationWeights(
        cfg.allocation,
        this.strata.map((_, s) => found[label]![s]! + rem[label]![s]!),
      );
      return nominalShares(this.targets[label], w);
    };
    const exhaustAt = [0, 1].map((label) => {
      const nom = nominal(label as Label);
      return this.strata.map((_, s) => Math.max(0.5, this.settings.slack * nom[s]!));
    });
    const exhausted = [0, 1].map((label) =>
      this.strata.map((_, s) => rem[label]![s]! < exhaustAt[label]![s]!),
    );
    const supply = [0, 1].map((label) =>
      this.strata.map((_, s) =>
        exhausted[label]![s] ? found[label]![s]! : found[label]![s]! + Math.round(rem[label]![s]!),
      ),
    );
    const available: [number, number] = [
      supply[0]!.reduce((a, b) => a + b, 0),
      supply[1]!.reduce((a, b) => a + b, 0),
    ];
    let deliver: [number, number] = this.targets;
    if (available[0] < this.targets[0] || available[1] < this.targets[1]) {
      deliver =
        cfg.onShortfall === 'shrink'
          ? shrinkTargets(cfg.total, cfg.ratio, available)
          : [Math.min(this.targets[0], available[0]), Math.min(this.targets[1], available[1])];
    }
    const cells: CellEstimate[] = [];
    for (const label of [0, 1] as const) {
      const sup = supply[label]!;
      const quotas = allocate(deliver[label], sup, allocationWeights(cfg.allocation, sup));
      const full = this.strata.map((_, s) => found[label]![s]! + Math.round(rem[label]![s]!));
      const targets = allocate(deliver[label], full, allocationWeights(cfg.allocation, full));
      this.strata.forEach((stratum, s) => {
        const f = found[label]![s]!;
        const q = quotas[s]!;
        cells.push({
          label,
          stratum,
          rows: rows[s]!,
          judged: judged[s]!,
          found: f,
          estimate: round(f + rem[label]![s]!, 1),
          sd: round(Math.sqrt(varr[label]![s]!), 1),
          quota: q,
          target: targets[s]!,
          exhaustAt: round(exhaustAt[label]![s]!, 1),
          exhausted: exhausted[label]![s]!,
          met: f >= q,
        });
      });
    }
    return { cells, deliver };
  }

  /** How many more rows each (stratum, bin) cell should judge in the next wave. */
  private plan(est: { cells: CellEstimate[] }): number[] {
    const s = this.settings;
    const nb = this.binCount;
    const { p } = this.yields();
    const take = this.cells.map(() => 0);
    const byKey = new Map(est.cells.map((c) => [`${c.label}|${c.stratum}`, c]));
    for (let st = 0; st < this.strata.length; st++) {
      const name = this.strata[st]!;
      const cellIdx = Array.from({ length: nb }, (_, b) => st * nb + b);
      const cs = [0, 1].map((l) => byKey.get(`${l}|${name}`)!);
      const remaining = (l: number) =>
        cellIdx.reduce((a, ci) => {
          const c = this.cells[ci]!;
          return a + (c.order.length - c.next - take[ci]!) * p[l as Label][ci]!;
        }, 0);
      // How many more of each class this stratum still needs, in expectation: until
      // the quota is met or what is left falls under the exhaustion threshold.
      const need = cs.map((c, l) => {
        if (c.met || c.exhausted) return 0;
        return Math.max(0, Math.min(c.quota - c.found, remaining(l) - c.exhaustAt));
      });
      if (need[0] === 0 && need[1] === 0) continue;
      // Exploration floor: every bin to explore × the unbiased key depth.
      const depth = Math.max(
        ...cs.map((c) =>
          c.met || c.exhausted ? 0 : Math.min(1, c.quota / Math.max(1, c.estimate)),
        ),
      );
      let floorTake = cellIdx.map((ci) => {
        const c = this.cells[ci]!;
        const floor = Math.ceil(s.explore * depth * c.order.length);
        return Math.min(c.order.length - c.next, Math.max(0, floor - c.next));
      });
      if (s.exploreCap !== null) {
        // The floor's cost: what it is expected to find of a class beyond that class's need.
        const found = [0, 0];
        floorTake.forEach((t, j) => {
          found[0]! += t * p[0][cellIdx[j]!]!;
          found[1]! += t * p[1][cellIdx[j]!]!;
        });
        const waste = Math.max(0, found[0]! - need[0]!) + Math.max(0, found[1]! - need[1]!);
        const allowed = s.exploreCap * (need[0]! + need[1]!);
        if (waste > allowed) {
          const total = floorTake.reduce((a, b) => a + b, 0);
          floorTake = scaleDown(floorTake, Math.floor((total * allowed) / waste));
        }
      }
      cellIdx.forEach((ci, j) => {
        const t = floorTake[j]!;
        take[ci] = t;
        need[0] = Math.max(0, need[0]! - t * p[0][ci]!);
        need[1] = Math.max(0, need[1]! - t * p[1][ci]!);
      });
      // Exploitation: chunks from the bin most useful for what is still needed.
      const stratumRows = cellIdx.reduce((a, ci) => a + this.cells[ci]!.order.length, 0);
      const chunk = Math.max(8, Math.ceil(stratumRows / 1000));
      for (;;) {
        if (need[0]! <= 0 && need[1]! <= 0) break;
        // The most useful bins; among those within `evenness` of the best, the one
        // judged least deep, so equally useful bins are judged alike (less bias).
        // A bin's value: its yield of each class still needed, weighted by that class's
        // share of what is needed. With both classes short (70:30), plain p0 + p1 is 1
        // everywhere and would judge the bins evenly; weighted, the bins whose mix is
        // closest to the need come first, so little is found beyond a quota.
        const w0 = need[0]! > 0 ? need[0]! / (need[0]! + Math.max(0, need[1]!)) : 0;
        const w1 = need[1]! > 0 ? 1 - w0 : 0;
        const value = (ci: number) => w0 * p[0][ci]! + w1 * p[1][ci]!;
        let bestValue = 0;
        for (const ci of cellIdx) {
          const c = this.cells[ci]!;
          if (c.order.length - c.next - take[ci]! > 0) bestValue = Math.max(bestValue, value(ci));
        }
        let best = -1;
        let bestDepth = Infinity;
        for (const ci of cellIdx) {
          const c = this.cells[ci]!;
          if (c.order.length - c.next - take[ci]! <= 0) continue;
          if (value(ci) < bestValue * (1 - s.evenness) - 1e-12) continue;
          const d = (c.next + take[ci]!) / c.order.length;
          if (d < bestDepth) {
            best = ci;
            bestDepth = d;
          }
        }
        if (best < 0 || bestValue <= 1e-9) break;
        const c = this.cells[best]!;
        const left = c.order.length - c.next - take[best]!;
        // Rows to cover the open need at this bin's yield, at most a chunk past it.
        let n = Infinity;
        for (const l of [0, 1] as const)
          if (need[l]! > 0 && p[l][best]! > 0) n = Math.min(n, Math.ceil(need[l]! / p[l][best]!));
        n = Math.min(left, Math.max(1, Math.min(n, chunk)));
        take[best]! += n;
        need[0] = Math.max(0, need[0]! - n * p[0][best]!);
        need[1] = Math.max(0, need[1]! - n * p[1][best]!);
      }
    }
    return take;
  }

  /** Wave records so far (calls and yields per wave), for the manifest. */
  get history(): readonly WaveRecord[] {
    return this.waves;
  }

  /**
   * The judged rows to hand the balancer. When every quota is met, each cell's
   * quota of smallest-key rows (the balancer then selects exactly these, whatever its
   * allocation mode); otherwise every labelled row, and the balancer's shortfall
   * rules decide.
   */
  selection(): { id: string; label: Label }[] {
    const labelled: { i: number; label: Label; stratum: number }[] = [];
    this.cells.forEach((c) => {
      for (let j = 0; j < c.next; j++) {
        const i = c.order[j]!;
        const l = this.labelOf[i]!;
        if (l === 0 || l === 1) labelled.push({ i, label: l, stratum: c.stratum });
      }
    });
    let out = labelled;
    if (this.outcome === 'quotas-met') {
      const quota = new Map(this.estimate().cells.map((c) => [`${c.label}|${c.stratum}`, c.quota]));
      labelled.sort(
        (a, b) =>
          this.keys[a.i]! - this.keys[b.i]! || (this.items[a.i]!.id < this.items[b.i]!.id ? -1 : 1),
      );
      const used = new Map<string, number>();
      out = labelled.filter((r) => {
        const k = `${r.label}|${this.strata[r.stratum]}`;
        const u = used.get(k) ?? 0;
        if (u >= (quota.get(k) ?? 0)) return false;
        used.set(k, u + 1);
        return true;
      });
    }
    return out
      .map((r) => ({ id: this.items[r.i]!.id, label: r.label }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * The delivered rows' signal-bin mix per class beside the class's estimated
   * population mix (judged rows plus expected yields of the unjudged): the bias the
   * signal-guided judging put into the dataset.
   */
  binMix(delivered: readonly { id: string; label: Label }[]): BinMix[] {
    this.idIndex ??= new Map(this.items.map((it, i) => [it.id, i]));
    const nb = this.binCount;
    const { p } = this.yields();
    const out: BinMix[] = [];
    for (const label of [0, 1] as const) {
      const pop = new Array<number>(nb).fill(0);
      this.cells.forEach((c, ci) => {
        pop[c.bin]! += c.k[label] + (c.order.length - c.next) * p[label][ci]!;
      });
      const del = new Array<number>(nb).fill(0);
      for (const d of delivered) {
        if (d.label !== label) continue;
        const i = this.idIndex.get(d.id);
        if (i === undefined || this.cellOf[i]! < 0) continue;
        del[this.cells[this.cellOf[i]!]!.bin]!++;
      }
      const popTotal = pop.reduce((a, b) => a + b, 0);
      const delTotal = del.reduce((a, b) => a + b, 0);
      let tv = 0;
      let minRatio: number | null = null;
      const bins = pop.map((x, bin) => {
        const ps = popTotal > 0 ? x / popTotal : 0;
        const ds = delTotal > 0 ? del[bin]! / delTotal : 0;
        tv += Math.abs(ps - ds) / 2;
        const ratio = ps > 0 ? ds / ps : null;
        if (ratio !== null && ps >= 0.01)
          minRatio = minRatio === null ? ratio : Math.min(minRatio, ratio);
        return {
          bin,
          delivered: del[bin]!,
          deliveredShare: round(ds),
          populationShare: round(ps),
          ratio: ratio === null ? null : round(ratio, 3),
        };
      });
      out.push({
        label,
        bins,
        tv: round(tv),
        minRatio: minRatio === null ? null : round(minRatio, 3),
      });
    }
    return out;
  }

  /** Everything the manifest records about the waves. */
  report(delivered?: readonly { id: string; label: Label }[]) {
    const est = this.estimate();
    let strata:
      | { label: Label; stratum: string; target: number; quota: number; delivered: number }[]
      | undefined;
    if (delivered) {
      this.idIndex ??= new Map(this.items.map((it, i) => [it.id, i]));
      const got = new Map<string, number>();
      for (const d of delivered) {
        const i = this.idIndex.get(d.id);
        if (i === undefined) continue;
        const k = `${d.label}|${this.items[i]!.stratum}`;
        got.set(k, (got.get(k) ?? 0) + 1);
      }
      strata = est.cells.map((c) => ({
        label: c.label,
        stratum: c.stratum,
        target: c.target,
        quota: c.quota,
        delivered: got.get(`${c.label}|${c.stratum}`) ?? 0,
      }));
    }
    return {
      settings: this.settings,
      outcome: this.outcome,
      samples: this.items.length,
      duplicatesSkipped: this.duplicates,
      judged: this.judgedTotal,
      bins: { count: this.binCount, cuts: this.cuts.map((c) => round(c, 6)) },
      waves: this.waves,
      targets: { '0': est.deliver[0], '1': est.deliver[1] },
      cells: est.cells,
      ...(delivered ? { strata, binMix: this.binMix(delivered) } : {}),
    };
  }
}

/** Up to bins − 1 distinct cut points at the score quantiles (ties merge bins). */
export function quantileCuts(scores: readonly number[], bins: number): number[] {
  if (scores.length === 0 || bins <= 1) return [];
  const sorted = Float64Array.from(scores).sort();
  const cuts: number[] = [];
  for (let j = 1; j < bins; j++) {
    const c = sorted[Math.floor((j * sorted.length) / bins)]!;
    if (c > sorted[0]! && (cuts.length === 0 || c > cuts[cuts.length - 1]!)) cuts.push(c);
  }
  return cuts;
}

/** Number of cuts at or below the score: the bin index. */
export function binOf(score: number, cuts: readonly number[]): number {
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cuts[mid]! <= score) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Scales counts down to sum to `budget`, largest remainders first (ties: lower index). */
export function scaleDown(take: readonly number[], budget: number): number[] {
  const total = take.reduce((a, b) => a + b, 0);
  if (total <= budget) return take.slice();
  const exact = take.map((t) => (t * budget) / total);
  const out = exact.map(Math.floor);
  let rest = budget - out.reduce((a, b) => a + b, 0);
  const order = exact
    .map((x, i) => [x - Math.floor(x), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (rest <= 0) break;
    out[i]! += 1;
    rest--;
  }
  return out;
}

/** Where a wave-judged build stands, recomputed from the verdicts stored so far. */
export type WaveStep =
  | { kind: 'judge'; wave: number; ids: string[]; planner: WavePlanner }
  | { kind: 'done'; planner: WavePlanner };

/**
 * Replays the waves from stored verdicts (`verdictOf` returns undefined for a sample
 * not judged yet): the planner is deterministic, so the same verdicts give the same
 * waves. Returns the next wave's ids to judge (those of the first wave with samples
 * still unjudged), or done. This is what a fan-in calls to decide whether another
 * round of batches is needed; it needs no state of its own beyond the verdicts.
 */
export function resumeWaves(
  items: readonly WaveItem[],
  config: BalanceConfig,
  settings: WaveSettingsInput,
  verdictOf: (id: string) => Label | null | undefined,
  /** Judge requests each wave took, for the wave records (optional). */
  requestsOf?: (wave: number) => number | undefined,
  /** What each wave's judge calls cost (for a budget in currency). */
  costOf?: (wave: number) => number | undefined,
): WaveStep {
  const planner = new WavePlanner(items, config, settings);
  for (let ids = planner.nextWave(); ids !== null; ids = planner.nextWave()) {
    const missing = ids.filter((id) => verdictOf(id) === undefined);
    if (missing.length > 0) {
      return { kind: 'judge', wave: planner.history.length, ids: missing, planner };
    }
    planner.record(
      ids.map((id) => ({ id, label: verdictOf(id)! })),
      requestsOf?.(planner.history.length),
      costOf?.(planner.history.length),
    );
  }
  return { kind: 'done', planner };
}
