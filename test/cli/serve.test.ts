/**
 * `sft-balancer serve` (issue 15): the HTTP routes of the Functions app on localhost as
 * Core Tools serves them, with function keys emulated, the queue functions behind
 * them, the timer fired on demand, and `download` of a finished build. The build a
 * keyed POST starts gives the same train.jsonl bytes as `run` on the same input.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduledBuildId } from '../../shared/build/spec';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'sft-balancer.js');
const dir = mkdtempSync(join(tmpdir(), 'sftb-serve-'));
const telemetry = join(dir, 'telemetry.jsonl');
const KEY = 'serve-test-key-0123456789';
/** The environment of both serve and run: no SFT_* of the caller's shell leaks in. */
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('SFT_') && !k.startsWith('JUDGE_')),
);

let child: ChildProcess;
let base = '';
let storage = '';
let stderr = '';

beforeAll(async () => {
  expect(existsSync(join(ROOT, 'dist', 'cli', 'serve.js'))).toBe(true);
  const gen = spawnSync(
    process.execPath,
    [BIN, 'generate', '--conversations', '600', '--out', telemetry, '--seed', '3', '-q'],
    { encoding: 'utf8' },
  );
  expect(gen.status).toBe(0);
  child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--input', telemetry], {
    env: { ...env, SFT_FUNCTION_KEY: KEY },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((ok, fail) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(stdout);
      if (m && /function key/.test(stdout)) {
        base = m[1]!;
        ok();
      }
    });
    child.once('exit', (code) => fail(new Error(`serve exited ${code}: ${stderr}`)));
  });
  // The storage line comes just before the URL line is printed.
  for (let i = 0; i < 50 && !/storage: /.test(stderr); i++)
    await new Promise((r) => setTimeout(r, 100));
  storage = /storage: (\S+)/.exec(stderr)![1]!;
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

async function waitFor(id: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${base}/api/builds/${id}?code=${KEY}`);
    expect(res.status).toBe(200);
    const status = (await res.json()) as Record<string, unknown>;
    if (status.state === 'succeeded' || status.state === 'failed') return status;
    if (Date.now() > until) throw new Error(`build ${id} still ${String(status.state)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('sft-balancer serve', () => {
  it('refuses a POST without the key, or with a wrong one, with 401', async () => {
    expect((await post('/api/builds', { total: 100 })).status).toBe(401);
    expect((await post('/api/builds', { total: 100 }, { 'x-functions-key': 'wrong' })).status).toBe(
      401,
    );
    expect((await post(`/api/builds?code=wrong`, { total: 100 })).status).toBe(401);
    expect((await fetch(`${base}/api/builds/b-x`)).status).toBe(401);
    expect((await post('/admin/functions/scheduledBuild', {})).status).toBe(401);
  });

  it('refuses a bad body with 400 naming the field', async () => {
    const res = await post('/api/builds', { total: 'many' }, { 'x-functions-key': KEY });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { issues: { field: string }[] };
    expect(body.issues.map((i) => i.field)).toContain('total');
    const unknown = await post(`/api/builds?code=${KEY}`, { totl: 5 });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { message: string }).message).toMatch(/totl/);
  });

  it('answers a keyed POST with 202 and a status URL; the build gives the bytes of run', async () => {
    const res = await post('/api/builds', { total: 200 }, { 'x-functions-key': KEY });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { buildId: string; statusUrl: string };
    expect(body.statusUrl).toBe(`${base}/api/builds/${body.buildId}`);
    expect(res.headers.get('location')).toBe(body.statusUrl);
    const status = await waitFor(body.buildId, 240_000);
    expect(status.state).toBe('succeeded');

    const got = join(dir, 'downloaded');
    const dl = spawnSync(
      process.execPath,
      [BIN, 'download', '--build-id', body.buildId, '--out', got, '--storage', storage],
      { encoding: 'utf8', env },
    );
    expect(dl.stderr).toBe('');
    expect(dl.status).toBe(0);
    const ran = join(dir, 'ran');
    const run = spawnSync(
      process.execPath,
      [BIN, 'run', '--input', telemetry, '--out', ran, '--total', '200', '-q'],
      { encoding: 'utf8', env },
    );
    expect(run.status, run.stderr).toBe(0);
    const train = readFileSync(join(got, 'train.jsonl'));
    expect(train.length).toBeGreaterThan(0);
    expect(train.equals(readFileSync(join(ran, 'train.jsonl')))).toBe(true);
    expect(JSON.parse(readFileSync(join(got, 'status.json'), 'utf8')).id).toBe(body.buildId);
  }, 400_000);

  it('download of an unknown build is a usage error', () => {
    const dl = spawnSync(
      process.execPath,
      [BIN, 'download', '--build-id', 'b-nope', '--out', join(dir, 'nope'), '--storage', storage],
      { encoding: 'utf8', env },
    );
    expect(dl.status).toBe(2);
    expect(dl.stderr).toMatch(/no build "b-nope"/);
  });

  it('fires the timer now on POST /admin/functions/scheduledBuild: a scheduled build starts', async () => {
    const before = new Date();
    const res = await post('/admin/functions/scheduledBuild', {}, { 'x-functions-key': KEY });
    expect(res.status).toBe(202);
    const after = new Date();
    const ids = [before, after].map((t) =>
      scheduledBuildId(new Date(Math.floor(t.getTime() / 60_000) * 60_000)),
    );
    const found = await Promise.all(
      ids.map((id) => fetch(`${base}/api/builds/${id}?code=${KEY}`).then((r) => r.status)),
    );
    expect(found).toContain(200);
    expect(
      (await post('/admin/functions/noSuchTimer', {}, { 'x-functions-key': KEY })).status,
    ).toBe(404);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
    expect(stderr).toMatch(/stopping/);
  }, 60_000);
});

describe('sft-balancer serve without SFT_FUNCTION_KEY', () => {
  it('generates a key, prints it, accepts only it, and stops on SIGINT', async () => {
    const c = spawn(process.execPath, [BIN, 'serve', '--port', '0', '-q'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const [url, key] = await new Promise<[string, string]>((ok, fail) => {
      c.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const u = /listening on (http:\/\/\S+)/.exec(out);
        const k = /function key (\S+) \(generated/.exec(out);
        if (u && k) ok([u[1]!, k[1]!]);
      });
      c.once('exit', (code) => fail(new Error(`serve exited ${code}`)));
    });
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await fetch(`${url}/api/builds/b-none?code=${key}`)).status).toBe(404);
    expect((await fetch(`${url}/api/builds/b-none?code=${KEY}`)).status).toBe(401);
    c.kill('SIGINT');
    expect(await new Promise((r) => c.once('exit', r))).toBe(0);
  }, 60_000);
});
