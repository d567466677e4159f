// Benchmark for the core engine (issue 2): `sft-balancer balance` on a generated
// 1,000,000-row annotated file to 100,000 at 50:50, as a whole process, side by side
// in one run with (a) the seed's own pandas balance_by_class reading and writing the
// same JSONL and (b) a floor that only reads and JSON.parses every line.
//
//   node bench/balance.mjs [--runs 3] [--pandas-runs 1] [--rows 1000000]
//
// Prints medians of wall time and peak RSS, and the ratios against the targets.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'pandas-runs': { type: 'string', default: '1' },
    rows: { type: 'string', default: '1000000' },
  },
});
const runs = Number(values.runs);
const pandasRuns = Number(values['pandas-runs']);
const rows = Number(values.rows);
const root = join(import.meta.dirname, '..');
const work = join(root, '.bench');
mkdirSync(work, { recursive: true });
const cli = join(root, 'bin', 'sft-balancer.js');
const input = join(work, `annotated-${rows}.jsonl`);
const shuffledInput = join(work, `annotated-${rows}-shuffled.jsonl`);

const log = (s) => process.stderr.write(`${s}\n`);
const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');

if (!existsSync(input)) {
  log(`generating ${rows} annotated rows → ${input}`);
  execFileSync('node', [
    cli,
    'generate',
    '--rows',
    String(rows),
    '--annotated',
    '--seed',
    '7',
    '--out',
    input,
    '--quiet',
  ]);
}
if (!existsSync(shuffledInput)) {
  log('writing a shuffled copy');
  const lines = readFileSync(input, 'utf8').split('\n').filter(Boolean);
  let s = 99;
  for (let i = lines.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [lines[i], lines[j]] = [lines[j], lines[i]];
  }
  writeFileSync(shuffledInput, lines.join('\n') + '\n');
}

