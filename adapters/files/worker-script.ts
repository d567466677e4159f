/**
 * Where the compiled worker scripts are, and when a thread is worth it: shared by the
 * balance scan (parallel-balance.ts) and the emit worker's host side (emit-helper.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Parts smaller than this are not worth a thread. */
export const MIN_PART_BYTES = 16 << 20;

/**
 * The compiled worker script: beside this module in dist/, or in dist/ when this
 * module runs from TypeScript source (under vitest). Null when not built.
 */
export function workerScript(name = 'balance-worker.js'): string | null {
  const candidates = [
    join(__dirname, name),
    join(__dirname, '..', '..', 'dist', 'adapters', 'files', name),
  ];
  return candidates.find((p) => existsSync(p)) ?? null;
}
