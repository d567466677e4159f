// Benchmark for the baseline router probe (issue 17): `evaluate` on a 100,000-sample
// dataset (80:20 train/validation by conversation), as a whole process pinned to one
// core: wall time, CPU time and peak RSS; then scikit-learn's LogisticRegression on the
// same split with comparable features (bench/probe_sklearn.py, Debian python3-sklearn;
// benchmark only), and the AUC gap (target ≤ 0.02).
//
//   node bench/probe.mjs [--total 100000] [--runs 3] [--no-sklearn]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    total: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
    'no-sklearn': { type: 'boolean', default: false },
    child: { type: 'string' },
    out: { type: 'string' },
  },
});
const root = join(import.meta.dirname, '..');

if (values.child) {
  // Child mode: one evaluate, its CPU time written beside the outputs.
  const { evaluateDataset } = await import(join(root, 'dist', 'cli', 'evaluate.js'));
  const t0 = performance.now();
  const s = await evaluateDataset(values.child, { out: values.out });
  const cpu = process.cpuUsage();
  writeFileSync(
    join(values.out, 'timing.json'),
    JSON.stringify({
      wall: (performance.now() - t0) / 1000,
      cpu: (cpu.user + cpu.system) / 1e6,
      textAuc: s.textAuc,
    }),
  );
  process.exit(0);
}

const total = Number(values.total);
const runs = Number(values.runs);
const work = join(root, '.bench');
mkdirSync(work, { recursive: true });
const cli = join(root, 'bin', 'sft-balancer.js');
const log = (s) => process.stderr.write(`${s}\n`);
const annotated = join(work, `probe-annotated-${total}.jsonl`);
const dataset = join(work, `probe-dataset-${total}`);

if (!existsSync(join(dataset, 'validation.jsonl'))) {
  // Generated rows carry the generator's hidden label: 88% of messages are drawn from
  // their label's templates, the signals follow the label closely.
  const rows = String(total * 5);
  log(`generating ${rows} annotated rows, balancing to ${total} with 20% validation → ${dataset}`);
  execFileSync('node', [
    cli,
    'generate',
    '--rows',
    rows,
    '--annotated',
    '--seed',
    '17',
    '--out',
    annotated,
    '--quiet',
  ]);
  execFileSync('node', [
    cli,
    'balance',
    '--input',
    annotated,
    '--out',
    dataset,
    '--total',
    String(total),
    '--validation',
    '0.2',
    '--threads',
    '1',
    '--quiet',
  ]);
}

const pin = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return ['taskset', '-c', '0'];
  } catch {
    return [];
  }
})();

function measure(cmd) {
  const out = execFileSync('python3', [join(root, 'bench', 'measure.py'), ...cmd], {
    encoding: 'utf8',
  });
  const r = JSON.parse(out);
  if (r.code !== 0) throw new Error(`${cmd.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const results = [];
for (let i = 0; i < runs; i++) {
  const out = join(work, `probe-out-${i}`);
  mkdirSync(out, { recursive: true });
  const load = loadavg()[0];
  const r = measure([
    ...pin,
    'node',
    join(root, 'bench', 'probe.mjs'),
    '--child',
    dataset,
    '--out',
    out,
  ]);
  const t = JSON.parse(readFileSync(join(out, 'timing.json'), 'utf8'));
  results.push({ process: r.wall, evaluate: t.wall, cpu: t.cpu, peakMiB: r.peakKiB / 1024, load });
  log(
    `run ${i + 1}: process ${r.wall.toFixed(2)} s, evaluate ${t.wall.toFixed(2)} s wall / ${t.cpu.toFixed(2)} s CPU, peak ${(r.peakKiB / 1024).toFixed(0)} MiB (load ${load.toFixed(1)})`,
  );
}
const same =
  new Set(results.map((_, i) => readFileSync(join(work, `probe-out-${i}`, 'probe.json'), 'utf8')))
    .size === 1;
const probe = JSON.parse(readFileSync(join(work, 'probe-out-0', 'probe.json'), 'utf8'));
const ours = {
  text: probe.text.evaluations.validation.auc,
  signals: probe.signals.evaluations.validation.auc,
};

let sklearn = null;
if (!values['no-sklearn']) {
  log('scikit-learn LogisticRegression on the same split (this takes a few minutes)');
  const t0 = performance.now();
  sklearn = JSON.parse(
    execFileSync('/usr/bin/python3', [join(root, 'bench', 'probe_sklearn.py'), dataset], {
      encoding: 'utf8',
    }),
  );
  sklearn.wall = (performance.now() - t0) / 1000;
}

const summary = {
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    node: process.version,
    pinned: pin.length > 0,
  },
  samples: { train: probe.data.train.n, validation: probe.data.validation.n },
  runs: results,
  median: {
    processSeconds: median(results.map((r) => r.process)),
    evaluateSeconds: median(results.map((r) => r.evaluate)),
    cpuSeconds: median(results.map((r) => r.cpu)),
    peakMiB: median(results.map((r) => r.peakMiB)),
  },
  sameBytes: same,
  auc: {
    probe: ours,
    sklearn: sklearn && {
      text: sklearn.textAuc,
      signals: sklearn.signalsAuc,
      seconds: sklearn.wall,
    },
    gap: sklearn && {
      text: Math.abs(ours.text - sklearn.textAuc),
      signals: Math.abs(ours.signals - sklearn.signalsAuc),
    },
  },
  verdict: probe.message,
};
writeFileSync(join(work, 'probe-bench.json'), JSON.stringify(summary, null, 2) + '\n');
console.log(JSON.stringify(summary, null, 2));
const m = summary.median;
log(
  `\nprobe on ${probe.data.train.n + probe.data.validation.n} samples: ${m.cpuSeconds.toFixed(2)} s CPU (target ≤ 10), ` +
    `${m.evaluateSeconds.toFixed(2)} s wall in evaluate, ${m.processSeconds.toFixed(2)} s process, peak ${m.peakMiB.toFixed(0)} MiB; same bytes: ${same}`,
);
if (sklearn)
  log(
    `AUC text ${ours.text.toFixed(4)} vs scikit-learn ${sklearn.textAuc.toFixed(4)} (gap ${summary.auc.gap.text.toFixed(4)}, target ≤ 0.02); ` +
      `signals ${ours.signals.toFixed(4)} vs ${sklearn.signalsAuc.toFixed(4)}`,
  );
