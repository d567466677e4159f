/**
 * The Functions build reads a blob prefix of export parts as one source (sorted
 * names, `_SUCCESS` skipped, a missing final newline mended), in any input format: a
 * Kusto `.export` of CSV (also `.csv.gz`) or Parquet parts, JSONL, or a mix. A
 * `columns` mapping in the request renames the source's columns: the same dataset as
 * one blob with the contract's names.
 */
import { readFile } from 'node:fs/promises';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { ParquetTableWriter } from '../../adapters/files/parquet';
import { runPipeline } from '../../cli/jobs';
import { judgeFor } from '../../functions/lib/judges';
import { BuildRequestSchema, buildPaths, type BuildSpec } from '../../shared/build/spec';
import type { TableColumn } from '../../shared/dataset/index';
import { runBuild, specFor, telemetryFile, testDeps } from './harness';

type Row = Record<string, unknown>;

const quote = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
/** RFC 4180 as Excel writes it: UTF-8 BOM, CRLF, arrays as JSON text. */
function toCsv(rows: Row[], columns: string[], bom = true): string {
  const cell = (v: unknown) =>
    v === undefined ? '' : quote(typeof v === 'string' ? v : JSON.stringify(v));
  const body = rows.map((r) => columns.map((c) => cell(r[c])).join(',')).join('\r\n');
  return `${bom ? '\uFEFF' : ''}${columns.join(',')}\r\n${body}\r\n`;
}

const TYPES: Record<string, TableColumn['type']> = {
  turnIndex: 'int32',
  turnCount: 'int32',
  numRequests: 'int32',
  promptTokenDelta: 'int32',
  turnDurationMs: 'double',
  tools: 'string_list',
};
const tmp = mkdtempSync(join(tmpdir(), 'sftb-parts-'));
let n = 0;
/** A Parquet file of the rows (row groups of `group` rows), as bytes. */
function toParquet(rows: Row[], columns: string[], group = 120): Buffer {
  const path = join(tmp, `t${n++}.parquet`);
  const cols: TableColumn[] = columns.map((name) => ({
    name,
    type: TYPES[name] ?? 'string',
    nullable: true,
  }));
  const w = new ParquetTableWriter(path, cols, { rowGroupRows: group });
  for (const r of rows) {
    const t: Record<string, string | number | string[] | null> = {};
    for (const c of columns) t[c] = (r[c] ?? null) as string | number | string[] | null;
    w.write(t);
  }
  w.close();
  expect(statSync(path).size).toBeGreaterThan(0);
  return readFileSync(path);
}

