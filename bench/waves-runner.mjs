// Benchmark for yield-aware judging in the Functions pipeline (issue 9): the same
// wave-judged build on the local runner (embedded Azurite, queues, a scan round, then
// rounds of batches planned by the fan-in) and in one process, on generated telemetry
// whose true label is replayed as the judge (calls counted, not paid).
//
//   node bench/waves-runner.mjs [--conversations 350000] [--total 100000] [--ratios 0.5,0.7]
//
// Reports per ratio: samples judged per delivered sample, judge requests, waves and
// wall time of both, and whether the two train.jsonl files are byte-identical. The
// baseline (judging every sample first) is bench/waves.mjs's.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { log, manifestOf, measure, root, telemetryFor } from './waves-common.mjs';

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: '350000' },
    total: { type: 'string', default: '100000' },
    ratios: { type: 'string', default: '0.5,0.7' },
  },
});
const conversations = Number(values.conversations);
const total = Number(values.total);
const ratios = values.ratios.split(',').map(Number);
const work = join(root, '.bench', 'waves-runner');
mkdirSync(work, { recursive: true });
const telemetry = telemetryFor(conversations);

const sha = (p) => createHash('sha256').update(readFileSync(p)).digest('hex');

const common = ['--quiet', '--input', telemetry, '--replay', telemetry, '--total', String(total)];

const summary = (m, r) => ({
  outcome: m.waves.outcome,
  waves: m.waves.waves.length,
  judgedPerWave: m.waves.waves.map((w) => w.judged),
  judged: m.judge.samplesJudged,
  requests: m.judge.calls,
  delivered: m.selected.total,
  callsPerDelivered: +(m.judge.samplesJudged / m.selected.total).toFixed(3),
  allQuotasMet: m.waves.strata.every((s) => s.delivered === s.quota),
  wallSeconds: +r.wall.toFixed(1),
  peakMiB: Math.round(r.peakKiB / 1024),
});

const results = [];
for (const ratio of ratios) {
  const inDir = join(work, `inproc-${ratio}`);
  const fnDir = join(work, `runner-${ratio}`);
  rmSync(inDir, { recursive: true, force: true });
  rmSync(fnDir, { recursive: true, force: true });
  log(`ratio ${ratio}: in-process`);
  const a = measure([
    'run',
    '--in-process',
    ...common,
    '--out',
    inDir,
    '--ratio',
    String(ratio),
    '--waves',
  ]);
  log(`ratio ${ratio}: runner (embedded Azurite)`);
  const b = measure(['run', ...common, '--out', fnDir, '--ratio', String(ratio), '--waves']);
  const mi = manifestOf(inDir);
  const mf = manifestOf(fnDir);
  results.push({
    ratio,
    inProcess: summary(mi, a),
    runner: {
      ...summary(mf, b),
      batches: { scan: mf.batches.planned, waves: mf.batches.waveBatches.done },
    },
    // The judge name in each row's metadata is the only difference allowed.
    sameSelection:
      readFileSync(join(inDir, 'train.jsonl'), 'utf8').replace(/"judge":"[^"]*"/g, '') ===
      readFileSync(join(fnDir, 'train.jsonl'), 'utf8').replace(/"judge":"[^"]*"/g, ''),
    trainSha256: {
      inProcess: sha(join(inDir, 'train.jsonl')),
      runner: sha(join(fnDir, 'train.jsonl')),
    },
  });
}

process.stdout.write(
  JSON.stringify(
    { machine: { cores: cpus().length, node: process.version }, conversations, total, results },
    null,
    2,
  ) + '\n',
);
for (const r of results) {
  log(
    `ratio ${r.ratio}: runner ${r.runner.judged} judged (${r.runner.requests} requests, ${r.runner.waves} waves) for ` +
      `${r.runner.delivered} delivered = ${r.runner.callsPerDelivered} calls/sample in ${r.runner.wallSeconds} s; ` +
      `in-process ${r.inProcess.callsPerDelivered} in ${r.inProcess.wallSeconds} s; same selection: ${r.sameSelection}`,
  );
}
