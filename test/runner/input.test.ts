/**
 * What the runner is given, checked before it starts and read as `--in-process`
 * reads it: a malformed --build-id is a usage error at once (it used to be dropped
 * by the plan step and leave the run waiting forever), a build that can no longer
 * progress fails the run instead of waiting, and a gzipped input gives the dataset
 * its plain JSONL gives (it used to be uploaded compressed and every line quarantined).
 * The runner is the compiled CLI (`npm run build` first) in a child process.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { QueueServiceClient } from '@azure/storage-queue';
import { describe, expect, inject, it } from 'vitest';
import { telemetryFile } from '../functions/harness';

const BIN = join(__dirname, '..', '..', 'bin', 'sft-balancer.js');

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000) {
  const started = Date.now();
  return new Promise<Exit>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ms: Date.now() - started });
    });
  });
}

const namespace = () => {
  const tag = randomUUID().slice(0, 8);
  return {
    SFT_CONTAINER: `r-${tag}`,
    SFT_PLAN_QUEUE: `rp-${tag}`,
    SFT_SHARD_QUEUE: `rs-${tag}`,
    SFT_FANIN_QUEUE: `rf-${tag}`,
    SFT_SHARD_BYTES: '131072',
    SFT_RUNNER_LEASE_SECONDS: '2',
  };
};

const storage = () => ['--storage', inject('azurite').connectionString];

describe('run --build-id', () => {
  it.each(['Bad_ID', 'x', 'a.b'])(
    'refuses "%s" at once, exit 2, naming the allowed pattern',
    async (id) => {
      const t = await telemetryFile(20, 5);
      // No --storage: a run that started would start an Azurite first.
      const r = await cli(
        ['run', '--input', t.path, '--out', join(t.dir, 'out'), '--build-id', id],
        {},
        30_000,
      );
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`--build-id "${id}"`);
      expect(r.stderr).toContain('3-63 lowercase letters, digits or hyphens');
      expect(r.stderr).toContain('^[a-z0-9][a-z0-9-]{2,62}$');
      expect(r.stderr).not.toMatch(/azurite|dropping malformed message/i);
      expect(r.ms).toBeLessThan(15_000);
    },
    40_000,
  );
});

describe('run --build-id of a build already in the storage', () => {
  it('refuses another input under that id (exit 2) instead of handing over the other dataset', async () => {
    const a = await telemetryFile(200, 9);
    const b = await telemetryFile(200, 10);
    const env = namespace();
    const args = (input: string, out: string) => [
      'run',
      '--input',
      input,
      '--out',
      out,
      ...storage(),
      '--build-id',
      'same-id',
      '--total',
      '50',
      '-q',
    ];
    const first = await cli(args(a.path, join(a.dir, 'out')), env);
    expect(first.code, first.stderr).toBe(0);
    const other = await cli(args(b.path, join(b.dir, 'out')), env);
    expect(other.code, other.stderr).toBe(2);
    expect(other.stderr).toContain(
      '--build-id same-id: the storage holds a build of that id with another input or other settings',
    );
    const again = await cli(args(a.path, join(a.dir, 'again')), env);
    expect(again.code, again.stderr).toBe(0);
    expect(
      (await readFile(join(a.dir, 'again', 'train.jsonl'))).equals(
        await readFile(join(a.dir, 'out', 'train.jsonl')),
      ),
    ).toBe(true);
  }, 120_000);
});

describe('a run whose build can no longer progress', () => {
  it('fails (exit 1) naming the stall instead of waiting forever', async () => {
    const t = await telemetryFile(300, 6);
    const env = namespace();
    const args = [
      'run',
      '--input',
      t.path,
      '--out',
      join(t.dir, 'out'),
      ...storage(),
      '--build-id',
      'stall-test',
      '--total',
      '50',
    ];
    // Killed once the plan is recorded, before any shard is queued...
    const killed = await cli(args, { ...env, SFT_FAILPOINT: 'plan:planned' });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    // ...and its plan message lost (as a message dropped as malformed would be).
    const queues = QueueServiceClient.fromConnectionString(inject('azurite').connectionString);
    await queues.getQueueClient(env.SFT_PLAN_QUEUE).clearMessages();
    const resumed = await cli(args, env, 60_000);
    expect(resumed.signal, resumed.stderr).toBeNull();
    expect(resumed.code, resumed.stderr).toBe(1);
    expect(resumed.stderr).toContain('build stall-test stalled');
    expect(resumed.ms).toBeLessThan(30_000);
  }, 120_000);
});

describe('a gzipped input on the runner', () => {
  it('gives the dataset of the same JSONL uncompressed, uploaded or read in place', async () => {
    const t = await telemetryFile(800, 7);
    const gz = `${t.path}.gz`;
    const text = await readFile(t.path);
    await writeFile(gz, gzipSync(text));
    const lines = text.toString('utf8').split('\n').filter(Boolean).length;
    // Each in its own container: the same input gives the same build id.
    const run = (input: string, out: string, ...flags: string[]) =>
      cli(
        [
          'run',
          '--input',
          input,
          '--out',
          join(t.dir, out),
          ...storage(),
          '--total',
          '300',
          '-q',
          ...flags,
        ],
        namespace(),
      );
    const results = [
      await run(t.path, 'plain'),
      await run(gz, 'gz'),
      await run(gz, 'gz-in-place', '--no-upload'),
    ];
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const train = (d: string) => readFile(join(t.dir, d, 'train.jsonl'));
    const plain = await train('plain');
    expect(plain.length).toBeGreaterThan(0);
    expect((await train('gz')).equals(plain)).toBe(true);
    expect((await train('gz-in-place')).equals(plain)).toBe(true);
    for (const d of ['plain', 'gz', 'gz-in-place']) {
      const m = JSON.parse(await readFile(join(t.dir, d, 'manifest.json'), 'utf8'));
      expect(m.telemetry.rows).toBe(lines);
      expect(m.quarantine?.total ?? 0).toBe(0);
    }
  }, 240_000);

  it('refuses a file that is not gzip, in one line, exit 1', async () => {
    const t = await telemetryFile(20, 8);
    const bad = join(t.dir, 'broken.jsonl.gz');
    await writeFile(bad, 'not gzip at all\n');
    const r = await cli(
      ['run', '--input', bad, '--out', join(t.dir, 'out'), ...storage()],
      namespace(),
      60_000,
    );
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr.trim()).toBe(`sft-balancer run: input file is not valid gzip: ${bad}`);
  }, 60_000);
});
