/**
 * The runner killed (SIGKILL) at three points of a build and started again with the
 * same command: the build resumes from what storage and the queues hold and ends
 * with a dataset and manifest byte-identical to an uninterrupted run's (nothing
 * lost, nothing counted twice). The runner is the compiled CLI in a child process;
 * SFT_FAILPOINT makes it kill itself at a named point.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { telemetryFile } from '../functions/harness';

const ROOT = join(__dirname, '..', '..');
/** The build `npm test` (or `npm run build`) made: this test compiles nothing itself. */
const DIST = join(ROOT, 'dist');

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runner(args: string[], env: Record<string, string>): Promise<Exit> {
  const script = `require(${JSON.stringify(join(DIST, 'cli', 'main.js'))}).main(process.argv.slice(1)).then((c) => { process.exitCode = c; })`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

const namespace = () => {
  const tag = randomUUID().slice(0, 8);
  return {
    SFT_CONTAINER: `k-${tag}`,
    SFT_PLAN_QUEUE: `kp-${tag}`,
    SFT_SHARD_QUEUE: `ks-${tag}`,
    SFT_FANIN_QUEUE: `kf-${tag}`,
    SFT_SHARD_BYTES: '65536',
    SFT_RUNNER_LEASE_SECONDS: '2',
  };
};

beforeAll(() => {
  expect(existsSync(join(DIST, 'cli', 'main.js')), 'npm run build first (npm test does)').toBe(
    true,
  );
});

/** `run` against the test's Azurite: input, output directory, then the given flags. */
const runArgs = (input: string, out: string, ...flags: string[]) => [
  'run',
  '--input',
  input,
  '--out',
  out,
  '--storage',
  inject('azurite').connectionString,
  ...flags,
];

interface Outputs {
  train: Buffer;
  manifest: Buffer;
}

const outputsOf = async (out: string): Promise<Outputs> => ({
  train: await readFile(join(out, 'train.jsonl')),
  manifest: await readFile(join(out, 'manifest.json')),
});

/**
 * Runs `args` killed at `failpoint`, then again to the end; both must behave, and the
 * dataset and manifest must equal the reference byte for byte. Returns both exits.
 */
async function killThenResume(
  args: string[],
  env: Record<string, string>,
  failpoint: string,
  reference: Outputs,
) {
  const killed = await runner(args, { ...env, SFT_FAILPOINT: failpoint });
  expect(killed.signal, killed.stderr).toBe('SIGKILL');
  const resumed = await runner(args, env);
  expect(resumed.code, resumed.stderr).toBe(0);
  const out = args[args.indexOf('--out') + 1]!;
  const got = await outputsOf(out);
  expect(got.train.equals(reference.train)).toBe(true);
  expect(got.manifest.equals(reference.manifest)).toBe(true);
  return { killed, resumed };
}

describe('the runner killed mid-build and started again', () => {
  let input: { dir: string; path: string };
  let reference: Outputs;

  beforeAll(async () => {
    input = await telemetryFile(600, 31);
    const out = join(input.dir, 'reference');
    const r = await runner(runArgs(input.path, out, '--total', '200', '-q'), namespace());
    expect(r.code, r.stderr).toBe(0);
    reference = await outputsOf(out);
  }, 240_000);

  it.each([
    ['after planning, before any batch ran', 'plan:planned'],
    ['after the fourth batch committed', 'judge:committed:4'],
    ['inside the fan-in, after writing train.jsonl', 'fanin:written'],
  ])(
    'completes byte-identical when killed %s',
    async (_when, failpoint) => {
      const out = join(input.dir, `out-${failpoint.replace(/:/g, '-')}`);
      const args = runArgs(input.path, out, '--total', '200');
      const { killed, resumed } = await killThenResume(args, namespace(), failpoint, reference);
      expect(killed.stderr).toContain(`failpoint ${failpoint.split(':').slice(0, 2).join(':')}`);
      expect(resumed.stderr).toMatch(/exists, resuming/);
    },
    120_000,
  );
});

describe('a wave-judged run killed mid-build and started again', () => {
  let input: { dir: string; path: string };
  let reference: Outputs;
  const ns = () => ({ ...namespace(), SFT_SHARD_BYTES: String(256 << 10) });
  const args = (out: string) => runArgs(input.path, out, '--waves', '--total', '600', '-q');

  beforeAll(async () => {
    input = await telemetryFile(3_000, 37);
    const out = join(input.dir, 'reference');
    const r = await runner(args(out), ns());
    expect(r.code, r.stderr).toBe(0);
    reference = await outputsOf(out);
    const m = JSON.parse(reference.manifest.toString('utf8')) as { waves: { waves: unknown[] } };
    expect(m.waves.waves.length).toBeGreaterThanOrEqual(2);
  }, 240_000);

  it.each([
    ['after planning a wave, before queuing its batches', 'fanin:wave-planned:2'],
    ['after a batch of the first wave committed', 'judge:committed:8'],
  ])(
    'completes byte-identical when killed %s',
    async (_when, failpoint) => {
      const out = join(input.dir, `out-${failpoint.replace(/:/g, '-')}`);
      await killThenResume(args(out), ns(), failpoint, reference);
    },
    120_000,
  );
});
