/**
 * Worker thread: balances one byte range of an annotated JSONL file and sends back
 * its snapshot (see StreamingBalancer.merge) and the rows it quarantined.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  StreamingBalancer,
  type BalancerOptions,
  type QuarantineRecord,
} from '../../shared/balance/balancer';
import type { BalanceConfig } from '../../shared/contracts/config';
import { readFileRawLinesSync } from './lines';
import { estimateRows, offerRawLine } from './parallel-balance';

export interface WorkerTask {
  path: string;
  start: number;
  end: number;
  config: BalanceConfig;
  /** Lines longer than this are quarantined (see ParallelOptions). */
  maxLineBytes?: number | undefined;
  /** The scan's margin (a near-dedup refill pass widens it): every part keeps the same. */
  options?: BalancerOptions;
}

export interface WorkerResult {
  snapshot: ReturnType<StreamingBalancer['snapshot']>;
  quarantine: QuarantineRecord[];
  lines: number;
}

function run(task: WorkerTask): void {
  const balancer = new StreamingBalancer(task.config, task.options);
  balancer.reserve(estimateRows(task.path, task.start, task.end));
  const quarantine: QuarantineRecord[] = [];
  const lines = readFileRawLinesSync(
    task.path,
    (buf, start, end, lineNo, at, len) => {
      const q = offerRawLine(balancer, buf, start, end, lineNo, at, len, true, task.maxLineBytes);
      if (q) quarantine.push(q);
    },
    { start: task.start, end: task.end },
    task.maxLineBytes,
  );
  const snapshot = balancer.snapshot();
  const c = snapshot.candidates;
  const transfer = [snapshot.sampleIds.hi.buffer, snapshot.sampleIds.lo.buffer];
  transfer.push(c.key.buffer, c.tie.buffer, c.group.buffer, c.at.buffer, c.len.buffer);
  transfer.push(c.idEnds.buffer);
  if (snapshot.groups) {
    const g = snapshot.groups;
    transfer.push(g.hi.buffer, g.lo.buffer, g.key.buffer, g.tie.buffer, g.slot.buffer);
  }
  const result: WorkerResult = { snapshot, quarantine, lines };
  parentPort!.postMessage(result, transfer as ArrayBuffer[]);
}

run(workerData as WorkerTask);
