// Benchmark for yield-aware judging (issue 9): judge calls per delivered sample with
// `run --in-process --waves` against judging every sample first, on generated
// telemetry whose true label is replayed as the judge (calls counted, not paid).
//
//   node bench/waves.mjs [--conversations 350000] [--total 100000] [--ratios 0.5,0.7] [--explore 0.3]
//
// One full run (every session sample judged) gives the baseline calls and, through
// `balance` over its annotated rows, the exact targets of a full judging at each
// ratio; each waves run is compared with them: calls per delivered sample, every
// class × stratum quota, and the delivered signal-bin mix against the true population
// mix of the class (the bias the signal-guided judging leaves).
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { log, manifestOf, measure, root, telemetryFor } from './waves-common.mjs';
import { oracleRows } from './oracle.mjs';

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: '350000' },
    total: { type: 'string', default: '100000' },
    ratios: { type: 'string', default: '0.5,0.7' },
    explore: { type: 'string' },
  },
});
const conversations = Number(values.conversations);
const total = Number(values.total);
const ratios = values.ratios.split(',').map(Number);
const require = createRequire(import.meta.url);
const { signalsScore } = require(join(root, 'dist/shared/judge/signals.js'));
const { binOf } = require(join(root, 'dist/shared/waves/planner.js'));
const { seed32, unitHash } = require(join(root, 'dist/shared/util/hash.js'));
const work = join(root, '.bench', 'waves');
mkdirSync(work, { recursive: true });
const telemetry = telemetryFor(conversations);

