import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  truncateSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { CsvParser, convertToJsonl } from '../../adapters/files/input-formats';
import { ParquetTableWriter } from '../../adapters/files/parquet';
import { main } from '../../cli/main';
import { BuildRequestSchema } from '../../shared/build/spec';
import {
  checkAnnotated,
  describeProblem,
  inputErrorLine,
  rowShape,
} from '../../shared/contracts/rows';
import type { TableColumn } from '../../shared/dataset/index';

const BIN = join(__dirname, '..', '..', 'bin', 'sft-balancer.js');
const dir = mkdtempSync(join(tmpdir(), 'sftb-inputs-'));
const read = (p: string) => readFileSync(p, 'utf8');
const lines = (p: string) => read(p).split('\n').filter(Boolean);

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out, err };
}
afterEach(() => vi.restoreAllMocks());

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
  label: 'int32',
  reasoning_label: 'int32',
  turnDurationMs: 'double',
  tools: 'string_list',
};
function toParquet(path: string, rows: Row[], columns: string[], types = TYPES) {
  const cols: TableColumn[] = columns.map((name) => ({
    name,
    type: types[name] ?? 'string',
    nullable: true,
  }));
  const w = new ParquetTableWriter(path, cols, { rowGroupRows: 700 });
  for (const r of rows) {
    const t: Record<string, string | number | string[] | null> = {};
    for (const c of columns) t[c] = (r[c] ?? null) as string | number | string[] | null;
    w.write(t);
  }
  w.close();
}

async function cli(args: string[]) {
  const io = capture();
  const code = await main([...args, '--quiet']);
  vi.restoreAllMocks();
  return { code, out: io.out.join(''), err: io.err.join('') };
}

const annotated = join(dir, 'annotated.jsonl');
const telemetry = join(dir, 'telemetry.jsonl');
let rows: Row[] = [];
let columns: string[] = [];

