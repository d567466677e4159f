import { describe, expect, it } from 'vitest';
import { StreamingBalancer } from '../../shared/balance/balancer';
import {
  parseBalanceConfig,
  type Allocation,
  type BalanceConfig,
} from '../../shared/contracts/config';
import type { AnnotatedRow, Label } from '../../shared/contracts/rows';
import { seed32, unitHash } from '../../shared/util/hash';
import { Rng } from '../../shared/util/prng';
import {
  binOf,
  quantileCuts,
  resumeWaves,
  scaleDown,
  WavePlanner,
  type WaveItem,
  type WaveSettingsInput,
} from '../../shared/waves/planner';

interface Truth extends WaveItem {
  label: Label;
}

/**
 * A seeded population: three strata of different sizes and reasoning shares, a
 * score that separates the classes imperfectly (overlapping normals), and some
 * repeated messages.
 */
function population(n: number, seed = 1): Truth[] {
  const rng = new Rng(seed);
  const strata: [string, number, number][] = [
    ['A', 0.6, 0.25],
    ['B', 0.3, 0.35],
    ['C', 0.1, 0.45],
  ];
  const out: Truth[] = [];
  for (let i = 0; i < n; i++) {
    const u = rng.next();
    const [stratum, , share] = u < 0.6 ? strata[0]! : u < 0.9 ? strata[1]! : strata[2]!;
    const label: Label = rng.chance(share) ? 0 : 1;
    const score = (label === 0 ? 1.2 : 0) + rng.normal();
    const item: Truth = { id: `s${i}`, stratum, score, label };
    if (rng.chance(0.02)) item.group = `dup${rng.int(0, 20)}`;
    out.push(item);
  }
  return out;
}

/** Runs the planner to the end with the true labels as the judge. */
// Near-dedup off throughout: the planner's quotas assume exact dedup only, and these tests
// pin that the balancer selects exactly those quotas (waves do not plan for near-dedup).
function run(items: readonly Truth[], config: BalanceConfig, settings: WaveSettingsInput = {}) {
  const truth = new Map(items.map((t) => [t.id, t.label]));
  const planner = new WavePlanner(
    items.map(({ label: _label, ...item }) => item),
    config,
    settings,
  );
  const waves: string[][] = [];
  for (let ids = planner.nextWave(); ids !== null; ids = planner.nextWave()) {
    waves.push(ids);
    planner.record(ids.map((id) => ({ id, label: truth.get(id)! })));
  }
  return { planner, waves, selection: planner.selection() };
}

/** The balancer over the planner's selection, as the pipelines run it. */
function balance(items: readonly Truth[], config: BalanceConfig, ids: readonly string[]) {
  const byId = new Map(items.map((t) => [t.id, t]));
  const b = new StreamingBalancer(config);
  for (const id of ids) {
    const t = byId.get(id)!;
    const row: AnnotatedRow = {
      conversationId: t.id,
      turnIndex: 1,
      turnCount: { A: 4, B: 8, C: 15 }[t.stratum]!,
      userMessage: t.group ?? `message ${t.id}`,
      model: 'gpt-4o',
      numRequests: 1,
      turnDurationMs: 1000,
      promptTokenDelta: 10,
      tools: [],
      timestamp: '2026-10-01T00:00:00Z',
      sampleId: t.id,
      label: t.label,
    };
    b.offer(row);
  }
  return b.finish().manifest;
}

const POP = population(20_000);

