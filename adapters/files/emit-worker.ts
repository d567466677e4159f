/**
 * Worker thread of the build's split (shared/balance/emit-batch.ts): for each batch it
 * is sent, loads the batch's input lines as bytes from the file and emits their dataset
 * lines in chunks, each sent back (buffers transferred) for the main thread to write in
 * key order; or the error, for the main thread to fall back on doing the rest itself.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { batchRanges, emitBatch, type EmitBatch } from '../../shared/balance/emit-batch';
import { bufferBytes, loadRangeBytes } from './lines';

/** What the worker answers a batch: its lines, or why not. */
export type EmitReply =
  { ok: ReturnType<typeof emitBatch> } | { error: { name: string; message: string } };

const { path, port, signal } = workerData as {
  path: string;
  port: MessagePort;
  signal: SharedArrayBuffer;
};
const posted = new Int32Array(signal);

/** Lines a chunk: small enough that the main thread rarely waits, large enough to be few. */
const CHUNK_LINES = 2048;

/** Sends a reply and wakes the main thread, which waits on `posted` ([0]: replies, [1]: 1 once ended). */
function send(reply: EmitReply): void {
  if ('ok' in reply) {
    const { bytes, ends, signals } = reply.ok;
    port.postMessage(reply, [bytes.buffer, ends.buffer, signals.buffer] as ArrayBuffer[]);
  } else port.postMessage(reply);
  Atomics.add(posted, 0, 1);
  Atomics.notify(posted, 0);
}

// A worker that ends (process.exit, a fatal error) says so: the main thread stops waiting.
process.on('exit', () => {
  Atomics.store(posted, 1, 1);
  Atomics.add(posted, 0, 1);
  Atomics.notify(posted, 0);
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
