// Benchmark for near-dedup (issue 16): MinHash + LSH over 300,000 generated messages
// on one core, and the detector's precision / recall on labelled pairs around the
// threshold. Needs `npm run build` (npm run bench:dedup does it).
//
//   node bench/dedup.mjs [--rows 300000] [--pairs 20000] [--shapes 14x8,16x7,20x6]
//                        [--throughput-shapes 16x7]
//
// CPU time (process.cpuUsage) is reported beside wall time: on a shared machine the
// wall time measures the neighbours as much as the code.
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const d = require('../dist/shared/dedup/index.js');
const { generateTelemetry } = require('../dist/shared/source/generate.js');
const { Rng } = require('../dist/shared/util/prng.js');

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '300000' },
    pairs: { type: 'string', default: '20000' },
    shapes: { type: 'string', default: '14x8,16x7,20x6' },
    'throughput-shapes': { type: 'string', default: '16x7' },
  },
});
const ROWS = Number(values.rows);
const PAIRS = Number(values.pairs);
const shapes = (v) => v.split(',').map((s) => s.split('x').map(Number));
const SHAPES = shapes(values.shapes);
const THROUGHPUT_SHAPES = shapes(values['throughput-shapes']);
const log = (s) => process.stdout.write(`${s}\n`);

function timed(f) {
  const c = process.cpuUsage();
  const w = performance.now();
  const result = f();
  const u = process.cpuUsage(c);
  return { result, cpu: (u.user + u.system) / 1e6, wall: (performance.now() - w) / 1000 };
}

// 1. Shingle choice: exact Jaccard of near-duplicate intents vs distinct prompts.
const texts = [];
for (const t of generateTelemetry({ rows: ROWS, seed: 7 })) texts.push(t.userMessage);
const distinctTexts = [...new Set(texts)].filter((t) => t.split(' ').length >= 6);
const rng = new Rng(42);
const WORDS = [
  'cache',
  'server',
  'login',
  'test',
  'queue',
  'config',
  'parser',
  'worker',
  'index',
  'router',
];
function mutate(text, edits) {
  const w = text.split(' ');
  for (let e = 0; e < edits; e++) {
    const i = rng.int(0, w.length - 1);
    const kind = rng.int(0, 3);
    if (kind === 0 && /\d/.test(w[i])) w[i] = w[i].replace(/\d+/, String(rng.int(1, 999)));
    else if (kind === 1) w[i] = rng.pick(WORDS);
    else if (kind === 2) w.splice(i, 0, rng.pick(WORDS));
    else if (w.length > 3) w.splice(i, 1);
  }
  return w.join(' ');
}
const resend = (t) =>
  `  ${t.replace(/ /g, rng.chance(0.5) ? '  ' : ' \n')}${rng.pick(['', '?', '!', ' .'])}`.toUpperCase();
const numberEdit = (t) =>
  /\d/.test(t) ? t.replace(/\d+(?!.*\d)/, (m) => String(Number(m) + 1)) : `${t} 2`;
const intents = [];
const distinct = [];
for (let k = 0; k < 2000; k++) {
  const a = rng.pick(distinctTexts);
  intents.push(
    ['re-sent', a, resend(a)],
    ['number changed', a, numberEdit(a)],
    ['one word changed', a, mutate(a, 1)],
  );
  // Distinct prompts of the same template: same first three words, different text.
  const head = a.split(' ').slice(0, 3).join(' ');
  const b = distinctTexts.find((x, i) => i % 97 === k % 97 && x !== a && x.startsWith(head));
  if (b) distinct.push(['same template, other prompt', a, b]);
}
const SHINGLES = [
  { kind: 'char', size: 3 },
  { kind: 'char', size: 4 },
  { kind: 'char', size: 5 },
  { kind: 'char', size: 7 },
  { kind: 'word', size: 1 },
  { kind: 'word', size: 2 },
  { kind: 'word', size: 3 },
  { kind: 'word', size: 5 },
];
log(
  `## Shingles: share of pairs at exact Jaccard ≥ 0.8 (mean Jaccard), ${intents.length / 3} of each near-duplicate kind, ${distinct.length} distinct`,
);
log(`| shingles | re-sent | number changed | one word changed | same template, other prompt |`);
log(`|---|---|---|---|---|`);
for (const sh of SHINGLES) {
  const cells = [
    're-sent',
    'number changed',
    'one word changed',
    'same template, other prompt',
  ].map((kind) => {
    const ps = [...intents, ...distinct].filter((p) => p[0] === kind);
    const js = ps.map(([, a, b]) =>
      d.jaccard(d.shingleSet(d.normalizeText(a), sh, 1), d.shingleSet(d.normalizeText(b), sh, 1)),
    );
    const hit = js.filter((j) => j >= 0.8).length / js.length;
    return `${(100 * hit).toFixed(1)}% (${(js.reduce((x, y) => x + y, 0) / js.length).toFixed(2)})`;
  });
  log(`| ${sh.kind} ${sh.size}-grams | ${cells.join(' | ')} |`);
}

