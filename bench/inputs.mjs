// Benchmark for the input formats (issue 18): `balance` of --rows annotated rows from
// JSONL, CSV and Parquet copies of one table, one process per run, wall time and peak
// RSS (bench/measure.py), and a check that the three train.jsonl are the same bytes.
//
//   node bench/inputs.mjs [--rows 1000000] [--total 100000]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    total: { type: 'string', default: '100000' },
  },
});
const root = join(import.meta.dirname, '..');
const work = join(root, '.bench');
mkdirSync(work, { recursive: true });
const cli = join(root, 'bin', 'sft-balancer.js');
const jsonl = join(work, `annotated-${values.rows}.jsonl`);
const csv = join(work, `annotated-${values.rows}.csv`);
const parquet = join(work, `annotated-${values.rows}.parquet`);
const log = (s) => process.stderr.write(`${s}\n`);

if (!existsSync(jsonl)) {
  log(`generating ${values.rows} annotated rows → ${jsonl}`);
  execFileSync('node', [
    cli,
    'generate',
    '--rows',
    values.rows,
    '--annotated',
    '--seed',
    '7',
    '--out',
    jsonl,
    '--quiet',
  ]);
}

const TYPES = {
  turnIndex: 'int32',
  turnCount: 'int32',
  numRequests: 'int32',
  promptTokenDelta: 'int32',
  label: 'int32',
  turnDurationMs: 'double',
  tools: 'string_list',
};
const quote = (s) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

async function convert() {
  const { ParquetTableWriter } = await import(
    join(root, 'dist', 'adapters', 'files', 'parquet.js')
  );
  const lines = createInterface({ input: createReadStream(jsonl), crlfDelay: Infinity });
  let columns = null;
  let pw = null;
  const out = createWriteStream(csv);
  let buf = [];
  for await (const line of lines) {
    if (!line) continue;
    const row = JSON.parse(line);
    if (!columns) {
      columns = Object.keys(row);
      out.write(columns.join(',') + '\r\n');
      pw = new ParquetTableWriter(
        parquet,
        columns.map((name) => ({ name, type: TYPES[name] ?? 'string', nullable: true })),
      );
    }
    buf.push(
      columns
        .map((c) =>
          row[c] === undefined
            ? ''
            : quote(typeof row[c] === 'string' ? row[c] : JSON.stringify(row[c])),
        )
        .join(','),
    );
    const t = {};
    for (const c of columns) t[c] = row[c] ?? null;
    pw.write(t);
    if (buf.length >= 10_000) {
      if (!out.write(buf.join('\r\n') + '\r\n')) await new Promise((r) => out.once('drain', r));
      buf = [];
    }
  }
  if (buf.length) out.write(buf.join('\r\n') + '\r\n');
  await new Promise((r) => out.end(r));
  pw.close();
}
if (!existsSync(csv) || !existsSync(parquet)) {
  log(`converting → ${csv}, ${parquet}`);
  await convert();
}

function measure(cmd, args) {
  const out = execFileSync('python3', [join(root, 'bench', 'measure.py'), cmd, ...args], {
    encoding: 'utf8',
  });
  const r = JSON.parse(out);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r;
}

const results = {};
for (const [name, input] of [
  ['jsonl', jsonl],
  ['csv', csv],
  ['parquet', parquet],
]) {
  log(`balance from ${name}`);
  results[name] = measure('node', [
    cli,
    'balance',
    '--input',
    input,
    '--out',
    join(work, `inputs-${name}`),
    '--total',
    values.total,
    '--quiet',
  ]);
}
const sha = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');
const shas = Object.keys(results).map((n) => sha(join(work, `inputs-${n}`, 'train.jsonl')));
const mib = (f) => (statSync(f).size / 2 ** 20).toFixed(0);
const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
console.log(
  `\nbalance ${Number(values.rows).toLocaleString('en-US')} annotated rows → ${values.total} · one run each · ${machine}\n`,
);
console.log('input     size (MiB)   wall (s)   peak RSS (MiB)');
for (const [name, f] of [
  ['jsonl', jsonl],
  ['csv', csv],
  ['parquet', parquet],
]) {
  const r = results[name];
  console.log(
    `${name.padEnd(9)} ${mib(f).padStart(10)} ${r.wall.toFixed(2).padStart(10)} ${(r.peakKiB / 1024).toFixed(0).padStart(16)}`,
  );
}
console.log(`\nsame train.jsonl bytes from all three: ${shas.every((s) => s === shas[0])}`);
