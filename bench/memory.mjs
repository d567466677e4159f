// Benchmark: peak memory (max RSS) and wall time of a build as the input grows.
// Generates N conversations of telemetry (deterministic; cached under --dir), then for
// each size runs `run --in-process` with the session and the conversation pipeline and
// the local Functions runner (`run`, session; the fan-in runs in the runner's main
// process, forked instances are measured too). Peak RSS comes from each Node process
// itself (bench/maxrss.mjs, preloaded with --import, reports process.resourceUsage().maxRSS at
// exit); Azurite's peak (the storage emulator, not the Functions host) is sampled from
// /proc. Writes <dir>/results.json and prints a table. Needs `npm run build` first
// (npm run bench:memory does it). Each case runs once: the machine is usually shared.
//
//   node bench/memory.mjs [--sizes 100000,300000,1000000] [--modes session,conversation,runner]
//                         [--total 10000] [--dir /tmp/sft-balancer-bench-memory] [--bin PATH]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
};
const bin = arg('bin', join(root, 'bin', 'sft-balancer.js'));
const sizes = arg('sizes', '100000,300000,1000000').split(',').map(Number);
const modes = arg('modes', 'session,conversation,runner').split(',');
const total = arg('total', '10000');
const dir = arg('dir', '/tmp/sft-balancer-bench-memory');
const preload = join(root, 'bench', 'maxrss.mjs');
mkdirSync(dir, { recursive: true });

/** Peak RSS (kB) of each descendant of `pid` seen so far, by pid, from /proc. */
function sampleTree(pid, peaks) {
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return; // not Linux: only the self-reported figures
  }
  const parent = new Map();
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const inTree = (p) => {
    for (let q = p, n = 0; q > 1 && n < 50; q = parent.get(q) ?? 0, n++) if (q === pid) return true;
    return false;
  };
  for (const p of parent.keys()) {
    if (!inTree(p)) continue;
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const prev = peaks.get(p);
      peaks.set(p, { kb: Math.max(hwm, prev?.kb ?? 0), azurite: cmd.includes('azurite') });
    } catch {
      /* gone */
    }
  }
}

function measure(args) {
  const rssFile = join(dir, `maxrss-${process.pid}.jsonl`);
  rmSync(rssFile, { force: true });
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--import', preload, bin, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SFT_BENCH_MAXRSS: rssFile },
    });
    const peaks = new Map();
    const timer = setInterval(() => sampleTree(child.pid, peaks), 250);
    let stderr = '';
    child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-4000)));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`sft-balancer exited ${code}:\n${stderr}`));
      const reports = existsSync(rssFile)
        ? readFileSync(rssFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l))
        : [];
      rmSync(rssFile, { force: true });
      const mb = (kb) => Math.round(kb / 1024);
      const main = reports.find((r) => r.role === 'main');
      const workers = reports.filter((r) => r.role === 'worker');
      const azurite = [...peaks.values()].filter((p) => p.azurite);
      resolve({
        seconds: Math.round(seconds * 10) / 10,
        /** CPU seconds of the Node processes (not Azurite): steadier than wall time on a shared machine. */
        cpuSeconds: Math.round(reports.reduce((a, r) => a + (r.cpuSeconds ?? 0), 0) * 10) / 10,
        peakRssMb: mb(Math.max(0, ...reports.map((r) => r.maxRssKb))),
        mainRssMb: main ? mb(main.maxRssKb) : null,
        workerRssMb: workers.length ? mb(Math.max(...workers.map((w) => w.maxRssKb))) : null,
        azuriteRssMb: azurite.length ? mb(Math.max(...azurite.map((a) => a.kb))) : null,
      });
    });
  });
}

async function telemetry(n) {
  const file = join(dir, `telemetry-${n}.jsonl`);
  if (!existsSync(file)) {
    process.stderr.write(`generating ${n} conversations → ${file}\n`);
    const tmp = `${file}.partial`;
    await measure(['generate', '--conversations', String(n), '--out', tmp, '--quiet']);
    const { renameSync } = await import('node:fs');
    renameSync(tmp, file);
  }
  return file;
}

const results = [];
for (const n of sizes) {
  const input = await telemetry(n);
  for (const mode of modes) {
    const out = join(dir, `out-${mode}-${n}`);
    rmSync(out, { recursive: true, force: true });
    const common = ['--input', input, '--out', out, '--total', total, '--ratio', '0.5', '-q'];
    const args =
      mode === 'runner'
        ? ['run', ...common, '--pipeline', 'session']
        : ['run', '--in-process', ...common, '--pipeline', mode];
    process.stderr.write(`${mode} ${n}: `);
    const r = await measure(args);
    process.stderr.write(`${r.seconds} s (${r.cpuSeconds} s CPU), peak RSS ${r.peakRssMb} MB\n`);
    results.push({ conversations: n, mode, ...r });
    writeFileSync(join(dir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  }
}
console.log('| conversations | build | wall s | CPU s | peak RSS MB (Node) | Azurite MB |');
console.log('|---:|---|---:|---:|---:|---:|');
for (const r of results) {
  const build = r.mode === 'runner' ? 'runner (fan-in host)' : `in-process ${r.mode}`;
  console.log(
    `| ${r.conversations.toLocaleString('en-US')} | ${build} | ${r.seconds} | ${r.cpuSeconds} | ${r.peakRssMb} | ${r.azuriteRssMb ?? ''} |`,
  );
}
