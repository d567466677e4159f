// Benchmark: a session build of N first-turn samples (default 300,000: N complete
// conversations of generated telemetry, signals judge) through the local Functions
// runner on an embedded Azurite, against the in-process `run --in-process` of the
// same file. Alternates the two, --runs times each; reports the median wall time and
// throughput, checks the two train.jsonl files are byte-identical, and writes
// .bench/runner/results.json. Needs `npm run build` first (npm run bench:runner does it).
//
//   node bench/runner.mjs [--conversations 300000] [--runs 3] [--total 100000] [--instances N]
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'sft-balancer.js');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
};
const conversations = Number(arg('conversations', 300_000));
const runs = Number(arg('runs', 3));
const total = Number(arg('total', 100_000));
const instances = arg('instances', undefined);
const dir = join(root, '.bench', 'runner');
mkdirSync(dir, { recursive: true });

function cli(args, env = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    // /usr/bin/time (when there) reports the CPU seconds of the run and what it waited on.
    const timed = existsSync('/usr/bin/time');
    const cmd = timed ? '/usr/bin/time' : process.execPath;
    const argv = timed ? ['-f', 'CPU %U %S', process.execPath, bin, ...args] : [bin, ...args];
    const child = spawn(cmd, argv, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) reject(new Error(`sft-balancer ${args[0]} exited ${code}:\n${stderr}`));
      else {
        const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
        resolve({ ms, stderr, cpuS: m ? Number(m[1]) + Number(m[2]) : null });
      }
    });
  });
}

const sha = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const input = join(dir, `telemetry-${conversations}.jsonl`);
if (!existsSync(input)) {
  process.stderr.write(`generating ${conversations} complete conversations → ${input}\n`);
  await cli([
    'generate',
    '--conversations',
    String(conversations),
    '--incomplete',
    '0',
    '--seed',
    '7',
    '--out',
    input,
    '--quiet',
  ]);
}
const common = ['--input', input, '--total', String(total), '--quiet'];
const times = { inProcess: [], runner: [] };
const cpu = { inProcess: [], runner: [] };
const load = [];
let digests = new Set();
for (let i = 0; i < runs; i++) {
  const a = await cli(['run', '--in-process', ...common, '--out', join(dir, 'in-process')]);
  times.inProcess.push(a.ms);
  const b = await cli([
    'run',
    ...common,
    '--out',
    join(dir, `runner-${i}`),
    ...(instances ? ['--instances', instances] : []),
  ]);
  times.runner.push(b.ms);
  cpu.inProcess.push(a.cpuS);
  cpu.runner.push(b.cpuS);
  load.push(loadavg()[0]);
  digests.add(sha(join(dir, 'in-process', 'train.jsonl')));
  digests.add(sha(join(dir, `runner-${i}`, 'train.jsonl')));
  process.stderr.write(
    `run ${i + 1}/${runs}: in-process ${(a.ms / 1000).toFixed(1)} s (CPU ${a.cpuS} s), ` +
      `runner ${(b.ms / 1000).toFixed(1)} s (CPU ${b.cpuS} s), ratio ${(b.ms / a.ms).toFixed(2)}×, ` +
      `load ${loadavg()[0].toFixed(1)}\n`,
  );
}
const manifest = JSON.parse(readFileSync(join(dir, 'runner-0', 'manifest.json'), 'utf8'));
const samples = manifest.judge.samplesJudged;
const result = {
  machine: { cpus: cpus().length, node: process.version },
  input: { conversations, samples, bytes: readFileSync(input).length },
  total,
  runs,
  instances: instances ? Number(instances) : 1,
  identicalTrain: digests.size === 1,
  medianMs: { inProcess: median(times.inProcess), runner: median(times.runner) },
  samplesPerSecond: {
    inProcess: Math.round(samples / (median(times.inProcess) / 1000)),
    runner: Math.round(samples / (median(times.runner) / 1000)),
  },
  ratio: Math.round((median(times.runner) / median(times.inProcess)) * 100) / 100,
  ratios: times.runner.map((r, i) => Math.round((r / times.inProcess[i]) * 100) / 100),
  times,
  cpuSeconds: cpu,
  loadAverage1m: load,
};
writeFileSync(join(dir, 'results.json'), JSON.stringify(result, null, 2) + '\n');
process.stdout.write(
  `| path | median wall | samples/s |\n|---|---|---|\n` +
    `| in-process \`run --in-process\` | ${(result.medianMs.inProcess / 1000).toFixed(1)} s | ${result.samplesPerSecond.inProcess.toLocaleString('en-US')} |\n` +
    `| runner on Azurite (\`run\`) | ${(result.medianMs.runner / 1000).toFixed(1)} s | ${result.samplesPerSecond.runner.toLocaleString('en-US')} |\n` +
    `\nrunner / in-process = ${result.ratio}× median, per run ${result.ratios.join('×, ')}× (target ≤ 2× every run); ${samples.toLocaleString('en-US')} samples; train.jsonl identical: ${result.identicalTrain}\n`,
);