describe('WavePlanner', () => {
  /** [ratio, allocation] */
  const CASES: [number, Allocation][] = [
    [0.5, 'equal'],
    [0.7, 'equal'],
    [0.3, 'equal'],
    [0.5, 'proportional'],
    [0.7, 'inverse-frequency'],
  ];

  it.each(CASES)(
    'ratio %s, %s: every quota met and the balancer selects exactly the quotas',
    (ratio, allocation) => {
      const config = parseBalanceConfig({
        nearDedup: false,
        total: 4_000,
        ratio,
        allocation,
        seed: 5,
      });
      const { planner, selection } = run(POP, config);
      expect(planner.state).toBe('quotas-met');
      const cells = planner.estimate().cells;
      expect(cells.every((c) => c.met || c.exhausted)).toBe(true);
      const m = balance(
        POP,
        config,
        selection.map((s) => s.id),
      );
      expect(m.selected.total).toBe(4_000);
      expect(m.selected.byLabel['0']).toBe(Math.round(4_000 * ratio));
      for (const c of cells) expect(m.selected.byLabelStratum[c.label]![c.stratum]).toBe(c.quota);
    },
  );

  it.each(CASES)(
    'ratio %s, %s: judges far fewer samples than the population',
    (ratio, allocation) => {
      const config = parseBalanceConfig({
        nearDedup: false,
        total: 4_000,
        ratio,
        allocation,
        seed: 5,
      });
      const { planner } = run(POP, config);
      // Judging everything: 20,000 calls for 4,000 rows (5 per row); this score is weak.
      expect(planner.judged / 4_000).toBeLessThan(2);
    },
  );

  it('delivered quotas stay beside the target a full judging would give (equal allocation)', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 4_000, ratio: 0.7, seed: 5 });
    const { planner, selection } = run(POP, config);
    const report = planner.report(selection);
    // The exact target: the balancer over every true label.
    const all = balance(
      POP,
      config,
      POP.map((t) => t.id),
    );
    for (const s of report.strata!) {
      expect(s.delivered).toBe(s.quota);
      const exact = all.selected.byLabelStratum[s.label]![s.stratum]!;
      // A cell whose stratum runs out gives up at most slack (2%) of its nominal share.
      expect(Math.abs(s.delivered - exact)).toBeLessThanOrEqual(Math.ceil(0.02 * 4_000) + 5);
    }
  });

  it('is deterministic and independent of input order', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 3_000, ratio: 0.7, seed: 9 });
    const a = run(POP, config);
    const rng = new Rng(77);
    const shuffled = [...POP];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const b = run(shuffled, config);
    expect(b.waves.map((w) => [...w].sort())).toEqual(a.waves.map((w) => [...w].sort()));
    expect(b.selection).toEqual(a.selection);
    expect(JSON.stringify(b.planner.report(b.selection))).toBe(
      JSON.stringify(a.planner.report(a.selection)),
    );
  });

  it('starts with a stratified pilot: every (stratum, bin) cell gets pilotMin rows or its share', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 2_000, seed: 1 });
    const planner = new WavePlanner(POP, config, { pilotMin: 7, pilotShare: 0.01, bins: 5 });
    const ids = new Set(planner.nextWave());
    const byCell = new Map<string, { n: number; picked: number }>();
    for (const t of POP) {
      if (t.group !== undefined) continue;
      const k = `${t.stratum}|${planner.binOf(t.score)}`;
      const c = byCell.get(k) ?? { n: 0, picked: 0 };
      c.n++;
      if (ids.has(t.id)) c.picked++;
      byCell.set(k, c);
    }
    expect(byCell.size).toBe(15);
    for (const c of byCell.values()) expect(c.picked).toBeGreaterThanOrEqual(Math.min(c.n, 7));
  });

  it('judges only the smallest-key member of a dedup group', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 30_000, seed: 1 });
    const { planner, waves } = run(POP, config);
    const members = POP.filter((t) => t.group !== undefined);
    const groups = new Map<string, Truth[]>();
    for (const t of members) groups.set(t.group!, [...(groups.get(t.group!) ?? []), t]);
    expect(planner.report().duplicatesSkipped).toBe(members.length - groups.size);
    const judged = new Set(waves.flat());
    expect(judged.size).toBe(planner.judged);
    const key = (id: string) => unitHash(id, seed32(config.seed));
    for (const g of groups.values()) {
      const hit = g.filter((t) => judged.has(t.id));
      expect(hit.length).toBeLessThanOrEqual(1);
      if (hit.length === 1) expect(Math.min(...g.map((t) => key(t.id)))).toBe(key(hit[0]!.id));
    }
  });

  it('a budget stops judging at exactly the budget and says so', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 4_000, ratio: 0.7, seed: 5 });
    const { planner, waves, selection } = run(POP, config, { maxJudged: 2_500 });
    expect(planner.judged).toBe(2_500);
    expect(waves.flat()).toHaveLength(2_500);
    expect(planner.state).toBe('budget-exhausted');
    // Every labelled row goes to the balancer, whose shortfall rule then decides.
    expect(selection).toHaveLength(2_500);
    const m = balance(
      POP,
      config,
      selection.map((s) => s.id),
    );
    expect(m.selected.total).toBeLessThan(4_000);
    expect(m.selected.byLabel['0']).toBe(Math.round(m.selected.total * 0.7));
  });

  it('asking for more than the supply ends with the supply used, not a loop', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 50_000, ratio: 0.5, seed: 2 });
    const { planner, waves } = run(POP, config, { maxWaves: 50 });
    expect(['quotas-met', 'supply-exhausted']).toContain(planner.state);
    expect(waves.length).toBeLessThan(50);
  });

  it('a wave limit ends judging with its own outcome', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 4_000, ratio: 0.7, seed: 5 });
    const { planner, waves } = run(POP, config, { maxWaves: 1 });
    expect(waves).toHaveLength(1);
    expect(planner.state).toBe('wave-limit');
  });

  it('unlabeled verdicts count as judged and are never selected', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 2_000, seed: 3 });
    const planner = new WavePlanner(POP, config);
    const truth = new Map(POP.map((t) => [t.id, t.label]));
    const failed = new Set<string>();
    for (let ids = planner.nextWave(); ids !== null; ids = planner.nextWave()) {
      planner.record(
        ids.map((id, i) => {
          if (i % 10 === 0) failed.add(id);
          return { id, label: i % 10 === 0 ? null : truth.get(id)! };
        }),
      );
    }
    expect(planner.state).toBe('quotas-met');
    const sel = planner.selection();
    expect(sel).toHaveLength(2_000);
    expect(sel.some((s) => failed.has(s.id))).toBe(false);
  });

  it('nextWave refuses to plan before the previous wave is recorded', () => {
    const planner = new WavePlanner(POP, parseBalanceConfig({ nearDedup: false, total: 1_000 }));
    planner.nextWave();
    expect(() => planner.nextWave()).toThrow(/record the previous wave/);
  });

  it('more exploration brings the delivered bin mix closer to the population', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 4_000, ratio: 0.7, seed: 5 });
    const tv = (explore: number) => {
      const { planner, selection } = run(POP, config, { explore, evenness: 0 });
      const truth = new Map(POP.map((t) => [t.id, t.label]));
      // The true population mix of the reasoning class over the planner's bins.
      const pop = new Array<number>(planner.binCount).fill(0);
      const del = new Array<number>(planner.binCount).fill(0);
      const reps = new Set(POP.filter((t) => t.group === undefined).map((t) => t.id));
      for (const t of POP) if (t.label === 0 && reps.has(t.id)) pop[planner.binOf(t.score)]!++;
      const scoreOf = new Map(POP.map((t) => [t.id, t.score]));
      for (const s of selection)
        if (truth.get(s.id) === 0) del[planner.binOf(scoreOf.get(s.id)!)]!++;
      const P = pop.reduce((a, b) => a + b, 0);
      const D = del.reduce((a, b) => a + b, 0);
      return pop.reduce((a, p, b) => a + Math.abs(p / P - del[b]! / D) / 2, 0);
    };
    const [t0, t3, t1] = [tv(0), tv(0.3), tv(1)];
    expect(t3).toBeLessThan(t0);
    expect(t1).toBeLessThan(t3);
    // Exploring fully is close to an unbiased sample (sampling noise of ~2,800 rows).
    expect(t1).toBeLessThan(0.06);
  });

  it('binMix reports each class against its estimated population mix', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 4_000, ratio: 0.5, seed: 5 });
    const { planner, selection } = run(POP, config);
    const mix = planner.binMix(selection);
    expect(mix.map((m) => m.label)).toEqual([0, 1]);
    for (const m of mix) {
      const delivered = m.bins.reduce((a, b) => a + b.delivered, 0);
      expect(delivered).toBe(selection.filter((s) => s.label === m.label).length);
      expect(m.bins.reduce((a, b) => a + b.populationShare, 0)).toBeCloseTo(1, 3);
      expect(m.tv).toBeGreaterThanOrEqual(0);
      expect(m.tv).toBeLessThanOrEqual(1);
    }
  });

  it('records calls and yields per wave', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 4_000, ratio: 0.7, seed: 5 });
    const { planner, waves } = run(POP, config);
    const h = planner.history;
    expect(h.map((w) => w.judged)).toEqual(waves.map((w) => w.length));
    expect(h[0]!.kind).toBe('pilot');
    for (const w of h) {
      expect(w.found['0']! + w.found['1']!).toBe(w.judged);
      for (const y of Object.values(w.yields)) expect(y['0'] + y['1']).toBeCloseTo(1, 3);
    }
    expect(h[h.length - 1]!.open).toEqual({});
  });
});

