/**
 * Two builds at once, in the same container and on the same queues, served by two
 * host instances: each publishes its own dataset (the one it gives when run alone),
 * under its own prefix, and neither reads the other's batches.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalQueueHost } from '../../adapters/local/queue-host';
import { runPipeline } from '../../cli/jobs';
import { getOutcome, startBuild } from '../../functions/lib/build-ops';
import { judgeFor } from '../../functions/lib/judges';
import { buildPaths, type BuildSpec } from '../../shared/build/spec';
import {
  fastHostConfig,
  queueFunctions,
  specFor,
  telemetryFile,
  testDeps,
} from '../functions/harness';

async function alone(path: string, spec: BuildSpec, out: string) {
  await runPipeline(path, out, spec.config, {
    pipeline: spec.pipeline,
    history: spec.history,
    judge: judgeFor(spec),
    batchSize: spec.judge.batchSize,
    quiet: true,
  });
  return readFile(join(out, 'train.jsonl'), 'utf8');
}

describe('two builds at once', () => {
  it('keep separate outputs, each equal to the build run alone', async () => {
    const deps = testDeps({ SFT_SHARD_BYTES: '16384' });
    const a = await telemetryFile(250, 71);
    const b = await telemetryFile(250, 72);
    const specA = specFor(deps, 'twin-a', { total: 120, seed: 1 }, { kind: 'file', path: a.path });
    const specB = specFor(
      deps,
      'twin-b',
      { pipeline: 'conversation', total: 200, ratio: 0.7, seed: 2 },
      { kind: 'file', path: b.path },
    );
    await Promise.all([startBuild(deps, specA), startBuild(deps, specB)]);
    const hosts = [0, 1].map(
      () =>
        new LocalQueueHost({
          service: deps.clients.queues,
          functions: queueFunctions(deps),
          config: fastHostConfig(),
          leaseSeconds: 5,
        }),
    );
    hosts.forEach((h) => h.start());
    try {
      const deadline = Date.now() + 90_000;
      while (!((await getOutcome(deps, specA.id)) && (await getOutcome(deps, specB.id)))) {
        if (Date.now() > deadline) throw new Error('the builds did not finish in time');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await Promise.all(hosts.map((h) => h.stop()));
    }
    for (const [spec, t] of [
      [specA, a],
      [specB, b],
    ] as const) {
      const p = buildPaths(spec.id);
      expect(await getOutcome(deps, spec.id)).toMatchObject({ state: 'succeeded', samplesLost: 0 });
      const manifest = JSON.parse((await deps.store.get(p.manifest))!.toString());
      expect(manifest.build.id).toBe(spec.id);
      expect(manifest.selected.total).toBe(spec.config.total);
      expect((await deps.store.get(p.train))!.toString()).toBe(
        await alone(t.path, spec, join(t.dir, 'alone')),
      );
    }
    const latest = JSON.parse((await deps.store.get('datasets/latest.json'))!.toString());
    expect([specA.id, specB.id]).toContain(latest.buildId);
  }, 120_000);
});
