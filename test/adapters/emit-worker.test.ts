/**
 * The build split between two threads (StreamingBalancer.finishRawInto with a helper,
 * adapters/files/emit-worker.ts): the same bytes, manifest and profile as one thread,
 * and a failing worker is either redone in-thread or fails the build typed.
 * The worker runs from dist/ (npm run build).
 */
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StreamingBalancer } from '../../shared/balance/balancer';
import { BalanceConfigSchema } from '../../shared/contracts/config';
import { ProfileBuilder } from '../../shared/report/profile';
import { generateTelemetry } from '../../shared/source/generate';
import {
  bufferBytes,
  InputFileError,
  loadRangeBytes,
  readFileRawLinesSync,
} from '../../adapters/files/lines';
import { workerScript } from '../../adapters/files/parallel-balance';
import { startEmitWorker, type EmitWorker } from '../../adapters/files/emit-helper';

const dir = mkdtempSync(join(tmpdir(), 'sftb-emitw-'));
/** Batches handed to a helper (reset by each test that counts). */
let batches = 0;

/** An annotated file: generated rows, some the emitter declines (integer-like keys, history). */
function inputFile(name: string): string {
  const lines: string[] = [];
  let i = 0;
  for (const turn of generateTelemetry({ seed: 4, rows: 9000, annotated: true })) {
    const t = turn as unknown as Record<string, unknown>;
    if (i % 40 === 1) lines.push(JSON.stringify({ ...t, '7': 'integer-like key' }));
    else if (i % 40 === 2) lines.push(JSON.stringify({ ...t, userMessage: `é\n${i}` }) + '\r');
    else if (i % 40 === 3) lines.push(JSON.stringify({ ...t, history: ['before', 'x'] }));
    else lines.push(JSON.stringify(t));
    i++;
  }
  const p = join(dir, name);
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

function scanned(path: string, config: ReturnType<typeof BalanceConfigSchema.parse>) {
  const b = new StreamingBalancer(config);
  readFileRawLinesSync(path, (buf, start, end, lineNo, at, len) => {
    const s = b.scanLine(buf, start, end);
    if (s === 1) b.addScanned(buf, at, len, null);
    else if (s < 0) b.addLine(buf.toString('utf8', start, end), lineNo, at, len);
  });
  return b;
}

/** Balances `path` (helper or not): the split files' lines, the manifest, the profile. */
async function build(
  path: string,
  config: ReturnType<typeof BalanceConfigSchema.parse>,
  helper?: EmitWorker,
) {
  const out: Record<string, string[]> = { train: [], validation: [], test: [] };
  const profile = new ProfileBuilder(config);
  let declined = 0;
  const result = await scanned(path, config).finishRawInto(
    {
      line: (line, split) => {
        declined++;
        out[split]!.push(JSON.stringify(line));
        profile.add(line);
      },
      raw: (b, s, e, split) => out[split]!.push(Buffer.from(b.subarray(s, e)).toString()),
      profile: (row) => profile.addSignals(row),
    },
    (rs) => loadRangeBytes(path, rs),
    bufferBytes,
    helper &&
      ((batch) => {
        batches++;
        return helper.emit(batch);
      }),
  );
  return { out, manifest: result.manifest, profile: profile.snapshot(), declined };
}

const configOf = (c: Record<string, unknown>) =>
  BalanceConfigSchema.parse({ nearDedup: false, stratify: ['turnBucket', 'complexity'], ...c });

describe('finishRawInto with an emit worker', () => {
  it('finds the built worker script (npm run build)', () => {
    expect(workerScript('emit-worker.js')).not.toBeNull();
  });

  for (const [name, c] of Object.entries({
    plain: { total: 6000, ratio: 0.5 },
    upsample: { total: 12000, ratio: 0.6, onShortfall: 'upsample' },
  })) {
    it(`writes the same lines, manifest and profile as one thread: ${name}`, async () => {
      const path = inputFile(`${name}.jsonl`);
      const config = configOf(c);
      const want = await build(path, config);
      const worker = startEmitWorker(path)!;
      try {
        batches = 0;
        const got = await build(path, config, worker);
        expect(batches).toBe(1); // the worker took half the lines
        expect(got.out).toEqual(want.out);
        expect(got.manifest).toEqual(want.manifest);
        expect(got.profile).toEqual(want.profile);
        expect(got.declined).toBe(want.declined);
        expect(got.declined).toBeGreaterThan(0);
        if (name === 'upsample') expect(got.manifest.selected.upsampled).toBeGreaterThan(0);
      } finally {
        await worker.close();
      }
    });
  }

  it('redoes a batch in-thread when the worker crashes: the same lines', async () => {
    const path = inputFile('crash.jsonl');
    const crash = join(dir, 'crash-worker.js');
    writeFileSync(crash, "throw new Error('boom');\n");
    const config = configOf({ total: 6000, ratio: 0.5 });
    const want = await build(path, config);
    const worker = startEmitWorker(path, crash)!;
    try {
      batches = 0;
      const got = await build(path, config, worker);
      expect(batches).toBe(1);
      expect(got.out).toEqual(want.out);
      expect(got.profile).toEqual(want.profile);
    } finally {
      await worker.close();
    }
  });

  it('makes the rest in-thread, without waiting, when the worker ends after taking the batch', async () => {
    const path = inputFile('ended.jsonl');
    const ends = join(dir, 'ending-worker.js');
    // The emit worker's protocol (emit-worker.ts), then an exit instead of the lines.
    writeFileSync(
      ends,
      `const { parentPort, workerData } = require('node:worker_threads');
const posted = new Int32Array(workerData.signal);
process.on('exit', () => { Atomics.store(posted, 1, 1); Atomics.add(posted, 0, 1); Atomics.notify(posted, 0); });
parentPort.on('message', () => { parentPort.postMessage('taken'); setTimeout(() => process.exit(3), 50); });
`,
    );
    const config = configOf({ total: 6000, ratio: 0.5 });
    const want = await build(path, config);
    const worker = startEmitWorker(path, ends)!;
    try {
      const t0 = Date.now();
      batches = 0;
      const got = await build(path, config, worker);
      expect(batches).toBe(1);
      expect(Date.now() - t0).toBeLessThan(10_000); // not the 30 s a silent worker gets
      expect(got.out).toEqual(want.out);
      expect(got.profile).toEqual(want.profile);
    } finally {
      await worker.close();
    }
  });

  it('fails typed when the input changed before the lines were read back', async () => {
    const path = inputFile('shrunk.jsonl');
    const config = configOf({ total: 6000, ratio: 0.5 });
    const balancer = scanned(path, config);
    truncateSync(path, 1000);
    const worker = startEmitWorker(path)!;
    try {
      await expect(
        balancer.finishRawInto(
          { line: () => undefined, raw: () => undefined, profile: () => undefined },
          (rs) => loadRangeBytes(path, rs),
          bufferBytes,
          worker.emit,
        ),
      ).rejects.toThrow(InputFileError);
    } finally {
      await worker.close();
    }
    // A closed worker takes no more work: a batch is then made in-thread (and fails the same way).
    const batch = {
      at: new Float64Array([0]),
      len: new Float64Array([5000]),
      line: new Int32Array([0]),
      cell: new Int32Array([0]),
      id: [null],
      copyOf: [null],
      cells: [new Uint8Array(0)],
    };
    const lines = await worker.emit(batch);
    expect(() => lines()).toThrow(InputFileError);
  });
});
