// The exploration trade-off of yield-aware judging (issue 9): the wave planner alone
// (no files, no balancer) over generated session samples with their true labels as
// the judge, for several --explore values: calls per delivered sample against the
// delivered signal-bin mix of each class beside its true population mix.
//
//   node bench/waves-sweep.mjs [--conversations 350000] [--total 100000] [--ratios 0.5,0.7] [--explore 0,0.3,0.6,1]
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: '350000' },
    total: { type: 'string', default: '100000' },
    ratios: { type: 'string', default: '0.5,0.7' },
    explore: { type: 'string', default: '0,0.3,0.6,1' },
  },
});
const root = join(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const dist = (p) => require(join(root, 'dist', p));
const { generateTelemetry } = dist('shared/source/generate.js');
const { ConversationAssembler } = dist('shared/samples/assemble.js');
const { parseBalanceConfig } = dist('shared/contracts/config.js');
const { seed32, unitHash } = dist('shared/util/hash.js');
const { WavePlanner } = dist('shared/waves/planner.js');
const { waveItems } = dist('shared/waves/judge.js');

process.stderr.write(`generating ${values.conversations} conversations\n`);
const assembler = new ConversationAssembler();
const truth = new Map();
for (const t of generateTelemetry({
  conversations: Number(values.conversations),
  seed: 7,
  annotated: true,
})) {
  const { label, ...turn } = t;
  if (t.turnIndex === 1) truth.set(`${t.conversationId}:1`, label);
  assembler.add(turn);
}
const { samples } = assembler.samples('session');

const rows = [];
for (const ratio of values.ratios.split(',').map(Number)) {
  const config = parseBalanceConfig({ total: Number(values.total), ratio });
  const items = waveItems(samples, config);
  // The true population: one row per distinct message (the smallest key, as the balancer keeps).
  const seedKey = seed32(config.seed);
  const rep = new Map();
  for (const it of items) {
    const k = unitHash(it.id, seedKey);
    const cur = rep.get(it.group);
    if (!cur || k < cur.k) rep.set(it.group, { k, it });
  }
  for (const explore of values.explore.split(',').map(Number)) {
    const planner = new WavePlanner(items, config, { explore });
    for (let ids = planner.nextWave(); ids !== null; ids = planner.nextWave())
      planner.record(ids.map((id) => ({ id, label: truth.get(id) })));
    const selection = planner.selection();
    const nb = planner.binCount;
    const pop = [new Array(nb).fill(0), new Array(nb).fill(0)];
    const del = [new Array(nb).fill(0), new Array(nb).fill(0)];
    for (const { it } of rep.values()) pop[truth.get(it.id)][planner.binOf(it.score)]++;
    const scoreOf = new Map(items.map((it) => [it.id, it.score]));
    for (const s of selection) del[s.label][planner.binOf(scoreOf.get(s.id))]++;
    const mix = [0, 1].map((l) => {
      const P = pop[l].reduce((a, b) => a + b, 0);
      const D = del[l].reduce((a, b) => a + b, 0);
      let tv = 0;
      let min = Infinity;
      pop[l].forEach((p, b) => {
        tv += Math.abs(p / P - del[l][b] / D) / 2;
        if (p / P >= 0.01) min = Math.min(min, del[l][b] / D / (p / P));
      });
      return { tv: +tv.toFixed(3), minRatio: +min.toFixed(2) };
    });
    const row = {
      ratio,
      explore,
      outcome: planner.state,
      judged: planner.judged,
      delivered: selection.length,
      callsPerDelivered: +(planner.judged / selection.length).toFixed(3),
      reasoning: mix[0],
      nonReasoning: mix[1],
    };
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
}
process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