beforeAll(async () => {
  capture();
  await main(['generate', '--rows', '3000', '--annotated', '--seed', '5', '--out', annotated]);
  await main(['generate', '--conversations', '150', '--seed', '6', '--out', telemetry]);
  vi.restoreAllMocks();
  rows = lines(annotated).map((l) => JSON.parse(l) as Row);
  // Messages with the characters CSV must quote: commas, quotes, newlines.
  rows[0]!.userMessage = 'a "quoted", comma\r\nand a second line';
  rows[1]!.userMessage = 'ünïcödé, 😀';
  writeFileSync(annotated, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  columns = Object.keys(rows[0]!);
});

describe('the same table as JSONL, CSV and Parquet', () => {
  it('balances to byte-identical train.jsonl, and a folder of parts equals the whole file', async () => {
    writeFileSync(join(dir, 'a.csv'), toCsv(rows, columns));
    writeFileSync(join(dir, 'a.csv.gz'), gzipSync(toCsv(rows, columns)));
    toParquet(join(dir, 'a.parquet'), rows, columns);
    const parts = join(dir, 'parts');
    mkdirSync(parts);
    // Kusto-style parts: names sort into row order; _SUCCESS is skipped.
    writeFileSync(join(parts, 'part-0.csv'), toCsv(rows.slice(0, 1000), columns, false));
    toParquet(join(parts, 'part-1.parquet'), rows.slice(1000, 2000), columns);
    writeFileSync(
      join(parts, 'part-2.jsonl'),
      rows
        .slice(2000)
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    writeFileSync(join(parts, '_SUCCESS'), '');
    const flags = ['--total', '1000', '--seed', '9'];
    const outs: string[] = [];
    for (const [name, input] of [
      ['jsonl', annotated],
      ['csv', join(dir, 'a.csv')],
      ['csvgz', join(dir, 'a.csv.gz')],
      ['parquet', join(dir, 'a.parquet')],
      ['parts', parts],
    ] as const) {
      const out = join(dir, `out-${name}`);
      const r = await cli(['balance', '--input', input, '--out', out, ...flags]);
      expect(r.err, name).toBe('');
      expect(r.code, name).toBe(0);
      expect(read(join(out, 'quarantine.jsonl')), name).toBe('');
      outs.push(read(join(out, 'train.jsonl')));
    }
    expect(lines(join(dir, 'out-jsonl', 'train.jsonl'))).toHaveLength(1000);
    for (const o of outs.slice(1)) expect(o).toBe(outs[0]);
    // The manifest names the file given, not the JSONL copy it was read through.
    expect(read(join(dir, 'out-csv', 'manifest.json'))).toContain(
      JSON.stringify(join(dir, 'a.csv')),
    );
    // The row with quotes, a comma and CRLF inside its message came through whole.
    expect(outs[0]).toContain(JSON.stringify(rows[0]!.userMessage).slice(1, -1));
  });

  it('run --in-process gives byte-identical train.jsonl from JSONL, CSV and Parquet telemetry', async () => {
    const turns = lines(telemetry).map((l) => JSON.parse(l) as Row);
    const cols = Object.keys(turns[0]!);
    writeFileSync(join(dir, 't.csv'), toCsv(turns, cols));
    toParquet(join(dir, 't.parquet'), turns, cols);
    const outs: string[] = [];
    for (const [name, input] of [
      ['jsonl', telemetry],
      ['csv', join(dir, 't.csv')],
      ['parquet', join(dir, 't.parquet')],
    ] as const) {
      const out = join(dir, `run-${name}`);
      const r = await cli([
        'run',
        '--in-process',
        '--input',
        input,
        '--out',
        out,
        '--total',
        '100',
      ]);
      expect(r.err, name).toBe('');
      expect(r.code, name).toBe(0);
      outs.push(read(join(out, 'train.jsonl')));
    }
    expect(outs[0]!.length).toBeGreaterThan(0);
    expect(outs[1]).toBe(outs[0]);
    expect(outs[2]).toBe(outs[0]);
  });
});

describe('a row needs only what the configuration reads', () => {
  it("balances the seed's {id, userMessage, reasoning_label} from JSONL and CSV alike", async () => {
    const seed = rows.map((r, i) => ({
      id: `s${i}`,
      userMessage: r.userMessage,
      reasoning_label: r.label,
    }));
    writeFileSync(join(dir, 'seed.jsonl'), seed.map((r) => JSON.stringify(r)).join('\n'));
    writeFileSync(join(dir, 'seed.csv'), toCsv(seed, ['id', 'userMessage', 'reasoning_label']));
    const flags = ['--label-field', 'reasoning_label', '--stratify', '', '--total', '500'];
    const a = await cli([
      'balance',
      '--input',
      join(dir, 'seed.jsonl'),
      '--out',
      join(dir, 'sj'),
      ...flags,
    ]);
    const b = await cli([
      'balance',
      '--input',
      join(dir, 'seed.csv'),
      '--out',
      join(dir, 'sc'),
      ...flags,
    ]);
    expect([a.code, b.code, a.err, b.err]).toEqual([0, 0, '', '']);
    const train = read(join(dir, 'sj', 'train.jsonl'));
    expect(read(join(dir, 'sc', 'train.jsonl'))).toBe(train);
    const first = JSON.parse(train.split('\n')[0]!) as Row;
    // Defaults stated in docs/input-formats.md; no timestamp, no metadata.
    expect(first).toMatchObject({ turnIndex: 1, turnCount: 1, model: 'unknown', tools: [] });
    expect(first.conversationId).toBe(first.id);
    expect(first).not.toHaveProperty('timestamp');
    expect(first).not.toHaveProperty('metadata');
  });

  it('balances {conversationId, turnIndex, turnCount, userMessage, label} with the default strata', async () => {
    const slim = rows.map((r) => ({
      conversationId: r.conversationId,
      turnIndex: r.turnIndex,
      turnCount: r.turnCount,
      userMessage: r.userMessage,
      label: r.label,
    }));
    writeFileSync(join(dir, 'slim.jsonl'), slim.map((r) => JSON.stringify(r)).join('\n'));
    const r = await cli([
      'balance',
      '--input',
      join(dir, 'slim.jsonl'),
      '--out',
      join(dir, 'so'),
      '--total',
      '500',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(lines(join(dir, 'so', 'train.jsonl'))).toHaveLength(500);
    expect(read(join(dir, 'so', 'quarantine.jsonl'))).toBe('');
  });

  it('requires a stratum field only when that stratifier is on, and the timestamp only for a window', () => {
    const row = { sampleId: 'x', userMessage: 'hi', label: 0 };
    expect(
      checkAnnotated({ ...row }, Infinity, rowShape({ annotated: true, stratify: [] })),
    ).toBeNull();
    expect(
      checkAnnotated(
        { ...row },
        Infinity,
        rowShape({ annotated: true, stratify: ['modelFamily'] }),
      ),
    ).toEqual({ reason: 'missing_field', field: 'model' });
    expect(
      checkAnnotated(
        { ...row, model: 'o1' },
        Infinity,
        rowShape({ annotated: true, stratify: ['modelFamily'] }),
      ),
    ).toBeNull();
    const win = rowShape({ annotated: true, stratify: [], window: true });
    expect(checkAnnotated({ ...row }, Infinity, win)).toEqual({
      reason: 'missing_field',
      field: 'timestamp',
    });
    // Without a shape (the strict contract, as before) a row needs every field.
    expect(checkAnnotated({ ...row })).toMatchObject({ reason: 'missing_field' });
  });

  it('names the top reasons and counts on the console when every row is quarantined', async () => {
    const bad = [
      ...Array.from({ length: 40 }, (_, i) => JSON.stringify({ id: `b${i}`, label: 1 })),
      'not json',
      'not json either',
    ];
    writeFileSync(join(dir, 'bad.jsonl'), bad.join('\n'));
    const r = await cli(['balance', '--input', join(dir, 'bad.jsonl'), '--out', join(dir, 'bo')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'all 42 rows quarantined: missing_field userMessage 40, invalid_json 2 — see quarantine.jsonl',
    );
  });

  it('a mapped label column that is absent is missing_field naming the column', async () => {
    const r = await cli([
      'balance',
      '--input',
      join(dir, 'seed.jsonl'),
      '--out',
      join(dir, 'mo'),
      '--label-field',
      'answer',
      '--stratify',
      '',
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('all 3000 rows quarantined: missing_field answer 3000');
  });
});

describe('column mapping', () => {
  it('maps other names with --columns and SFT_COLUMNS, and refuses an unknown field', async () => {
    const renamed = rows.map((r) => ({
      session_id: r.conversationId,
      turnIndex: r.turnIndex,
      turnCount: r.turnCount,
      prompt: r.userMessage,
      label: r.label,
    }));
    const cols = ['session_id', 'turnIndex', 'turnCount', 'prompt', 'label'];
    writeFileSync(join(dir, 'renamed.csv'), toCsv(renamed, cols));
    toParquet(join(dir, 'renamed.parquet'), renamed, cols);
    const map = 'userMessage=prompt,conversationId=session_id';
    const c = await cli([
      'balance',
      '--input',
      join(dir, 'renamed.csv'),
      '--out',
      join(dir, 'rc'),
      '--total',
      '500',
      '--columns',
      map,
    ]);
    vi.stubEnv('SFT_COLUMNS', map);
    const p = await cli([
      'balance',
      '--input',
      join(dir, 'renamed.parquet'),
      '--out',
      join(dir, 'rp'),
      '--total',
      '500',
    ]);
    vi.unstubAllEnvs();
    expect([c.code, p.code, c.err, p.err]).toEqual([0, 0, '', '']);
    expect(read(join(dir, 'rc', 'train.jsonl'))).toBe(read(join(dir, 'so', 'train.jsonl')));
    expect(read(join(dir, 'rp', 'train.jsonl'))).toBe(read(join(dir, 'so', 'train.jsonl')));

    const u = await cli([
      'balance',
      '--input',
      annotated,
      '--out',
      join(dir, 'ru'),
      '--columns',
      'usrMessage=prompt',
    ]);
    expect(u.code).toBe(2);
    expect(u.err).toContain('unknown field "usrMessage"');
    const absent = await cli([
      'balance',
      '--input',
      join(dir, 'renamed.csv'),
      '--out',
      join(dir, 'ra'),
      '--columns',
      'userMessage=text,conversationId=session_id',
    ]);
    expect(absent.code).toBe(1);
    expect(absent.err).toContain(
      'renamed.csv: the column mapping reads userMessage from column "text"',
    );
  });

  it('takes `columns` in the HTTP request body, validated', () => {
    expect(BuildRequestSchema.parse({ columns: { label: 'reasoning_label' } }).columns).toEqual({
      label: 'reasoning_label',
    });
    const bad = BuildRequestSchema.safeParse({ columns: { lable: 'x' } });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('unknown field \\"lable\\"');
  });
});

describe('bad input', () => {
  it('quarantines a ragged CSV record and an unterminated quote, keeping the valid rows', async () => {
    const good = toCsv(rows.slice(0, 200), columns, false);
    const body = good.split('\r\n');
    body.splice(5, 0, 'only,three,fields');
    const text = body.join('\r\n') + '"conv-x,1,2,never closed\r\n';
    writeFileSync(join(dir, 'bad.csv'), text);
    const r = await cli([
      'balance',
      '--input',
      join(dir, 'bad.csv'),
      '--out',
      join(dir, 'bc'),
      '--total',
      '50',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const q = lines(join(dir, 'bc', 'quarantine.jsonl')).map((l) => JSON.parse(l) as Row);
    expect(q.map((x) => x.reason)).toEqual(['csv_ragged_row', 'csv_unterminated_quote']);
    expect(q[0]!.detail).toBe(`bad.csv line 6: 3 fields, the header has ${columns.length}`);
    // Header line 1, rows[0] spans two lines (CRLF inside quotes), the ragged line: 204.
    expect(q[1]!.detail).toBe(
      'bad.csv line 204: a quoted field is not closed (unterminated quote)',
    );
    const m = JSON.parse(read(join(dir, 'bc', 'manifest.json'))) as {
      input: { rows: number; valid: number };
    };
    expect(m.input).toMatchObject({ rows: 202, valid: 200 });
  });

  it('refuses a CSV header without a needed column, naming the file and the column', async () => {
    writeFileSync(
      join(dir, 'hdr.csv'),
      'conversationId,turnIndex,turnCount,text,label\r\nc,1,1,hi,0\r\n',
    );
    const r = await cli(['balance', '--input', join(dir, 'hdr.csv'), '--out', join(dir, 'ho')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('hdr.csv: no column for userMessage');
  });

  it('refuses a truncated Parquet file by name; a column of the wrong type is wrong_type', async () => {
    const p = join(dir, 'trunc.parquet');
    toParquet(p, rows, columns);
    truncateSync(p, statSync(p).size - 100);
    const r = await cli(['balance', '--input', p, '--out', join(dir, 'to')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('trunc.parquet: not a readable Parquet file');

    const w = join(dir, 'wrongtype.parquet');
    const asText = rows.slice(0, 100).map((x) => ({ ...x, turnIndex: String(x.turnIndex) }));
    toParquet(w, asText, columns, { ...TYPES, turnIndex: 'string' });
    const t = await cli(['balance', '--input', w, '--out', join(dir, 'wo')]);
    expect(t.code).toBe(1);
    expect(t.err).toContain('all 100 rows quarantined: wrong_type turnIndex 100');
  });
});

describe('the error marker of an unreadable record', () => {
  it('cannot collide with a real column, whatever its name', async () => {
    // The old marker was an object field: a real column of that name was quarantined.
    const cols = [...columns, '__sftInputError', '__sftInputReason', 'sft:input-error'];
    const some = rows
      .slice(0, 300)
      .map((r) => ({ ...r, __sftInputError: 'x', __sftInputReason: 'csv_ragged_row' }));
    const csv = toCsv(some, cols, false);
    writeFileSync(join(dir, 'marker.csv'), csv + 'only,three,fields\r\n');
    writeFileSync(join(dir, 'marker.jsonl'), some.map((r) => JSON.stringify(r)).join('\n'));
    for (const name of ['marker.csv', 'marker.jsonl']) {
      const out = join(dir, `mk-${name}`);
      const r = await cli(['balance', '--input', join(dir, name), '--out', out, '--total', '100']);
      expect(r.err, name).toBe('');
      expect(r.code, name).toBe(0);
      const q = lines(join(out, 'quarantine.jsonl')).map((l) => JSON.parse(l) as Row);
      // Every real row kept; only the ragged record of the CSV is quarantined.
      expect(q.map((x) => x.reason)).toEqual(name.endsWith('.csv') ? ['csv_ragged_row'] : []);
      const m = JSON.parse(read(join(out, 'manifest.json'))) as { input: { valid: number } };
      expect(m.input.valid, name).toBe(300);
    }
    // The exact check (the batch's and the balancer's slow path) keeps such a row too.
    const shape = rowShape({ annotated: true, stratify: [] });
    expect(checkAnnotated({ ...some[5]! }, Infinity, shape)).toBeNull();
    const marker = JSON.parse(inputErrorLine('csv_ragged_row', 'f.csv line 3', 'a,b')) as unknown;
    expect(checkAnnotated(marker, Infinity, shape)).toEqual({ reason: 'csv_ragged_row' });
    expect(describeProblem(marker, { reason: 'csv_ragged_row' }, true)).toBe('f.csv line 3');
    expect(checkAnnotated(['x', 'csv_ragged_row', 'd', ''], Infinity, shape)).toEqual({
      reason: 'not_an_object',
    });
  });
});

describe('CsvParser', () => {
  it('reads records across chunk boundaries at every position', () => {
    const text = '\uFEFFa,b\r\n"x,""y""\r\nz",2\r\n,\r\n"",3\n4,"5"';
    const want: string[][] = [];
    new CsvParser(
      (r) => want.push(r.fields),
      () => {},
    ).push(text);
    const whole: string[][] = [];
    const p = new CsvParser(
      (r) => whole.push(r.fields),
      () => {},
    );
    p.push(text);
    p.end();
    expect(whole).toEqual([
      ['a', 'b'],
      ['x,"y"\r\nz', '2'],
      ['', ''],
      ['', '3'],
      ['4', '5'],
    ]);
    for (let i = 1; i < text.length; i++) {
      const got: string[][] = [];
      const q = new CsvParser(
        (r) => got.push(r.fields),
        () => {},
      );
      q.push(text.slice(0, i));
      q.push(text.slice(i));
      q.end();
      expect(got, `split at ${i}`).toEqual(whole);
    }
  });
});

describe('run on the local runner (Azurite, the compiled CLI)', () => {
  it('builds from a CSV without timestamp/model/tools columns what run --in-process builds', async () => {
    const turns = lines(telemetry).map((l) => JSON.parse(l) as Row);
    const cols = ['conversationId', 'turnIndex', 'turnCount', 'userMessage', 'numRequests'];
    const parts = join(dir, 'run-parts');
    mkdirSync(parts);
    writeFileSync(join(parts, 'a.csv'), toCsv(turns.slice(0, 400), cols));
    writeFileSync(join(parts, 'b.csv'), toCsv(turns.slice(400), cols));
    const flags = ['--total', '100', '--quiet'];
    const local = await cli([
      'run',
      '--in-process',
      '--input',
      parts,
      '--out',
      join(dir, 'rl'),
      ...flags,
    ]);
    expect(local.err).toBe('');
    const tag = randomUUID().slice(0, 8);
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        'run',
        '--input',
        parts,
        '--out',
        join(dir, 'rr'),
        ...flags,
        '--storage',
        inject('azurite').connectionString,
      ],
      {
        env: {
          ...process.env,
          SFT_CONTAINER: `i-${tag}`,
          SFT_PLAN_QUEUE: `ip-${tag}`,
          SFT_SHARD_QUEUE: `is-${tag}`,
          SFT_FANIN_QUEUE: `if-${tag}`,
          SFT_SHARD_BYTES: '65536',
        },
        encoding: 'utf8',
        timeout: 150_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const train = read(join(dir, 'rr', 'train.jsonl'));
    expect(train.length).toBeGreaterThan(0);
    expect(train).toBe(read(join(dir, 'rl', 'train.jsonl')));
    expect(train).not.toContain('"timestamp"');
  }, 180_000);
});

describe('CSV arrays', () => {
  it('reads tools as JSON text, or split on --csv-array-sep; otherwise wrong_type', async () => {
    const csv = join(dir, 'tools.csv');
    writeFileSync(
      csv,
      'id,userMessage,label,tools\r\n1,hi,0,read_file;grep\r\n2,yo,1,\r\n3,hm,0,"[""a"",""b""]"\r\n',
    );
    const out = join(dir, 'tools.jsonl');
    await convertToJsonl(csv, out, { csvArraySep: ';' });
    expect(lines(out).map((l) => (JSON.parse(l) as Row).tools)).toEqual([
      ['read_file', 'grep'],
      undefined,
      ['a', 'b'],
    ]);
    const r = await cli([
      'balance',
      '--input',
      csv,
      '--out',
      join(dir, 'to2'),
      '--stratify',
      '',
      '--total',
      '2',
    ]);
    expect(r.code).toBe(0);
    const q = lines(join(dir, 'to2', 'quarantine.jsonl')).map((l) => JSON.parse(l) as Row);
    expect(q).toMatchObject([{ reason: 'wrong_type', field: 'tools' }]);
  });
});