function measure(cmd, args) {
  const out = execFileSync('python3', [join(root, 'bench', 'measure.py'), cmd, ...args], {
    encoding: 'utf8',
  });
  const r = JSON.parse(out);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

let pandasPython = null;
for (const py of ['/usr/bin/python3', 'python3']) {
  try {
    execFileSync(py, ['-c', 'import pandas'], { stdio: 'ignore' });
    pandasPython = py;
    break;
  } catch {
    /* try the next */
  }
}

const subjects = {
  floor: () => measure('node', [join(root, 'bench', 'floor.mjs'), input]),
  balance: () =>
    measure('node', [
      cli,
      'balance',
      '--no-probe', // the probe is benchmarked apart (npm run bench:probe)
      '--no-near-dedup', // as pandas' balance_by_class; near-dedup: npm run bench:near-dedup-build
      '--input',
      input,
      '--out',
      join(work, 'bal-50'),
      '--total',
      '100000',
      '--ratio',
      '0.5',
      '--quiet',
    ]),
  'balance --threads 1': () =>
    measure('node', [
      cli,
      'balance',
      '--no-probe', // the probe is benchmarked apart (npm run bench:probe)
      '--no-near-dedup', // as pandas' balance_by_class; near-dedup: npm run bench:near-dedup-build
      '--input',
      input,
      '--out',
      join(work, 'bal-50-t1'),
      '--total',
      '100000',
      '--ratio',
      '0.5',
      '--threads',
      '1',
      '--quiet',
    ]),
};
if (pandasPython) {
  subjects.pandas = () =>
    measure(pandasPython, [
      join(root, 'bench', 'seed_balance.py'),
      input,
      join(work, 'pandas-50.jsonl'),
      '100000',
      '0.5',
    ]);
} else {
  log('pandas not found (apt-get install python3-pandas): the pandas column is skipped');
}

const results = Object.fromEntries(Object.keys(subjects).map((k) => [k, []]));
for (let i = 0; i < Math.max(runs, pandasRuns); i++) {
  for (const [name, run] of Object.entries(subjects)) {
    if (name === 'pandas' ? i >= pandasRuns : i >= runs) continue;
    log(`run ${i + 1}: ${name}`);
    results[name].push(run());
  }
}

// Correctness alongside speed: exact counts, no repeated id, order-independent bytes.
const trainOf = (dir) =>
  readFileSync(join(work, dir, 'train.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean);
const t50 = trainOf('bal-50');
const ids = new Set();
const byLabel = { 0: 0, 1: 0 };
for (const l of t50) {
  const o = JSON.parse(l);
  ids.add(o.id);
  byLabel[o.label]++;
}
execFileSync('node', [
  cli,
  'balance',
  '--no-probe', // the probe is benchmarked apart (npm run bench:probe)
  '--no-near-dedup', // as pandas' balance_by_class; near-dedup: npm run bench:near-dedup-build
  '--input',
  shuffledInput,
  '--out',
  join(work, 'bal-50-shuf'),
  '--total',
  '100000',
  '--ratio',
  '0.5',
  '--quiet',
]);
execFileSync('node', [
  cli,
  'balance',
  '--no-probe', // the probe is benchmarked apart (npm run bench:probe)
  '--no-near-dedup', // as pandas' balance_by_class; near-dedup: npm run bench:near-dedup-build
  '--input',
  input,
  '--out',
  join(work, 'bal-70'),
  '--total',
  '100000',
  '--ratio',
  '0.7',
  '--quiet',
]);
const by70 = { 0: 0, 1: 0 };
for (const l of trainOf('bal-70')) by70[JSON.parse(l).label]++;
const checks = {
  '50:50 counts': `${byLabel[0]} + ${byLabel[1]}`,
  '70:30 counts': `${by70[0]} + ${by70[1]}`,
  'repeated ids': t50.length - ids.size,
  'shuffled copy, same bytes':
    sha(join(work, 'bal-50', 'train.jsonl')) === sha(join(work, 'bal-50-shuf', 'train.jsonl')),
  '1 thread, same bytes':
    sha(join(work, 'bal-50', 'train.jsonl')) === sha(join(work, 'bal-50-t1', 'train.jsonl')),
};

const summary = {};
for (const [name, rs] of Object.entries(results)) {
  summary[name] = {
    runs: rs.length,
    wallSeconds: median(rs.map((r) => r.wall)),
    peakMiB: median(rs.map((r) => r.peakKiB)) / 1024,
    cpuSeconds: median(rs.map((r) => r.user + r.sys)),
  };
}
const fmt = (x, d = 2) => x.toFixed(d);
const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.log(`\nbalance 1,000,000 annotated rows → 100,000 at 50:50 · medians · ${machine}\n`);
// The machine is shared: its load is printed, and CPU time (user + sys) beside wall time.
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`load average at the end: ${load}`);
console.log('subject               runs   wall (s)   peak RSS (MiB)   CPU (s)');
for (const [name, s] of Object.entries(summary)) {
  console.log(
    `${name.padEnd(22)}${String(s.runs).padStart(4)}${fmt(s.wallSeconds).padStart(11)}${fmt(s.peakMiB, 0).padStart(17)}${fmt(s.cpuSeconds).padStart(10)}`,
  );
}
const b = summary.balance;
console.log('\nratios (targets):');
console.log(
  `  balance / floor wall     ${fmt(b.wallSeconds / summary.floor.wallSeconds)}  (≤ 1.5)`,
);
console.log(`  balance / floor CPU      ${fmt(b.cpuSeconds / summary.floor.cpuSeconds)}`);
if (summary.pandas) {
  console.log(
    `  balance / pandas wall    ${fmt(b.wallSeconds / summary.pandas.wallSeconds, 3)}  (≤ 0.1)`,
  );
  console.log(`  balance / pandas memory  ${fmt(b.peakMiB / summary.pandas.peakMiB, 3)}  (≤ 0.1)`);
}
console.log('\nchecks:');
for (const [k, v] of Object.entries(checks)) console.log(`  ${k}: ${v}`);
writeFileSync(
  join(work, 'balance-results.json'),
  JSON.stringify({ machine, load, summary, checks }, null, 2),
);
