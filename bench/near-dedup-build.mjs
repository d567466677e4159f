// Benchmark (issue 16): what near-duplicate removal adds to an in-process build's wall
// time. The same generated input balanced with and without --no-near-dedup, runs
// alternated, as whole processes (`balance` on annotated rows; `run --in-process` on
// telemetry with --cmd run). Target: ≤ 25% more wall time.
//
//   node bench/near-dedup-build.mjs [--rows 300000] [--total 30000] [--runs 3] [--cmd balance|run]
//
// Prints each run's wall and CPU time (user + system of the child), the medians, the
// ratio, and the near-duplicates removed and scans taken (manifest.nearDuplicates).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '300000' },
    total: { type: 'string', default: '30000' },
    runs: { type: 'string', default: '3' },
    cmd: { type: 'string', default: 'balance' },
  },
});
const rows = Number(values.rows);
const runs = Number(values.runs);
const cmd = values.cmd;
const root = join(import.meta.dirname, '..');
const work = join(root, '.bench');
mkdirSync(work, { recursive: true });
const cli = join(root, 'bin', 'sft-balancer.js');
const annotated = cmd === 'balance';
const input = join(work, `${annotated ? 'annotated' : 'telemetry'}-${rows}.jsonl`);
const log = (s) => process.stderr.write(`${s}\n`);

if (!existsSync(input)) {
  log(`generating ${rows} rows → ${input}`);
  execFileSync('node', [
    cli,
    'generate',
    '--rows',
    String(rows),
    ...(annotated ? ['--annotated'] : []),
    '--seed',
    '7',
    '--out',
    input,
    '--quiet',
  ]);
}

function once(near) {
  const out = join(work, `near-${cmd}-${near ? 'on' : 'off'}`);
  const args = [cli, cmd, '--input', input, '--out', out, '--total', values.total, '--quiet'];
  if (cmd === 'run') args.push('--in-process');
  args.push('--no-probe');
  if (!near) args.push('--no-near-dedup');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    'bash',
    ['-c', `/usr/bin/time -f '%U %S' node ${args.join(' ')} 2>&1 >/dev/null | tail -1`],
    {
      encoding: 'utf8',
    },
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const [u, s] = r.stdout.trim().split(/\s+/).map(Number);
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  return { wall, cpu: u + s, near: m.nearDuplicates ?? null, selected: m.selected.total };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const res = { on: [], off: [] };
for (let i = 0; i < runs; i++) {
  for (const near of i % 2 === 0 ? [false, true] : [true, false]) {
    const r = once(near);
    res[near ? 'on' : 'off'].push(r);
    log(
      `${cmd} near-dedup ${near ? 'on ' : 'off'}: wall ${r.wall.toFixed(2)} s, cpu ${r.cpu.toFixed(2)} s, ` +
        `selected ${r.selected}` +
        (r.near ? `, removed ${r.near.removed}, scans ${r.near.passes}` : '') +
        `, load ${loadavg()[0].toFixed(1)}`,
    );
  }
}
const w = (k) => median(res[k].map((r) => r.wall));
const c = (k) => median(res[k].map((r) => r.cpu));
console.log(
  JSON.stringify(
    {
      cmd,
      rows,
      total: Number(values.total),
      runs,
      wallOff: w('off'),
      wallOn: w('on'),
      wallRatio: Math.round((w('on') / w('off')) * 1000) / 1000,
      cpuOff: c('off'),
      cpuOn: c('on'),
      cpuRatio: Math.round((c('on') / c('off')) * 1000) / 1000,
      removed: res.on[0]?.near?.removed,
      scans: res.on[0]?.near?.passes,
      load: loadavg(),
    },
    null,
    2,
  ),
);
