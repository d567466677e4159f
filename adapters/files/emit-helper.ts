/**
 * The emit worker: a worker thread (emit-worker.ts) that loads and writes a share of a
 * build's picked lines beside the main thread (shared/balance/emit-batch.ts), for
 * `balance` on two threads or more. Taken out of the scan's parallel-balance.ts.
 */
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import {
  MessageChannel,
  receiveMessageOnPort,
  Worker,
  type MessagePort,
} from 'node:worker_threads';
import {
  batchRanges,
  emitBatch,
  type EmitBatch,
  type EmitHelper,
  type EmittedBatch,
} from '../../shared/balance/emit-batch';
import type { EmitReply } from './emit-worker';
import { bufferBytes, loadRangeBytes } from './lines';
import { MIN_PART_BYTES, workerScript } from './worker-script';

/** A worker thread loading and emitting a share of the build's lines: see {@link startEmitWorker}. */
export interface EmitWorker {
  emit: EmitHelper;
  /** Stops the worker (call it on every path once the build is done or failed). */
  close(): Promise<void>;
}

/**
 * The emit worker for balancing `path` on `threads` (default: what the machine offers),
 * or null when one thread, a gzipped or small input (under one part's size), or no
 * built worker script.
 */
export function emitWorkerFor(path: string, threads?: number): EmitWorker | null {
  const wanted = threads ?? Math.min(availableParallelism(), 4);
  if (wanted <= 1 || path.endsWith('.gz') || statSync(path).size < MIN_PART_BYTES) return null;
  return startEmitWorker(path);
}

/** A helper silent this long (no chunk) is taken for dead: its lines are then made here. */
const EMIT_STALL_MS = 30_000;

/**
 * Starts a worker thread (emit-worker.ts) that loads and emits a batch of `path`'s
 * picked lines (shared/balance/emit-batch.ts), started early so it is ready when the
 * build needs it; null without the script. The build takes the worker's chunks as it
 * writes, synchronously (receiveMessageOnPort, woken through a shared counter). What the
 * worker fails to deliver (it crashed, could not start, the read failed, or it fell
 * silent) is made in this thread instead, so a real error (the input changed) is thrown
 * here, typed. The worker never keeps the process alive; close() ends it.
 */
export function startEmitWorker(
  path: string,
  script = workerScript('emit-worker.js'),
): EmitWorker | null {
  if (script === null) return null;
  const { port1, port2 } = new MessageChannel();
  // [0]: replies posted (the worker wakes this thread on each); [1]: 1 once the worker ended.
  const signal = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(script, {
    workerData: { path, port: port2, signal: signal.buffer },
    resourceLimits: { maxYoungGenerationSizeMb: 8 },
    transferList: [port2],
  });
  return adoptEmitWorker(path, worker, port1, signal);
}

/**
 * The host side of a worker thread that serves emit batches of `path` (emit-serve.ts):
 * its replies come on `port1`, counted in `signal` ([0] replies, [1] 1 once it ended).
 * Used for the emit worker, and for a recording balance worker kept on once its chunks
 * are done (already loaded, its scanner warm).
 */
export function adoptEmitWorker(
  path: string,
  worker: Worker,
  port1: MessagePort,
  signal: Int32Array,
): EmitWorker {
  worker.unref();
  port1.unref();
  let failed: Error | null = null;
  let taken: ((ok: boolean) => void) | null = null;
  const fail = (err: Error) => {
    failed ??= err;
    taken?.(false);
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`emit worker exited (${code})`)));
  // The worker says it took the batch: from then on it reports its own failures.
  worker.on('message', () => taken?.(true));
  let used = false;
  return {
    emit: async (batch) => {
      if (failed !== null || used) return inThread(path, batch, 0);
      used = true;
      worker.ref(); // until it has taken the batch
      const ok = await new Promise<boolean>((resolve) => {
        taken = resolve;
        worker.postMessage(batch);
      });
      taken = null;
      worker.unref();
      return ok ? chunksOf(path, batch, port1, signal) : inThread(path, batch, 0);
    },
    close: async () => {
      fail(new Error('emit worker closed'));
      port1.close();
      await worker.terminate();
    },
  };
}

/** The batch's lines from `from` on, made in this thread (one chunk; then none). */
function inThread(path: string, batch: EmitBatch, from: number): () => EmittedBatch {
  let done = false;
  return () => {
    if (done) throw new Error('emit helper: no lines left');
    done = true;
    const lines = loadRangeBytes(path, batchRanges(batch));
    return emitBatch(batch, lines, bufferBytes, from);
  };
}

/** The worker's chunks of `batch`, each waited for; on a failure the rest made in-thread. */
function chunksOf(
  path: string,
  batch: EmitBatch,
  port: MessagePort,
  signal: Int32Array,
): () => EmittedBatch {
  let delivered = 0;
  let rest: (() => EmittedBatch) | null = null;
  return () => {
    if (rest) return rest();
    for (let since = Date.now(); Date.now() - since < EMIT_STALL_MS;) {
      const seen = Atomics.load(signal, 0);
      const m = receiveMessageOnPort(port)?.message as EmitReply | undefined;
      if (m !== undefined && 'ok' in m) {
        delivered += m.ok.ends.length;
        return m.ok;
      }
      if (m !== undefined || Atomics.load(signal, 1) === 1) break; // it failed or ended: the rest here
      Atomics.wait(signal, 0, seen, 1000);
    }
    rest = inThread(path, batch, delivered);
    return rest();
  };
}