// 2. Labelled pairs around the threshold: exact char-5 Jaccard in [0.6, 1.0].
const SH = { kind: 'char', size: 5 };
const labelled = [];
while (labelled.length < PAIRS) {
  const a = rng.pick(distinctTexts);
  const b = mutate(a, rng.int(0, 4));
  if (rng.chance(0.3)) continue;
  const j = d.jaccard(
    d.shingleSet(d.normalizeText(a), SH, 0x2545f491),
    d.shingleSet(d.normalizeText(b), SH, 0x2545f491),
  );
  if (j >= 0.6 && j <= 1) labelled.push({ a, b, j });
}
const BUCKETS = [0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 1.0001];
log(
  `\n## Precision / recall on ${labelled.length} labelled pairs (positive: exact char-5 Jaccard ≥ 0.8), threshold 0.8`,
);
log(
  `| shape | perms | P(0.7) | P(0.8) | P(0.9) | precision | recall | F1 | ${BUCKETS.slice(0, -1)
    .map((b, i) => `detected J∈[${b},${Math.min(1, BUCKETS[i + 1]).toFixed(2)})`)
    .join(' | ')} |`,
);
log(
  `|---|---|---|---|---|---|---|---|${BUCKETS.slice(0, -1)
    .map(() => '---')
    .join('|')}|`,
);
for (const [bands, rows] of SHAPES) {
  const o = d.parseDedupOptions({ bands, rows });
  const signer = d.signerFor(o);
  let tp = 0,
    fp = 0,
    fn = 0;
  const hits = BUCKETS.map(() => [0, 0]);
  labelled.forEach((p, k) => {
    const r = d.dedupSignatures(
      [
        { id: `a${k}`, signature: signer.sign(p.a) },
        { id: `b${k}`, signature: signer.sign(p.b) },
      ],
      o,
    );
    const found = r.removed.length === 1;
    const pos = p.j >= 0.8;
    if (found && pos) tp++;
    else if (found) fp++;
    else if (pos) fn++;
    const bi = BUCKETS.findIndex((b, i) => p.j >= b && p.j < BUCKETS[i + 1]);
    hits[bi][0] += found ? 1 : 0;
    hits[bi][1]++;
  });
  const precision = tp / (tp + fp);
  const recall = tp / (tp + fn);
  const probs = d.detectionTable(o).map((x) => x.probability.toFixed(4));
  log(
    `| ${bands}×${rows} | ${bands * rows} | ${probs.join(' | ')} | ${precision.toFixed(3)} | ${recall.toFixed(3)} | ${((2 * precision * recall) / (precision + recall)).toFixed(3)} | ${hits
      .slice(0, -1)
      .map(([h, n]) => `${((100 * h) / n).toFixed(1)}% of ${n}`)
      .join(' | ')} |`,
  );
}

// 3. Throughput on ROWS generated messages, one core.
log(
  `\n## Throughput: ${ROWS} generated messages (mean ${(texts.reduce((a, t) => a + t.length, 0) / texts.length).toFixed(0)} chars), one core`,
);
log(
  `| shape | mode | sign cpu s | dedup cpu s | msgs/s (cpu) | wall s | removed | clusters | candidate pairs | heap MB |`,
);
log(`|---|---|---|---|---|---|---|---|---|---|`);
const rowsIn = texts.map((text, i) => ({ id: `s${i}`, text }));
for (const [bands, rows] of THROUGHPUT_SHAPES) {
  for (const mode of ['cluster', 'greedy']) {
    const o = d.parseDedupOptions({ bands, rows, mode });
    globalThis.gc?.();
    const s = timed(() => d.signSamples(rowsIn, o));
    const r = timed(() => d.dedupSignatures(s.result, o));
    const heap = process.memoryUsage().heapUsed / 2 ** 20;
    const cpu = s.cpu + r.cpu;
    const st = r.result.stats;
    log(
      `| ${bands}×${rows} | ${mode} | ${s.cpu.toFixed(2)} | ${r.cpu.toFixed(2)} | ${Math.round(ROWS / cpu)} | ${(s.wall + r.wall).toFixed(2)} | ${st.removed} | ${st.clusters} | ${st.candidatePairs} | ${heap.toFixed(0)} |`,
    );
  }
}
