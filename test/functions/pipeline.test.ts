/**
 * A full build through the real queues and blobs (Azurite), both pipelines: plan →
 * judge batches → fan-in, served by the local queue host. The dataset must equal
 * the in-process `balance` of the annotated rows the batches wrote, and the
 * in-process `run` of the same telemetry.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { balanceFile, runPipeline } from '../../cli/jobs';
import { getPlan, readStatus } from '../../functions/lib/build-ops';
import { judgeFor } from '../../functions/lib/judges';
import { LATEST_PATH, buildPaths } from '../../shared/build/spec';
import { runBuild, specFor, telemetryFile, testDeps } from './harness';

const BAD_LINES = [
  '{"conversationId": "broken"',
  '{"conversationId":"conv-bad","turnIndex":"one","turnCount":1}',
  '[1, 2, 3]',
];

describe.each([
  ['session', 200],
  ['conversation', 400],
] as const)('a full %s build on Azurite', (pipeline, total) => {
  it('publishes the dataset the in-process balance and run give for the same rows', async () => {
    const deps = testDeps();
    const t = await telemetryFile(700, 5, BAD_LINES);
    await deps.store.ensureContainer();
    await deps.store.uploadFile('telemetry/t.jsonl', t.path);
    const spec = specFor(
      deps,
      `full-${pipeline}`,
      { pipeline, total, ratio: 0.6 },
      { kind: 'blob', path: 'telemetry/t.jsonl' },
    );
    const outcome = await runBuild(deps, spec);
    expect(outcome).toMatchObject({ state: 'succeeded', stage: 'fanin', samplesLost: 0 });

    const p = buildPaths(spec.id);
    const plan = (await getPlan(deps, spec.id))!;
    expect(plan.shards.length).toBeGreaterThan(3);
    const train = (await deps.store.get(p.train))!.toString('utf8');
    const manifest = JSON.parse((await deps.store.get(p.manifest))!.toString('utf8'));
    expect(manifest.selected.total).toBe(total);
    expect(manifest.quarantine.total).toBe(BAD_LINES.length);
    expect(manifest.batches).toMatchObject({
      planned: plan.shards.length,
      done: plan.shards.length,
      failed: 0,
    });

    // The in-process `balance` of the annotated rows the batches wrote.
    const annotated: string[] = [];
    for (const s of plan.shards)
      annotated.push((await deps.store.get(p.rows(s.id)))!.toString('utf8'));
    await writeFile(join(t.dir, 'annotated.jsonl'), annotated.join(''));
    await balanceFile(join(t.dir, 'annotated.jsonl'), join(t.dir, 'balanced'), spec.config, {
      quiet: true,
    });
    expect(train).toBe(await readFile(join(t.dir, 'balanced', 'train.jsonl'), 'utf8'));

    // The in-process `run` of the same telemetry.
    const job = await runPipeline(t.path, join(t.dir, 'inproc'), spec.config, {
      pipeline,
      history: spec.history,
      judge: judgeFor(spec),
      batchSize: spec.judge.batchSize,
      quiet: true,
    });
    expect(train).toBe(await readFile(join(t.dir, 'inproc', 'train.jsonl'), 'utf8'));
    expect((await deps.store.get(p.datasetQuarantine))!.toString('utf8')).toBe(
      await readFile(join(t.dir, 'inproc', 'quarantine.jsonl'), 'utf8'),
    );
    for (const key of [
      'input',
      'quarantine',
      'targets',
      'selected',
      'shortfalls',
      'weights',
      'split',
      'nearDuplicates',
    ])
      expect(manifest[key]).toEqual(job.manifest[key]);
    // Near-dedup (on by default): the same removals, listed in the same bytes, everywhere.
    const dups = (await deps.store.get(`${p.datasetPrefix}duplicates.jsonl`))!.toString('utf8');
    expect(dups).toBe(await readFile(join(t.dir, 'inproc', 'duplicates.jsonl'), 'utf8'));
    expect(dups).toBe(await readFile(join(t.dir, 'balanced', 'duplicates.jsonl'), 'utf8'));
    expect(manifest.outputs['duplicates.jsonl']).toEqual(
      (job.manifest.outputs as Record<string, unknown>)['duplicates.jsonl'],
    );
    expect(manifest.nearDuplicates.removed).toBe(dups.split('\n').filter(Boolean).length);
    expect(manifest.nearDuplicates.removed).toBeGreaterThan(0);
    const trainIds = new Set(
      train
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { id: string }).id),
    );
    for (const l of dups.split('\n').filter(Boolean)) {
      const d = JSON.parse(l) as { id: string; keptId: string; similarity: number };
      expect(trainIds.has(d.keptId) && !trainIds.has(d.id)).toBe(true);
      expect(d.similarity).toBeGreaterThanOrEqual(0.8);
    }
    expect(manifest.pipeline.assembly).toEqual(
      (job.manifest.pipeline as { assembly: unknown }).assembly,
    );
    // The router probe: the same bytes through the functions as in-process (and balance).
    for (const file of ['probe.json', 'label-review.jsonl']) {
      const blob = (await deps.store.get(`${p.datasetPrefix}${file}`))!.toString('utf8');
      expect(blob).toBe(await readFile(join(t.dir, 'inproc', file), 'utf8'));
      expect(blob).toBe(await readFile(join(t.dir, 'balanced', file), 'utf8'));
      expect(manifest.outputs[file]).toEqual(
        (job.manifest.outputs as Record<string, unknown>)[file],
      );
    }
    expect(manifest.probe.status).toBe('ok');
    expect(manifest.probe.verdict.textAuc).toBeGreaterThan(0.5);
    expect(manifest.probe).toEqual(job.manifest.probe);

    const status = (await readStatus(deps, spec.id))!;
    expect(status).toMatchObject({
      state: 'succeeded',
      progress: { planned: plan.shards.length, judged: plan.shards.length, failed: 0, pending: 0 },
      counts: { quarantined: BAD_LINES.length, samplesLost: 0 },
    });
    expect(status.outputs?.train).toBe(p.train);
    const latest = JSON.parse((await deps.store.get(LATEST_PATH))!.toString('utf8'));
    expect(latest).toMatchObject({ buildId: spec.id, train: p.train, manifest: p.manifest });
  });
});
