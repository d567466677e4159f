/**
 * Where the compiled worker scripts are, and when a thread is worth it: shared by the
 * balance scan (parallel-balance.ts) and the emit worker's host side (emit-helper.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

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

/** A worker started ahead of its task (see {@link prestart}), waiting for it. */
let waiting: { script: string; worker: Worker } | null = null;

/**
 * Starts a worker thread of script `name` now, its task to come (a `{ task }` message,
 * see {@link takePrestarted}): the launcher does so for `balance` before it loads the
 * command's modules, so the worker loads its own on the other core meanwhile rather than
 * when the scan needs it. Unused, it never keeps the process alive.
 */
export function prestart(name = 'balance-worker.js'): void {
  const script = workerScript(name);
  if (script === null || waiting !== null) return;
  try {
    const worker = new Worker(script, { workerData: { prestarted: true } });
    worker.unref();
    worker.on('error', () => undefined); // a failed prestart: the task starts its own
    waiting = { script, worker };
  } catch {
    waiting = null;
  }
}

/** The worker {@link prestart} started for `script`, if any (once), ref'd again. */
export function takePrestarted(script: string): Worker | null {
  if (waiting === null || waiting.script !== script || waiting.worker.threadId < 0) return null;
  const { worker } = waiting;
  waiting = null;
  worker.ref();
  return worker;
}