const jsonl = (p) =>
  readFileSync(p, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

const common = [
  '--in-process',
  '--quiet',
  '--input',
  telemetry,
  '--replay',
  telemetry,
  '--total',
  String(total),
];

// Baseline: judge every sample first, then balance (the seed's pipeline).
const allDir = join(work, 'all');
rmSync(allDir, { recursive: true, force: true });
log('baseline: judging every session sample');
const allRun = measure(['run', ...common, '--out', allDir, '--ratio', String(ratios[0])]);
const all = manifestOf(allDir);
const annotatedAll = join(allDir, 'annotated.jsonl');
const truthRows = jsonl(annotatedAll);

const results = [];
for (const ratio of ratios) {
  // The exact targets of a full judging at this ratio: balance over every true label.
  const exactDir = join(work, `exact-${ratio}`);
  rmSync(exactDir, { recursive: true, force: true });
  measure([
    'balance',
    '--input',
    annotatedAll,
    '--out',
    exactDir,
    '--total',
    String(total),
    '--ratio',
    String(ratio),
    '--quiet',
  ]);
  const exact = manifestOf(exactDir);
  const dir = join(work, `waves-${ratio}`);
  rmSync(dir, { recursive: true, force: true });
  log(`waves at ratio ${ratio}`);
  const r = measure([
    'run',
    ...common,
    '--out',
    dir,
    '--ratio',
    String(ratio),
    '--waves',
    ...(values.explore ? ['--explore', values.explore] : []),
  ]);
  const m = manifestOf(dir);
  const cuts = m.waves.bins.cuts;
  // True population bin mix per class (in-strata samples, judged or not) vs delivered.
  const inStrata = new Set(
    Object.keys(m.waves.cells.reduce((a, c) => ({ ...a, [c.stratum]: 1 }), {})),
  );
  const bucketOf = (t) =>
    exact.config.buckets.find((b) => t.turnCount >= b.min && t.turnCount <= b.max)?.name;
  const signals = {
    complexity: exact.config.complexity,
    reasoningModels: exact.config.reasoningModels,
  };
  const binById = new Map();
  const pop = [new Array(cuts.length + 1).fill(0), new Array(cuts.length + 1).fill(0)];
  // The population the balance draws from: one row per distinct message (the
  // smallest key wins, as the balancer's dedup keeps), in the strata.
  const seedKey = seed32(exact.config.seed);
  const rep = new Map();
  for (const t of truthRows) {
    if (!inStrata.has(bucketOf(t))) continue;
    const k = unitHash(t.sampleId, seedKey);
    const cur = rep.get(t.userMessage);
    if (!cur || k < cur.k) rep.set(t.userMessage, { k, t });
  }
  // The oracle (bench/oracle.mjs): per stratum, the fewest judge calls that fill the
  // full judging's quotas when each signal bin's true yield is known.
  const oracleCells = new Map();
  for (const { t } of rep.values()) {
    const b = binOf(signalsScore(t, signals), cuts);
    pop[t.label][b]++;
    const key = `${bucketOf(t)}|${b}`;
    const c = oracleCells.get(key) ?? { stratum: bucketOf(t), n: [0, 0] };
    c.n[t.label]++;
    oracleCells.set(key, c);
  }
  let oracle = 0;
  for (const s of inStrata) {
    const q = [0, 1].map((l) => exact.selected.byLabelStratum[l][s] ?? 0);
    oracle += oracleRows(
      [...oracleCells.values()].filter((c) => c.stratum === s),
      q,
    );
  }
  for (const t of truthRows) binById.set(t.sampleId, binOf(signalsScore(t, signals), cuts));
  const mix = (dataset) => {
    const del = [new Array(cuts.length + 1).fill(0), new Array(cuts.length + 1).fill(0)];
    for (const l of dataset) del[l.label][binById.get(l.id)]++;
    return [0, 1].map((label) => {
      const P = pop[label].reduce((a, b) => a + b, 0);
      const D = del[label].reduce((a, b) => a + b, 0);
      let tv = 0;
      let minRatio = Infinity;
      pop[label].forEach((p, b) => {
        tv += Math.abs(p / P - del[label][b] / D) / 2;
        if (p / P >= 0.01) minRatio = Math.min(minRatio, del[label][b] / D / (p / P));
      });
      return { tv: +tv.toFixed(4), minRatio: +minRatio.toFixed(3) };
    });
  };
  const strata = m.waves.strata.map((s) => ({
    label: s.label,
    stratum: s.stratum,
    exact: exact.selected.byLabelStratum[s.label][s.stratum],
    delivered: m.selected.byLabelStratum[s.label][s.stratum],
  }));
  results.push({
    ratio,
    outcome: m.waves.outcome,
    waves: m.waves.waves.length,
    judged: m.judge.samplesJudged,
    requests: m.judge.calls,
    delivered: m.selected.total,
    callsPerDelivered: +(m.judge.samplesJudged / m.selected.total).toFixed(3),
    oracleJudged: Math.round(oracle),
    oraclePerDelivered: +(oracle / exact.selected.total).toFixed(3),
    baselineJudged: all.judge.samplesJudged,
    baselinePerDelivered: +(all.judge.samplesJudged / exact.selected.total).toFixed(3),
    allQuotasMet: m.waves.strata.every((s) => s.delivered === s.quota),
    worstStratumGap: Math.max(...strata.map((s) => Math.abs(s.delivered - s.exact) / s.exact)),
    strata,
    mixWaves: mix(jsonl(join(dir, 'train.jsonl'))),
    mixFull: mix(jsonl(join(exactDir, 'train.jsonl'))),
    mixEstimated: m.waves.binMix.map((b) => ({ tv: b.tv, minRatio: b.minRatio })),
    wallSeconds: +r.wall.toFixed(1),
    peakMiB: Math.round(r.peakKiB / 1024),
  });
}

const out = {
  machine: { cores: cpus().length, node: process.version },
  conversations,
  samples: all.judge.samplesJudged,
  baseline: { wallSeconds: +allRun.wall.toFixed(1), peakMiB: Math.round(allRun.peakKiB / 1024) },
  results,
};
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
for (const r of results) {
  log(
    `ratio ${r.ratio}: ${r.judged} judged (${r.requests} requests, ${r.waves} waves) for ${r.delivered} delivered = ` +
      `${r.callsPerDelivered} calls/sample vs ${r.baselinePerDelivered} judging all and ${r.oraclePerDelivered} for the oracle ` +
      `(bench/oracle.mjs); quotas met: ${r.allQuotasMet}; ` +
      `worst stratum gap vs full judging ${(r.worstStratumGap * 100).toFixed(2)}%; bin-mix TV reasoning ${r.mixWaves[0].tv} ` +
      `(full judging ${r.mixFull[0].tv}), non-reasoning ${r.mixWaves[1].tv} (${r.mixFull[1].tv})`,
  );
}
