/**
 * Worker thread of the build's split (shared/balance/emit-batch.ts): serves the batches
 * it is sent (emit-serve.ts), started by startEmitWorker (emit-helper.ts).
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import { serveEmitBatches } from './emit-serve';

export type { EmitReply } from './emit-serve';

const { path, port, signal } = workerData as {
  path: string;
  port: MessagePort;
  signal: SharedArrayBuffer;
};
serveEmitBatches(path, port, new Int32Array(signal));
