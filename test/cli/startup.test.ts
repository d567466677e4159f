/**
 * The CLI loads what a command uses: `--help` and `balance` load neither the storage SDK
 * (explain() tells its errors by name), nor vega/vega-lite (balance draws report.html on a
 * worker thread), nor the Parquet reader (JSONL input). explain() still describes storage
 * failures as before. Runs dist/: `npm run build` first.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RestError } from '@azure/storage-blob';
import { createPipelineRequest } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import { explain } from '../../cli/main';
import { renderReport } from '../../adapters/files/report';

const root = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'sftb-startup-'));
const HEAVY = [
  '@azure/storage-blob',
  '@azure/core-rest-pipeline',
  'vega',
  'vega-lite',
  'hyparquet',
];

/** The CLI in its own process: its exit code, stderr, and the packages its main thread loaded. */
function cli(...args: string[]) {
  const main = JSON.stringify(join(root, 'dist', 'cli', 'main.js'));
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `require(${main}).main(process.argv.slice(1)).then((code) => {
         const pkgs = new Set();
         for (const k of Object.keys(require.cache)) {
           const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(k);
           if (m) pkgs.add(m[1]);
         }
         process.stderr.write('\\nPACKAGES ' + JSON.stringify([...pkgs]) + '\\n');
         process.exitCode = code;
       });`,
      '--',
      ...args,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const m = /\nPACKAGES (.*)\n/.exec(r.stderr);
  return {
    status: r.status,
    stderr: r.stderr.replace(/\nPACKAGES .*\n/, ''),
    packages: m ? (JSON.parse(m[1]!) as string[]) : null,
  };
}

describe('what the CLI loads', () => {
  it('--help loads none of the storage SDK, vega or the Parquet reader', () => {
    const r = cli('--help');
    expect(r.status).toBe(0);
    expect(r.packages).not.toBeNull();
    for (const p of HEAVY) expect(r.packages).not.toContain(p);
  });

  it('balance neither, and writes the same report.html as renderReport here', async () => {
    const input = join(dir, 'in.jsonl');
    const out = join(dir, 'out');
    expect(cli('generate', '--rows', '1500', '--annotated', '--out', input, '-q').status).toBe(0);
    const r = cli('balance', '--input', input, '--out', out, '--total', '400', '--no-probe', '-q');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const p of HEAVY) expect(r.packages).not.toContain(p);
    expect(r.packages).toContain('zod'); // the check that this sees what the CLI loads
    const manifest: unknown = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toBe(await renderReport(manifest));
  }, 60_000);

  it('a balance that fails (no valid rows) ends at once, with its one line', () => {
    const input = join(dir, 'bad.jsonl');
    const w = cli('generate', '--rows', '50', '--out', input, '-q'); // telemetry: no labels
    expect(w.status).toBe(0);
    const r = cli('balance', '--input', input, '--out', join(dir, 'bad-out'), '-q');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^sft-balancer balance: no valid rows to balance/);
  }, 60_000);
});

describe('explain() without the storage SDK loaded', () => {
  const request = createPipelineRequest({
    url: 'https://acct.blob.core.windows.net/builds/b1/manifest.json?sv=2024&sig=SECRET',
  });

  it("describes the SDK's RestError, also as another error's cause, without the query", () => {
    const refused = new RestError('Server failed to authenticate the request.\nRequestId:1', {
      statusCode: 403,
      code: 'AuthenticationFailed',
      request,
    });
    const line =
      'storage refused the request at https://acct.blob.core.windows.net/builds/b1/manifest.json: ' +
      '403 AuthenticationFailed: Server failed to authenticate the request. ' +
      '(check the account name and key in --storage or AzureWebJobsStorage)';
    expect(explain(refused)).toEqual({ line, exit: 1 });
    expect(explain(new Error('download failed', { cause: refused }))).toEqual({ line, exit: 1 });
    const down = new RestError('connect ECONNREFUSED 127.0.0.1:1', {
      code: 'REQUEST_SEND_ERROR',
      request,
    });
    expect(explain(down).line).toBe(
      'storage unreachable at https://acct.blob.core.windows.net/builds/b1/manifest.json: connect ECONNREFUSED 127.0.0.1:1',
    );
  });

  it('an error of that name but not of that shape is told by its message', () => {
    const other = Object.assign(new Error('a thing of ours'), {
      name: 'RestError',
      statusCode: '403',
    });
    expect(explain(other)).toEqual({ line: 'a thing of ours', exit: 1 });
  });
});

describe('the launcher', () => {
  it('fails (exit 70, said on stderr) when the process ends before the command finished', () => {
    const bin = join(root, 'bin', 'sft-balancer.js');
    const r = spawnSync(process.execPath, [bin, '--help'], {
      encoding: 'utf8',
      env: { ...process.env, SFT_FAILPOINT: 'stall' },
    });
    expect(r.status).toBe(70);
    expect(r.stderr).toMatch(/internal error: the process ended before the command finished/);
    const ok = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
  });
});