describe('wave helpers', () => {
  /** [scores, bins, cuts] */
  const CUTS: [number[], number, number[]][] = [
    [[1, 2, 3, 4], 2, [3]],
    [[1, 2, 3, 4, 5, 6, 7, 8], 4, [3, 5, 7]],
    [[1, 1, 1, 1], 4, []],
    [[0, 0, 0, 5], 2, []],
    [[0, 0, 5, 5], 2, [5]],
    [[], 3, []],
    [[3, 1, 2], 1, []],
  ];
  it.each(CUTS)('quantileCuts(%j, %i) = %j', (scores, bins, cuts) => {
    expect(quantileCuts(scores, bins)).toEqual(cuts);
  });

  /** [score, cuts, bin] */
  const BINS: [number, number[], number][] = [
    [0, [3, 5], 0],
    [3, [3, 5], 1],
    [4.9, [3, 5], 1],
    [5, [3, 5], 2],
    [99, [3, 5], 2],
    [7, [], 0],
  ];
  it.each(BINS)('binOf(%d, %j) = %i', (score, cuts, bin) => {
    expect(binOf(score, cuts)).toBe(bin);
  });

  /** [take, budget, scaled] */
  const SCALE: [number[], number, number[]][] = [
    [[10, 10], 30, [10, 10]],
    [[10, 10], 10, [5, 5]],
    [[10, 10, 10], 10, [4, 3, 3]],
    [[1, 0, 3], 2, [1, 0, 1]],
    [[5, 5], 0, [0, 0]],
  ];
  it.each(SCALE)('scaleDown(%j, %i) = %j', (take, budget, scaled) => {
    const out = scaleDown(take, budget);
    expect(out).toEqual(scaled);
    expect(out.reduce((a, b) => a + b, 0)).toBe(
      Math.min(
        budget,
        take.reduce((a, b) => a + b, 0),
      ),
    );
  });
});

