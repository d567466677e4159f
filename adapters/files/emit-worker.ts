/**
 * Worker thread of the build's split (shared/balance/emit-batch.ts): for each batch it
 * is sent, loads the batch's input lines as bytes from the file and emits their dataset
 * lines into one buffer, sent back (buffers transferred) for the main thread to write in
 * key order; or the error, for the main thread to fall back on doing it itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { batchRanges, emitBatch, type EmitBatch } from '../../shared/balance/emit-batch';
import { bufferBytes, loadRangeBytes } from './lines';

/** What the worker answers a batch: its lines, or why not. */
export type EmitReply =
  { ok: ReturnType<typeof emitBatch> } | { error: { name: string; message: string } };

const path = (workerData as { path: string }).path;

parentPort!.on('message', (batch: EmitBatch) => {
  let reply: EmitReply;
  try {
    reply = { ok: emitBatch(batch, loadRangeBytes(path, batchRanges(batch)), bufferBytes) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    parentPort!.postMessage({ error: { name: e.name, message: e.message } } satisfies EmitReply);
    return;
  }
  const { bytes, ends, signals } = reply.ok;
  parentPort!.postMessage(reply, [bytes.buffer, ends.buffer, signals.buffer] as ArrayBuffer[]);
});
