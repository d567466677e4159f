/**
 * Worker thread: balances chunks of an annotated JSONL file, taken in turn with the
 * other threads (see scanChunks), and sends back its snapshot (see
 * StreamingBalancer.merge) and the rows it quarantined.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  StreamingBalancer,
  type BalancerOptions,
  type QuarantineTally,
} from '../../shared/balance/balancer';
import { RowRecords, type RecordColumns } from '../../shared/balance/records';
import type { BalanceConfig } from '../../shared/contracts/config';
import {
  estimateRows,
  MAIN_TAIL_CHUNKS,
  recordChunks,
  scanChunks,
  type ChunkQuarantine,
  type ChunkRows,
  type ChunkTask,
} from './parallel-balance';

export interface WorkerTask extends ChunkTask {
  /** Record the rows (shared/balance/records.ts) instead of balancing them. */
  records?: boolean;
  config: BalanceConfig;
  /** The scan's margin (a near-dedup refill pass widens it): every part keeps the same. */
  options?: BalancerOptions;
  /** Threads sharing the chunks (to presize this one's tables for its share). */
  threads: number;
}

export interface WorkerResult {
  snapshot: ReturnType<StreamingBalancer['snapshot']> | null;
  quarantine: ChunkQuarantine[];
  /** With `records`: the rows, where each chunk's are, and the quarantine counts. */
  records?: { columns: RecordColumns; chunks: ChunkRows[]; tally: QuarantineTally };
}

function record(task: WorkerTask): void {
  const balancer = new StreamingBalancer(task.config, task.options);
  const size = task.bounds[task.bounds.length - 1]!;
  const out = new RowRecords(
    Math.ceil((estimateRows(task.path, 0, size - 1) / task.threads) * 1.1),
  );
  const quarantine: ChunkQuarantine[] = [];
  const chunks = recordChunks(balancer, out, task, (q) => quarantine.push(q), {
    leave: MAIN_TAIL_CHUNKS,
  });
  const records = { columns: out.columns, chunks, tally: balancer.quarantineTally() };
  const result: WorkerResult = { snapshot: null, quarantine, records };
  parentPort!.postMessage(result, out.transferList());
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

const task = workerData as WorkerTask;
if (task.records) record(task);
else run(task);