let rows: Row[] = [];
let columns: string[] = [];
let jsonl = '';
beforeAll(async () => {
  const t = await telemetryFile(300, 8);
  rows = (await readFile(t.path, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row);
  // Messages with the characters CSV must quote: commas, quotes, CRLF inside a field.
  rows[0]!.userMessage = 'a "quoted", comma\r\nand a second line';
  rows[3]!.userMessage = 'ünïcödé, 😀\nline two';
  jsonl = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
  columns = Object.keys(rows[0]!);
});

const thirds = <T>(xs: T[]) => {
  const k = Math.floor(xs.length / 3);
  return [xs.slice(0, k), xs.slice(k, 2 * k), xs.slice(2 * k)] as const;
};

describe('a build from a blob prefix of parts, with a column mapping', () => {
  it('publishes the dataset of the one concatenated blob', async () => {
    const deps = testDeps();
    const text = jsonl;
    const lines = text.split('\n').filter(Boolean);
    // The parts use other names, and lack timestamp and tools (not needed here).
    const renamed = lines.map((l) => {
      const { conversationId, userMessage, timestamp, tools, ...rest } = JSON.parse(l) as Row;
      void timestamp;
      void tools;
      return JSON.stringify({ session_id: conversationId, prompt: userMessage, ...rest });
    });
    const plain = lines.map((l) => {
      const { timestamp, tools, ...rest } = JSON.parse(l) as Row;
      void timestamp;
      void tools;
      return JSON.stringify(rest);
    });
    await deps.store.ensureContainer();
    await deps.store.put('one/t.jsonl', plain.join('\n') + '\n');
    const third = Math.floor(renamed.length / 3);
    await deps.store.put('parts/part-2.jsonl', renamed.slice(2 * third).join('\n'));
    await deps.store.put('parts/part-0.jsonl', renamed.slice(0, third).join('\n')); // no final \n
    await deps.store.put('parts/part-1.jsonl', renamed.slice(third, 2 * third).join('\n') + '\n');
    await deps.store.put('parts/_SUCCESS', '');

    const a = specFor(deps, 'one-blob', { total: 150 }, { kind: 'blob', path: 'one/t.jsonl' });
    const b = specFor(
      deps,
      'parts-blob',
      { total: 150, columns: { conversationId: 'session_id', userMessage: 'prompt' } },
      { kind: 'blob', path: 'parts/' },
    );
    expect(await runBuild(deps, a)).toMatchObject({ state: 'succeeded' });
    const ob = await runBuild(deps, b);
    expect(ob, JSON.stringify(ob)).toMatchObject({ state: 'succeeded' });
    const trainA = (await deps.store.get(buildPaths(a.id).train))!.toString('utf8');
    const trainB = (await deps.store.get(buildPaths(b.id).train))!.toString('utf8');
    const manifest = JSON.parse(
      (await deps.store.get(buildPaths(b.id).manifest))!.toString('utf8'),
    );
    // Near-dedup (on by default) removes near-duplicates of this small generated source,
    // read through the column mapping alike: both builds deliver what the manifest says.
    expect(trainA.split('\n').filter(Boolean)).toHaveLength(manifest.selected.total);
    // What near-dedup leaves short of the target is stated, class by class, never hidden.
    const short = (manifest.shortfalls.classes as { target: number; delivered: number }[]).reduce(
      (n, c) => n + c.target - c.delivered,
      0,
    );
    expect(manifest.selected.total + short).toBe(150);
    expect(manifest.nearDuplicates.removed).toBeGreaterThan(0);
    expect(trainB).toBe(trainA);
    expect(
      (await deps.store.get(`${buildPaths(b.id).datasetPrefix}duplicates.jsonl`))!.toString(),
    ).toBe((await deps.store.get(`${buildPaths(a.id).datasetPrefix}duplicates.jsonl`))!.toString());
    expect(manifest.quarantine.total).toBe(0);
  }, 120_000);
});

describe('a build from CSV and Parquet export parts', () => {
  it('gives byte-identical train.jsonl from JSONL, CSV, .csv.gz, Parquet and mixed parts', async () => {
    const deps = testDeps();
    await deps.store.ensureContainer();
    const [r0, r1, r2] = thirds(rows);
    await deps.store.put('whole/t.jsonl', jsonl);
    await deps.store.put('csv/part-00.csv', toCsv(r0, columns));
    await deps.store.put('csv/part-01.csv.gz', gzipSync(toCsv(r1, columns, false)));
    await deps.store.put('csv/part-02.csv', toCsv(r2, columns));
    await deps.store.put('csv/_SUCCESS', '');
    await deps.store.put('pq/part-00.parquet', toParquet(r0, columns));
    await deps.store.put('pq/part-01.parquet', toParquet(r1, columns, 7));
    await deps.store.put('pq/part-02.parquet', toParquet(r2, columns));
    await deps.store.put('mix/a.csv', toCsv(r0, columns));
    await deps.store.put('mix/b.parquet', toParquet(r1, columns));
    await deps.store.put('mix/c.jsonl', r2.map((r) => JSON.stringify(r)).join('\n'));
    // One CSV blob, not a prefix: read as parts too (its bytes are not JSONL).
    await deps.store.put('one/t.csv', toCsv(rows, columns));
    // A format the name does not say: inputFormat in the request.
    await deps.store.put('named/export-0', toCsv(rows, columns));
    const trains: string[] = [];
    let spec0: BuildSpec | undefined;
    for (const [id, path, extra] of [
      ['fmt-whole', 'whole/t.jsonl', {}],
      ['fmt-csv', 'csv/', {}],
      ['fmt-parquet', 'pq/', {}],
      ['fmt-mixed', 'mix/', {}],
      ['fmt-one-csv', 'one/t.csv', {}],
      ['fmt-named', 'named/', { inputFormat: 'csv' }],
    ] as const) {
      const request = BuildRequestSchema.parse({ total: 150, ...extra });
      const spec = specFor(deps, id, request, { kind: 'blob', path });
      spec0 ??= spec;
      const out = await runBuild(deps, spec);
      expect(out, `${id}: ${JSON.stringify(out)}`).toMatchObject({ state: 'succeeded' });
      const m = JSON.parse((await deps.store.get(buildPaths(id).manifest))!.toString('utf8'));
      expect(m.quarantine.total, id).toBe(0);
      trains.push((await deps.store.get(buildPaths(id).train))!.toString('utf8'));
    }
    expect(trains[0]!.split('\n').filter(Boolean)).toHaveLength(150);
    for (const t of trains.slice(1)) expect(t).toBe(trains[0]);
    // And what `run --in-process` builds from the JSONL file.
    const file = join(tmp, 'whole.jsonl');
    writeFileSync(file, jsonl);
    await runPipeline(file, join(tmp, 'inproc'), spec0!.config, {
      pipeline: spec0!.pipeline,
      history: spec0!.history,
      judge: judgeFor(spec0!),
      batchSize: spec0!.judge.batchSize,
      quiet: true,
    });
    expect(readFileSync(join(tmp, 'inproc', 'train.jsonl'), 'utf8')).toBe(trains[0]);
    const plan = JSON.parse((await deps.store.get(buildPaths('fmt-csv').plan))!.toString('utf8'));
    expect(plan.rows).toBe(rows.length);
    expect(plan.shards.length).toBeGreaterThan(1);
  }, 240_000);

  it('quarantines bad records naming the blob and line, keeps every valid row', async () => {
    const deps = testDeps();
    await deps.store.ensureContainer();
    const [r0, r1, r2] = thirds(rows);
    const good = toCsv(r0, columns, false).split('\r\n');
    good.splice(5, 0, 'only,three,fields');
    await deps.store.put('bad/part-0.csv', good.join('\r\n') + '"conv-x,1,2,never closed\r\n');
    const pq = toParquet(r1, columns);
    await deps.store.put('bad/part-1.parquet', pq.subarray(0, pq.length - 100));
    await deps.store.put('bad/part-2.jsonl', r2.map((r) => JSON.stringify(r)).join('\n'));
    const spec = specFor(deps, 'bad-parts', { total: 50 }, { kind: 'blob', path: 'bad/' });
    const out = await runBuild(deps, spec);
    expect(out, JSON.stringify(out)).toMatchObject({ state: 'succeeded' });
    const q = (await deps.store.get(buildPaths(spec.id).datasetQuarantine))!
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Row);
    const by = (reason: string) => q.filter((x) => x.reason === reason);
    expect(q).toHaveLength(3);
    expect(by('csv_ragged_row')[0]!.detail).toBe(
      `bad/part-0.csv line 6: 3 fields, the header has ${columns.length}`,
    );
    expect(by('csv_unterminated_quote')[0]!.detail).toMatch(
      /^bad\/part-0\.csv line \d+: a quoted field is not closed/,
    );
    expect(by('parquet_unreadable')[0]!.detail).toContain(
      `${deps.store.container}/bad/part-1.parquet: not a readable Parquet file`,
    );
    const m = JSON.parse((await deps.store.get(buildPaths(spec.id).manifest))!.toString('utf8'));
    expect(m.quarantine.total).toBe(3);
    const plan = JSON.parse((await deps.store.get(buildPaths(spec.id).plan))!.toString('utf8'));
    // Every valid row of the CSV and the JSONL part read: r0 + r2 rows, and the three set aside.
    expect(plan.rows).toBe(r0.length + r2.length + 3);
  }, 120_000);

  it('fails the build on a header without a needed column, naming the blob and the column', async () => {
    const deps = testDeps();
    await deps.store.ensureContainer();
    const cols = columns.map((c) => (c === 'userMessage' ? 'text' : c));
    const renamed = rows.slice(0, 50).map((r) => ({ ...r, text: r.userMessage }));
    await deps.store.put('hdr/part-0.csv', toCsv(renamed, cols));
    const spec = specFor(deps, 'bad-header', { total: 10 }, { kind: 'blob', path: 'hdr/' });
    const out = await runBuild(deps, spec);
    expect(out).toMatchObject({ state: 'failed', stage: 'plan' });
    expect(out.reason).toContain(
      `${deps.store.container}/hdr/part-0.csv: no column for userMessage`,
    );
    // inputFormat in the body is validated, and lands on the blob source of the spec.
    expect(BuildRequestSchema.safeParse({ inputFormat: 'xlsx' }).success).toBe(false);
    const named = specFor(deps, 'named', BuildRequestSchema.parse({ inputFormat: 'parquet' }), {
      kind: 'blob',
      path: 'x/',
    });
    expect(named.source).toEqual({ kind: 'blob', path: 'x/', format: 'parquet' });
  }, 60_000);
});
