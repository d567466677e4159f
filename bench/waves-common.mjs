// Shared by the waves benchmarks (waves.mjs, waves-runner.mjs): running the CLI under
// bench/measure.py (wall time, peak RSS) and the generated, annotated telemetry.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const root = join(import.meta.dirname, '..');
export const cli = join(root, 'bin', 'sft-balancer.js');
export const log = (s) => process.stderr.write(`${s}\n`);
const env = { ...process.env, NODE_OPTIONS: '--max-old-space-size=8192' };

/** Runs `sft-balancer ARGS` under measure.py; throws with its stderr when it fails. */
export function measure(args) {
  const out = execFileSync('python3', [join(root, 'bench', 'measure.py'), 'node', cli, ...args], {
    encoding: 'utf8',
    env,
    maxBuffer: 1 << 26,
  });
  const r = JSON.parse(out);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r;
}

export const manifestOf = (dir) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));

/** The benchmark's telemetry (seed 7, true labels included), generated once. */
export function telemetryFor(conversations) {
  const telemetry = join(root, '.bench', `waves-telemetry-${conversations}.jsonl`);
  if (!existsSync(telemetry)) {
    log(`generating ${conversations} conversations (annotated) → ${telemetry}`);
    execFileSync('node', [
      cli,
      'generate',
      '--conversations',
      String(conversations),
      '--annotated',
      '--seed',
      '7',
      '--out',
      telemetry,
      '--quiet',
    ]);
  }
  return telemetry;
}
