// Benchmark for the dataset formats (issue 16): a balanced dataset of --total samples
// (from a generated annotated file, with a 5% validation split) converted to each
// format alone and to all of them, one process per run, wall time and peak RSS.
// The baseline is a process that only loads the module and reads the splits (no format).
//
//   node bench/formats.mjs [--rows 300000] [--total 100000] [--runs 1]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '300000' },
    total: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '1' },
  },
});
const root = join(import.meta.dirname, '..');
const work = join(root, '.bench');
mkdirSync(work, { recursive: true });
const cli = join(root, 'bin', 'sft-balancer.js');
const input = join(work, `annotated-${values.rows}.jsonl`);
const dir = join(work, `formats-${values.total}`);
const log = (s) => process.stderr.write(`${s}\n`);

if (!existsSync(input)) {
  log(`generating ${values.rows} annotated rows → ${input}`);
  execFileSync('node', [
    cli,
    'generate',
    '--rows',
    values.rows,
    '--annotated',
    '--seed',
    '7',
    '--out',
    input,
    '--quiet',
  ]);
}
if (!existsSync(join(dir, 'train.jsonl'))) {
  log(`balancing to ${values.total} → ${dir}`);
  execFileSync('node', [
    cli,
    'balance',
    '--input',
    input,
    '--out',
    dir,
    '--total',
    values.total,
    '--validation',
    '0.05',
    '--stratify',
    'turnBucket,position',
    '--quiet',
  ]);
}

const runner = `
const { writeDatasetFormats } = require(${JSON.stringify(join(root, 'dist/adapters/files/dataset-formats.js'))});
const formats = process.argv[1] ? process.argv[1].split(',') : [];
writeDatasetFormats(${JSON.stringify(dir)}, { formats, card: formats.length > 0 })
  .then((r) => process.stderr.write(JSON.stringify({ files: Object.keys(r.files).length, chat: r.chat && r.chat.bySplit.train.tokens })))
  .catch((e) => { console.error(e); process.exit(1); });`;

function measure(formats) {
  const out = execFileSync(
    'python3',
    [join(root, 'bench', 'measure.py'), 'node', '-e', runner, formats],
    { encoding: 'utf8' },
  );
  const r = JSON.parse(out);
  if (r.code !== 0) throw new Error(`formats ${formats} failed:\n${r.stderr}`);
  return r;
}

const rows = { train: 0, validation: 0 };
for (const s of Object.keys(rows))
  rows[s] = Number(
    execFileSync('wc', ['-l', join(dir, `${s}.jsonl`)], { encoding: 'utf8' }).split(' ')[0],
  );
const results = [];
for (const formats of ['', 'chat', 'classifier', 'parquet', 'chat,classifier,parquet']) {
  for (let i = 0; i < Number(values.runs); i++) {
    for (const d of ['chat', 'classifier', 'data'])
      rmSync(join(dir, d), { recursive: true, force: true });
    const r = measure(formats);
    const size = (p) => (existsSync(join(dir, p)) ? statSync(join(dir, p)).size : 0);
    results.push({
      formats: formats || '(read only)',
      wallS: Math.round(r.wall * 100) / 100,
      peakMiB: Math.round(r.peakKiB / 1024),
      trainMB: {
        chat: size('chat/train.jsonl') / 1e6,
        classifier: size('classifier/train.jsonl') / 1e6,
        parquet: size('data/train-00000-of-00001.parquet') / 1e6,
      },
    });
    log(JSON.stringify(results.at(-1)));
  }
}
console.log(
  JSON.stringify(
    {
      node: process.version,
      rows,
      recordTrainMB: statSync(join(dir, 'train.jsonl')).size / 1e6,
      results,
    },
    null,
    2,
  ),
);
