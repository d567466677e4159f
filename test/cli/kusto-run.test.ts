/**
 * The CLI reads Kusto (issue 15): `run --source kusto:QUERY` with cluster, database and
 * window flags goes through the app's KustoSource (here a local Kusto v2 wire server on
 * loopback, which needs no token, evaluating the session query's selection by its
 * TypeScript mirror), on the runner and --in-process, and gives the same train.jsonl as
 * `run --input` of the same rows as a file.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { ClientSecretCredential } from '@azure/identity';
import { checkKustoCredential, KustoCredentialError } from '../../adapters/kusto/credential';
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

describe('Kusto credentials fail politely (issue 15)', () => {
  /** A local "authority" that drops every connection: no token can be had, at once, offline. */
  let authority: Server;
  let authorityHost = '';
  beforeAll(async () => {
    authority = createServer((socket) => socket.destroy());
    await new Promise<void>((ok) => authority.listen(0, '127.0.0.1', ok));
    authorityHost = `https://127.0.0.1:${(authority.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => authority.close(() => ok())));
  const CLUSTER = 'https://sftb-test.westeurope.kusto.windows.net';

  it('checkKustoCredential: an AuthenticationError / CredentialUnavailableError becomes one line naming the credential and what to do', async () => {
    const credential = new ClientSecretCredential('tenant-x', 'client-y', 'not-a-secret', {
      authorityHost,
      disableInstanceDiscovery: true,
      retryOptions: { maxRetries: 0 },
    });
    const started = Date.now();
    const err = await checkKustoCredential(CLUSTER, {
      credential,
      tried: 'ClientSecretCredential',
    }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(err).toBeInstanceOf(KustoCredentialError);
    const e = err as KustoCredentialError;
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.message).toMatch(
      /^no Azure credential for Kusto at https:\/\/sftb-test\.westeurope\.kusto\.windows\.net: ClientSecretCredential failed \((CredentialUnavailableError|AuthenticationError): /,
    );
    expect(e.message).toContain('run "az login"');
    expect(e.message).toContain('the role "Viewer" on the database');
    expect(['CredentialUnavailableError', 'AuthenticationError']).toContain(
      (e.cause as Error).name,
    );
  }, 30_000);

  it('checkKustoCredential skips a loopback http cluster (the emulator needs no token)', async () => {
    const never = { getToken: () => Promise.reject(new Error('must not be called')) };
    await expect(
      checkKustoCredential('http://127.0.0.1:9', { credential: never }),
    ).resolves.toBeUndefined();
  });

  it('run --source kusto: a credential that cannot work is one line on stderr, exit 1, no stack, nothing written', async () => {
    const out = join(dir, 'no-credential');
    const child = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const c = spawn(
        process.execPath,
        [
          BIN,
          'run',
          ...['--source', 'kusto:sft_session_router_first_turns'],
          ...['--kusto-cluster', CLUSTER, '--kusto-database', 'telemetry'],
          ...['--from', '2026-10-01T00:00:00Z', '--to', '2026-11-01T00:00:00Z'],
          ...['--in-process', '--out', out, '-q'],
        ],
        {
          // DefaultAzureCredential's EnvironmentCredential: a client secret against the local authority.
          env: {
            ...env,
            AZURE_TENANT_ID: 'tenant-x',
            AZURE_CLIENT_ID: 'client-y',
            AZURE_CLIENT_SECRET: 'not-a-secret',
            AZURE_AUTHORITY_HOST: authorityHost,
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.once('exit', (code) => done({ code, stderr }));
    });
    expect(child.code).toBe(1);
    const lines = child.stderr.trim().split('\n');
    expect(lines, child.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^sft-balancer run: no Azure credential for Kusto at https:\/\/sftb-test\.westeurope\.kusto\.windows\.net: DefaultAzureCredential \(environment .*\) failed \(\w+Error: /,
    );
    expect(lines[0]).toContain('run "az login"');
    expect(child.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
