/**
 * `run --in-process --waves` without holding the samples: they go to a temporary file
 * (SampleSpill), the planner keeps a small item per sample and reads each wave back.
 * Before, every sample was held for the planner: out of a 64 MB heap on this input (10,000 conversations; measured: the old code aborts at 48 and 64 MB, this one runs in 64 MB) (it runs in it now).
 * The bytes are the runner's (test/waves/run.test.ts); here, the same as a big heap.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'sftb-waves-mem-'));
const bin = join(__dirname, '..', '..', 'bin', 'sft-balancer.js');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'SFT_JUDGE'));
const spills = () =>
  readdirSync(tmpdir()).filter((f) => f.startsWith('sft-balancer-samples-')).length;

describe('run --in-process --waves in bounded memory', () => {
  it('judges in waves an input whose samples do not fit in the heap, same bytes as a big heap', () => {
    const input = join(dir, 'telemetry.jsonl');
    execFileSync(process.execPath, [bin, 'generate', '--conversations', '10000', '--out', input]);
    const run = (out: string, heap: string[], spill: string) =>
      spawnSync(
        process.execPath,
        [
          ...heap,
          bin,
          'run',
          '--in-process',
          '--waves',
          '--no-probe',
          '-q',
          '--input',
          input,
          '--out',
          out,
          '--total',
          '2000',
          '--pipeline',
          'conversation',
        ],
        { env: { ...env, SFT_SPILL_BYTES: spill }, encoding: 'utf8' },
      );
    const before = spills();
    const small = run(join(dir, 'small'), ['--max-old-space-size=64'], '2000000');
    expect(small.stderr).toBe('');
    expect(small.status).toBe(0);
    expect(spills()).toBe(before);
    const big = run(join(dir, 'big'), [], String(1 << 30));
    expect(big.status).toBe(0);
    for (const f of ['train.jsonl', 'annotated.jsonl', 'unlabeled.jsonl', 'manifest.json']) {
      const a = readFileSync(join(dir, 'small', f));
      expect(a.equals(readFileSync(join(dir, 'big', f))), f).toBe(true);
    }
    const m = JSON.parse(readFileSync(join(dir, 'small', 'manifest.json'), 'utf8')) as {
      waves: { judged: number };
      pipeline: unknown;
    };
    expect(m.waves.judged).toBeGreaterThan(0);
  }, 600_000);
});
