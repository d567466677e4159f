/**
 * Worker thread: balances chunks of an annotated JSONL file, taken in turn with the
 * other threads (see scanChunks), and sends back its snapshot (see
 * StreamingBalancer.merge) and the rows it quarantined.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { StreamingBalancer, type BalancerOptions } from '../../shared/balance/balancer';
import type { BalanceConfig } from '../../shared/contracts/config';
import {
  estimateRows,
  MAIN_TAIL_CHUNKS,
  scanChunks,
  type ChunkQuarantine,
  type ChunkTask,
} from './parallel-balance';

export interface WorkerTask extends ChunkTask {
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

run(workerData as WorkerTask);
