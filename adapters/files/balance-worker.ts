/**
 * Worker thread: balances chunks of an annotated JSONL file, taken in turn with the
 * other threads (see scanChunks), and sends back its snapshot (see
 * StreamingBalancer.merge) and the rows it quarantined; or, recording, sends each
 * chunk's records as it is done (see balanceByRecords).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { StreamingBalancer, type BalancerOptions } from '../../shared/balance/balancer';
import { RowRecords } from '../../shared/balance/records';
import { serveEmitBatches } from './emit-serve';
import type { BalanceConfig } from '../../shared/contracts/config';
import {
  estimateRows,
  MAIN_TAIL_CHUNKS,
  recordChunk,
  scanChunks,
  takeChunk,
  type ChunkQuarantine,
  type ChunkTask,
  type RecordedMessage,
  type RecordingDone,
} from './parallel-balance';

export interface WorkerTask extends ChunkTask {
  /**
   * Record the rows (shared/balance/records.ts) instead of balancing them, each chunk sent
   * on `port` as it is done (a RecordedMessage), then a RecordingDone; each message
   * counted in `signal`[0] (and the waiting thread woken).
   */
  records?: {
    perChunk: number;
    signal: Int32Array;
    port?: MessagePort;
    /** Once done, serve emit batches (emit-serve.ts) on the same port and signal. */
    serveEmit?: boolean;
  };
  config: BalanceConfig;
  /** The scan's margin (a near-dedup refill pass widens it): every part keeps the same. */
  options?: BalancerOptions;
  /** Threads sharing the chunks (to presize this one's tables for its share). */
  threads: number;
}

export interface WorkerResult {
  snapshot: ReturnType<StreamingBalancer['snapshot']>;
  quarantine: ChunkQuarantine[];
}

function record(task: WorkerTask): void {
  const { perChunk, signal, port } = task.records!;
  const balancer = new StreamingBalancer(task.config, task.options);
  const post = (m: RecordedMessage | RecordingDone, transfer: ArrayBuffer[] = []) => {
    port!.postMessage(m, transfer);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  };
  for (let k = takeChunk(task); k >= 0; k = takeChunk(task)) {
    const out = new RowRecords(perChunk);
    const quarantine: ChunkQuarantine[] = [];
    const lines = recordChunk(balancer, task, k, out, (q) => quarantine.push(q));
    post({ chunk: k, lines, columns: out.columns, quarantine }, out.transferList());
  }
  post({ done: balancer.quarantineTally() });
  if (task.records!.serveEmit) serveEmitBatches(task.path, port!, signal);
}

function run(task: WorkerTask): void {
  const balancer = new StreamingBalancer(task.config, task.options);
  const size = task.bounds[task.bounds.length - 1]!;
  balancer.reserve(Math.ceil(estimateRows(task.path, 0, size - 1) / task.threads));
  const quarantine: ChunkQuarantine[] = [];
  scanChunks(balancer, task, (q) => quarantine.push(q), { leave: MAIN_TAIL_CHUNKS });
  const snapshot = balancer.snapshot();
  const c = snapshot.candidates;
  const transfer = [snapshot.sampleIds.hi.buffer, snapshot.sampleIds.lo.buffer];
  transfer.push(c.key.buffer, c.tie.buffer, c.group.buffer, c.at.buffer, c.len.buffer);
  transfer.push(c.idEnds.buffer);
  if (snapshot.groups) {
    const g = snapshot.groups;
    transfer.push(g.hi.buffer, g.lo.buffer, g.key.buffer, g.tie.buffer, g.slot.buffer);
  }
  const result: WorkerResult = { snapshot, quarantine };
  parentPort!.postMessage(result, transfer as ArrayBuffer[]);
}

function start(task: WorkerTask): void {
  if (task.records) record(task);
  else run(task);
}

// Prestarted (worker-script.ts prestart): the task comes as the first message.
if ((workerData as { prestarted?: boolean }).prestarted)
  parentPort!.once('message', (m: { task: WorkerTask }) => start(m.task));
else start(workerData as WorkerTask);
