/**
 * The CLI reads Kusto (issue 15): `run --source kusto:QUERY` with cluster, database and
 * window flags goes through the app's KustoSource (here a local Kusto v2 wire server on
 * loopback, which needs no token, evaluating the session query's selection by its
 * TypeScript mirror), on the runner and --in-process, and gives the same train.jsonl as
 * `run --input` of the same rows as a file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateTelemetry } from '../../shared/source/generate';
import { TELEMETRY_COLUMNS } from '../../shared/source/schema';
import { startV2Server, v2Frames, type V2Server } from '../kusto/v2-server';
import { emulate } from '../kusto/emulator';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'sft-balancer.js');
const dir = mkdtempSync(join(tmpdir(), 'sftb-kusto-run-'));
const file = join(dir, 'telemetry.jsonl');
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('SFT_') && !k.startsWith('JUDGE_')),
);

/** The CLI in a child process (the v2 server answers from this one). */
function cli(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => done({ code, stderr }));
  });
}

let server: V2Server;
/** What the local Kusto answers to the complexity-profile query. */
const PROFILE = [
  ['numRequests', 250, 1, 2, 4, 7, 12],
  ['promptTokenDelta', 250, 100, 300, 900, 3000, 6000],
  ['toolDiversity', 250, 0, 1, 1, 2, 3],
  ['turnDurationMs', 250, 2000, 5000, 15000, 40000, 90000],
];
const kusto = () => [
  '--source',
  'kusto:sft_session_router_first_turns',
  '--kusto-cluster',
  server.url,
  '--kusto-database',
  'telemetry',
  '--from',
  '2026-10-01T00:00:00Z',
  '--to',
  '2026-11-01T00:00:00Z',
];

beforeAll(async () => {
  // Only the table's declared columns: what Kusto returns.
  const rows = [...generateTelemetry({ conversations: 250, seed: 9 })].map((t) =>
    Object.fromEntries(
      TELEMETRY_COLUMNS.map((c) => [c.name, (t as unknown as Record<string, unknown>)[c.name]]),
    ),
  );
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const selection = emulate(rows);
  server = await startV2Server((req) =>
    req.body.csl.includes('sft_complexity_signal_profile') ||
    req.body.csl.includes('p10 = percentile')
      ? {
          status: 200,
          body: v2Frames(
            [
              { ColumnName: 'signal', ColumnType: 'string' },
              ...['n', 'p10', 'p25', 'p50', 'p75', 'p90'].map((n) => ({
                ColumnName: n,
                ColumnType: n === 'n' ? 'long' : 'real',
              })),
            ],
            PROFILE,
          ),
        }
      : selection(req),
  );
});
afterAll(async () => {
  await server.close();
});

describe('run --source kusto:QUERY', () => {
  it('--in-process gives the train.jsonl of run --input on the same rows', async () => {
    const a = await cli(
      'run',
      '--in-process',
      ...kusto(),
      '--out',
      join(dir, 'k-in'),
      '--total',
      '80',
      '-q',
    );
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const b = await cli(
      'run',
      '--in-process',
      '--input',
      file,
      '--out',
      join(dir, 'f-in'),
      '--total',
      '80',
      '-q',
    );
    expect(b.code).toBe(0);
    const train = readFileSync(join(dir, 'k-in', 'train.jsonl'));
    expect(train.length).toBeGreaterThan(0);
    expect(train.equals(readFileSync(join(dir, 'f-in', 'train.jsonl')))).toBe(true);
    expect(server.requests.length).toBeGreaterThan(0);
  }, 120_000);

  it('on the runner, the plan step reads Kusto: the same bytes', async () => {
    const before = server.requests.length;
    const a = await cli('run', ...kusto(), '--out', join(dir, 'k-run'), '--total', '80', '-q');
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(server.requests.length).toBeGreaterThan(before);
    const b = await cli(
      'run',
      '--in-process',
      '--input',
      file,
      '--out',
      join(dir, 'f-run'),
      '--total',
      '80',
      '-q',
    );
    expect(b.code).toBe(0);
    expect(
      readFileSync(join(dir, 'k-run', 'train.jsonl')).equals(
        readFileSync(join(dir, 'f-run', 'train.jsonl')),
      ),
    ).toBe(true);
  }, 240_000);

  it('--complexity-fit quantiles calls the profile query: ramps at its p10-p90, marked fitted', async () => {
    const out = join(dir, 'k-fit');
    const a = await cli(
      'run',
      '--in-process',
      ...kusto(),
      '--out',
      out,
      '--total',
      '60',
      '--stratify',
      'complexity',
      '--complexity-fit',
      'quantiles',
      '-q',
    );
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const params = server.requests.map((r) => r.body.properties!.Parameters!);
    expect(params.some((p) => p.allTurns === undefined && p.shard === 'long(-1)')).toBe(true);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
      config: { complexity: Record<string, unknown> };
    };
    expect(m.config.complexity.numRequests).toEqual([1, 12]);
    expect(m.config.complexity.turnDurationMs).toEqual([2000, 90000]);
    expect(m.config.complexity.tiers).toEqual([0.25, 0.6]);
    expect(m.config.complexity.fitted).toMatchObject({ method: 'quantiles', rows: 250 });
  }, 120_000);

  it.each([
    [['--source', 'kusto:nope'], /unknown query "nope"/],
    [['--source', 'kusto:sft_session_router_first_turns'], /--kusto-cluster/],
    [['--kusto-database', 'x', '--input', 'x.jsonl'], /needs --source kusto:QUERY/],
    [
      [
        '--source',
        'kusto:queries/sft_session_router_first_turns.kql',
        '--kusto-cluster',
        'http://127.0.0.1:9',
        '--kusto-database',
        'd',
        '--from',
        '2026-10-01',
      ],
      /--from and --to go together/,
    ],
  ])('%j is a usage error', async (args, message) => {
    const r = await cli('run', ...args, '--out', join(dir, 'bad'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