describe('resumeWaves', () => {
  it('replayed from stored verdicts, gives the same waves and selection as the live loop', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 4_000, ratio: 0.7, seed: 5 });
    const live = run(POP, config);
    const truth = new Map(POP.map((t) => [t.id, t.label]));
    const stored = new Map<string, Label | null>();
    const seen: string[][] = [];
    for (;;) {
      const step = resumeWaves(POP, config, {}, (id) => stored.get(id));
      if (step.kind === 'done') {
        expect(step.planner.state).toBe(live.planner.state);
        expect(step.planner.selection()).toEqual(live.selection);
        break;
      }
      expect(step.wave).toBe(seen.length + 1);
      seen.push(step.ids);
      for (const id of step.ids) stored.set(id, truth.get(id)!);
    }
    expect(seen).toEqual(live.waves);
  });

  it('asks again only for the samples of a wave still unjudged', () => {
    const config = parseBalanceConfig({ nearDedup: false, total: 4_000, ratio: 0.7, seed: 5 });
    const first = resumeWaves(POP, config, {}, () => undefined);
    expect(first.kind).toBe('judge');
    const ids = first.kind === 'judge' ? first.ids : [];
    const half = new Set(ids.slice(0, Math.floor(ids.length / 2)));
    const step = resumeWaves(POP, config, {}, (id) => (half.has(id) ? 1 : undefined));
    expect(step.kind === 'judge' && step.wave).toBe(1);
    expect(step.kind === 'judge' && step.ids).toEqual(ids.filter((id) => !half.has(id)));
  });
});
