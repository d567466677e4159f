/**
 * The worker side of the build's split (shared/balance/emit-batch.ts), for any worker
 * thread that serves it: the emit worker (emit-worker.ts), or a recording balance worker
 * once its chunks are done (balance-worker.ts), already loaded and warm. For each batch
 * it is sent (on its parent port), it loads the batch's input lines as bytes and emits
 * their dataset lines in chunks, each sent back on `port` (buffers transferred) for the
 * main thread to write in key order; or the error, for the main thread to fall back on
 * doing the rest itself.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { batchRanges, emitBatch, type EmitBatch } from '../../shared/balance/emit-batch';
import { cellBytes } from '../../shared/balance/emit';
import { bufferBytes, loadRangeBytes } from './lines';

/** What the worker answers a batch: its lines, or why not. */
export type EmitReply =
  { ok: ReturnType<typeof emitBatch> } | { error: { name: string; message: string } };

/** Lines a chunk: small enough that the main thread rarely waits, large enough to be few. */
const CHUNK_LINES = 2048;

/** Lines of the input emitted (and dropped) while the worker waits for its batch. */
const WARM_LINES = 4000;

/**
 * Serves emit batches of `path` in this worker: replies on `port`, each counted in
 * `signal`[0] (waking the main thread); [1] set to 1 when the worker ends.
 */
export function serveEmitBatches(path: string, port: MessagePort, signal: Int32Array): void {
  const send = (reply: EmitReply) => {
    if ('ok' in reply) {
      const { bytes, ends, signals } = reply.ok;
      port.postMessage(reply, [bytes.buffer, ends.buffer, signals.buffer] as ArrayBuffer[]);
    } else port.postMessage(reply);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  };
  // A worker that ends (process.exit, a fatal error) says so: the main thread stops waiting.
  process.on('exit', () => {
    Atomics.store(signal, 1, 1);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  });
  parentPort!.on('message', (batch: EmitBatch) => {
    parentPort!.postMessage('taken');
    try {
      const lines = loadRangeBytes(path, batchRanges(batch));
      for (let from = 0; from < batch.line.length; from += CHUNK_LINES) {
        const to = Math.min(batch.line.length, from + CHUNK_LINES);
        send({ ok: emitBatch(batch, lines, bufferBytes, from, to) });
      }
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      send({ error: { name: e.name, message: e.message } });
    }
  });
  setImmediate(() => warmUp(path));
}

/**
 * While the main thread resolves and selects (a core idle), the worker emits the input's
 * first lines and drops them: a fresh thread runs its first few thousand lines two to
 * three times slower than warmed code, and its batch is on the build's critical path.
 */
function warmUp(path: string): void {
  try {
    const fd = openSync(path, 'r');
    const head = Buffer.allocUnsafe(4 << 20);
    const n = readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    const at: number[] = [];
    const len: number[] = [];
    for (let s = 0, e = head.indexOf(10); e !== -1 && e < n && at.length < WARM_LINES;) {
      at.push(s);
      len.push(e - s);
      s = e + 1;
      e = head.indexOf(10, s);
    }
    const k = at.length;
    const batch: EmitBatch = {
      at: Float64Array.from(at),
      len: Float64Array.from(len),
      line: Int32Array.from({ length: k }, (_, i) => i),
      cell: new Int32Array(k),
      id: new Array<null>(k).fill(null),
      copyOf: new Array<null>(k).fill(null),
      cells: [cellBytes({}, 1)],
    };
    emitBatch(batch, loadRangeBytes(path, batchRanges(batch)), bufferBytes, 0, k);
  } catch {
    // Only a warm-up: the batch meets any real problem again and reports it.
  }
}
