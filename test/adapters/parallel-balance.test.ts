/**
 * The balance scan's presizing estimate (adapters/files/parallel-balance.ts estimateRows):
 * rows from the line length of the first MiB, a little over, and never more than the cap
 * (a first MiB of short lines must not reserve gigabytes of tables).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRanges } from '../../adapters/files/lines';
import {
  balanceFileParallel,
  estimateRows,
  workerScript,
} from '../../adapters/files/parallel-balance';
import { prestart, takePrestarted } from '../../adapters/files/worker-script';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { annotatedRows } from '../support/rows';

const dir = mkdtempSync(join(tmpdir(), 'sftb-estimate-'));

describe('estimateRows', () => {
  it('estimates a part’s rows from its first MiB, a little over', () => {
    const p = join(dir, 'even.jsonl');
    const line = `{"x":"${'a'.repeat(93)}"}`; // 100 bytes with its newline
    writeFileSync(p, `${line}\n`.repeat(30_000));
    const all = estimateRows(p, 0, 3_000_000 - 1);
    expect(all).toBeGreaterThanOrEqual(30_000);
    expect(all).toBeLessThanOrEqual(30_700);
    const part = estimateRows(p, 1_000_000, 1_999_999);
    expect(part).toBeGreaterThanOrEqual(10_000);
    expect(part).toBeLessThanOrEqual(10_300);
    expect(estimateRows(p, 0, -1)).toBe(0);
  });

  it('caps the estimate when the first MiB holds only short lines', () => {
    const p = join(dir, 'short.jsonl');
    writeFileSync(p, '\n'.repeat(3_000_000));
    expect(estimateRows(p, 0, 3_000_000 - 1)).toBe(1 << 21);
    // Uncapped: what decides whether a file is recorded (at most MAX_RECORDED_ROWS rows).
    expect(estimateRows(p, 0, 3_000_000 - 1, Infinity)).toBe(3_060_000);
  });
});

describe('wake (the recording scan waiting for its workers)', () => {
  // A bare Atomics.waitAsync does not (Node 20): the process would end, silently, mid-scan.
  it('keeps the process alive while it waits', () => {
    const mod = JSON.stringify(
      join(__dirname, '..', '..', 'dist', 'adapters', 'files', 'parallel-balance.js'),
    );
    const run = (wait: string) =>
      spawnSync(
        process.execPath,
        [
          '-e',
          `const { wake } = require(${mod});
           const signal = new Int32Array(new SharedArrayBuffer(4));
           (async () => { await ${wait}; process.stdout.write('woke'); })();`,
        ],
        { encoding: 'utf8' },
      );
    expect(run('wake(signal, 0)').stdout).toBe('woke');
  });
});

describe('a prestarted balance worker (the launcher starts one for `balance`)', () => {
  it('is handed the scan: the dataset of one thread, and it is not left waiting', async () => {
    const p = join(dir, 'prestart.jsonl');
    const rows = annotatedRows({ conversations: 2500, seed: 21 });
    writeFileSync(p, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const cfg = parseBalanceConfig({ total: 1000, nearDedup: false });
    const run = async (threads: number) => {
      const b = await balanceFileParallel(p, cfg, {
        threads,
        minPartBytes: 1 << 18,
        onQuarantine: () => undefined,
      });
      const r = await b.finishWith((ranges) => loadRanges(p, ranges));
      return r.train.map((l) => JSON.stringify(l)).join('\n');
    };
    const one = await run(1);
    prestart();
    const script = workerScript()!;
    expect(await run(2)).toBe(one);
    expect(takePrestarted(script), 'taken by the scan').toBeNull();
  });
});
