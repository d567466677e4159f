// Judge calls against what the signals allow (issue 19): the wave planner alone (no
// files, no balancer) beside an oracle that knows every signal bin's true yield, on
// populations generated with different signal strength, at 50:50 and 70:30.
//
//   node bench/waves-oracle.mjs [--conversations 100000] [--total 10000] [--ratios 0.5,0.7] [--noise 0,0.25]
//
// The oracle. For each stratum s, with N_b distinct (dedup-representative) rows in
// signal bin b and true class shares y_cb, it solves
//
//     minimise  Σ_b n_b   subject to   Σ_b n_b · y_cb ≥ q_cs  (c = 0, 1),   0 ≤ n_b ≤ N_b
//
// where q_cs is the quota judging everything would give (the balance's own allocation
// over the true supply). Rows are judged in key order inside a bin, so n_b rows of bin b
// find n_b · y_cb of class c in expectation. The LP's optimum takes whole bins from the
// ends of the yield order (by the dual, a bin is taken whole iff λ0·y0b + λ1·y1b > 1, a
// half-line in y0b when one constraint binds; when both bind every mix of the two ends
// costs q0 + q1, the absolute floor): the oracle scans every split between a prefix
// from the class-0-richest end and a suffix from the class-1-richest end (each greedy in
// order of yield for its class) and keeps the cheapest. No pilot, no exploration.
//
// The planner runs twice: with its settings (exploration floor 0.3) and with explore 0,
// so the floor's cost shows on its own.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: '100000' },
    total: { type: 'string', default: '10000' },
    ratios: { type: 'string', default: '0.5,0.7' },
    noise: { type: 'string', default: '0,0.25' },
    seed: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
    'explore-cap': { type: 'string' },
  },
});
const root = join(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const dist = (p) => require(join(root, 'dist', p));
const { generateTelemetry } = dist('shared/source/generate.js');
const { ConversationAssembler } = dist('shared/samples/assemble.js');
const { parseBalanceConfig, classTargets } = dist('shared/contracts/config.js');
const { allocate, allocationWeights } = dist('shared/balance/allocation.js');
const { seed32, unitHash } = dist('shared/util/hash.js');
const { WavePlanner } = dist('shared/waves/planner.js');
const { waveItems } = dist('shared/waves/judge.js');
const { oracleRows } = await import('./oracle.mjs');

function population(noise) {
  const assembler = new ConversationAssembler();
  const truth = new Map();
  for (const t of generateTelemetry({
    conversations: Number(values.conversations),
    seed: Number(values.seed),
    annotated: true,
    signalNoise: noise,
  })) {
    const { label, ...turn } = t;
    if (t.turnIndex === 1) truth.set(`${t.conversationId}:1`, label);
    assembler.add(turn);
  }
  return { samples: assembler.samples('session').samples, truth };
}

const extra = values['explore-cap'] ? { exploreCap: Number(values['explore-cap']) } : {};
const rows = [];
for (const noise of values.noise.split(',').map(Number)) {
  process.stderr.write(`generating ${values.conversations} conversations, signal noise ${noise}\n`);
  const { samples, truth } = population(noise);
  for (const ratio of values.ratios.split(',').map(Number)) {
    const config = parseBalanceConfig({ total: Number(values.total), ratio });
    const items = waveItems(samples, config);
    const runs = {};
    for (const explore of [undefined, 0]) {
      const settings = explore === undefined ? extra : { ...extra, explore };
      const planner = new WavePlanner(items, config, settings);
      for (let ids = planner.nextWave(); ids !== null; ids = planner.nextWave())
        planner.record(ids.map((id) => ({ id, label: truth.get(id) })));
      const sel = planner.selection();
      const delivered = sel.length;
      const mix = planner.binMix(sel);
      runs[explore === undefined ? 'planner' : 'explore0'] = {
        judged: planner.judged,
        delivered,
        outcome: planner.state,
        waves: planner.history.length,
        perDelivered: planner.judged / delivered,
        // Bias left by the signal-guided judging: bin-mix TV and min ratio per class.
        mix: mix.map((m) => ({ tv: m.tv, minRatio: m.minRatio })),
        planner,
      };
    }
    // The oracle: the same dedup representatives, strata and bins as the planner.
    const planner = runs.planner.planner;
    const seedKey = seed32(config.seed);
    const rep = new Map();
    for (const it of items) {
      const g = it.group ?? it.id;
      const k = unitHash(it.id, seedKey);
      const cur = rep.get(g);
      if (!cur || k < cur.k || (k === cur.k && it.id < cur.it.id)) rep.set(g, { k, it });
    }
    const cells = new Map();
    const supply = new Map();
    for (const { it } of rep.values()) {
      const l = truth.get(it.id);
      const key = `${it.stratum}|${planner.binOf(it.score)}`;
      const c = cells.get(key) ?? { stratum: it.stratum, n: [0, 0] };
      c.n[l]++;
      cells.set(key, c);
      const s = supply.get(it.stratum) ?? [0, 0];
      s[l]++;
      supply.set(it.stratum, s);
    }
    const strata = [...supply.keys()].sort();
    const targets = classTargets(config.total, config.ratio);
    const quotas = [0, 1].map((l) => {
      const sup = strata.map((s) => supply.get(s)[l]);
      return allocate(
        Math.min(
          targets[l],
          sup.reduce((a, b) => a + b, 0),
        ),
        sup,
        allocationWeights(config.allocation, sup),
      );
    });
    let oracle = 0;
    let delivered = 0;
    strata.forEach((s, i) => {
      const q = [quotas[0][i], quotas[1][i]];
      delivered += q[0] + q[1];
      oracle += oracleRows(
        [...cells.values()].filter((c) => c.stratum === s),
        q,
      );
    });
    const row = {
      noise,
      ratio,
      samples: items.length,
      distinct: rep.size,
      delivered: runs.planner.delivered,
      plannerJudged: runs.planner.judged,
      plannerPerDelivered: +runs.planner.perDelivered.toFixed(3),
      plannerOutcome: runs.planner.outcome,
      plannerWaves: runs.planner.waves,
      plannerMix: runs.planner.mix,
      explore0Mix: runs.explore0.mix,
      explore0Judged: runs.explore0.judged,
      explore0PerDelivered: +runs.explore0.perDelivered.toFixed(3),
      explorationCost: runs.planner.judged - runs.explore0.judged,
      oracleJudged: Math.round(oracle),
      oraclePerDelivered: +(oracle / delivered).toFixed(3),
      gapToOracle: +(runs.planner.judged / oracle).toFixed(3),
    };
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
}
if (values.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
else {
  console.log(
    '\njudge calls per delivered sample: planner (explore 0.3) | planner (explore 0) | oracle floor',
  );
  console.log(
    'noise  ratio  delivered  planner        explore=0      oracle         planner/oracle',
  );
  for (const r of rows)
    console.log(
      `${String(r.noise).padEnd(7)}${String(r.ratio).padEnd(7)}${String(r.delivered).padStart(9)}  ` +
        `${r.plannerPerDelivered.toFixed(3)} (${r.plannerJudged})`.padEnd(15) +
        `${r.explore0PerDelivered.toFixed(3)} (${r.explore0Judged})`.padEnd(15) +
        `${r.oraclePerDelivered.toFixed(3)} (${r.oracleJudged})`.padEnd(15) +
        `${r.gapToOracle}`,
    );
}
