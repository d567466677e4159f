/**
 * Shards as references: the plan of a blob or file source records byte ranges of the
 * source (runs) and its ETag (or size and mtime), copies none of the telemetry, and
 * the batch reads its runs directly. A source not grouped by conversation keeps every
 * conversation whole; a source changed after the plan fails the build, saying why.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { runPipeline } from '../../cli/jobs';
import { getOutcome, getPlan, startBuild } from '../../functions/lib/build-ops';
import { judgeFor } from '../../functions/lib/judges';
import { createJudgeBatch } from '../../functions/judge-batch';
import { createPlanBuild } from '../../functions/plan-build';
import { buildPaths } from '../../shared/build/spec';
import { runBuild, specFor, telemetryFile, testDeps } from './harness';

const ctx = () => new InvocationContext({ invocationId: 'refs', functionName: 'test' });

/** Deterministic shuffle (a source ordered by time, not by conversation). */
function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('shards of a blob or file source', () => {
  it('are byte ranges of the source: no copy under builds/, and the dataset in-process gives', async () => {
    const deps = testDeps({ SFT_SHARD_BYTES: '65536' });
    const t = await telemetryFile(400, 21);
    await deps.store.ensureContainer();
    await deps.store.uploadFile('telemetry/t.jsonl', t.path);
    const spec = specFor(
      deps,
      'refs-blob',
      { total: 120 },
      { kind: 'blob', path: 'telemetry/t.jsonl' },
    );
    expect(await runBuild(deps, spec)).toMatchObject({ state: 'succeeded', samplesLost: 0 });
    const plan = (await getPlan(deps, spec.id))!;
    expect(plan.shards.length).toBeGreaterThan(3);
    expect(plan.source).toMatchObject({ kind: 'blob', etag: expect.any(String) });
    // A source grouped by conversation: one contiguous run a shard.
    expect(plan.shards.every((s) => s.runs?.length === 1)).toBe(true);
    const names = await deps.store.list(`builds/${spec.id}/`);
    expect(names.filter((n) => n.includes('/shards/'))).toEqual([]);
    const job = join(t.dir, 'inproc');
    await runPipeline(t.path, job, spec.config, {
      pipeline: spec.pipeline,
      history: spec.history,
      judge: judgeFor(spec),
      batchSize: spec.judge.batchSize,
      quiet: true,
    });
    expect((await deps.store.get(buildPaths(spec.id).train))!.toString('utf8')).toBe(
      await readFile(join(job, 'train.jsonl'), 'utf8'),
    );
  }, 90_000);

  it('keep a conversation whole when the source is not grouped by conversation (runs in index blobs)', async () => {
    const deps = testDeps({ SFT_SHARD_BYTES: '65536' });
    const t = await telemetryFile(1_500, 22);
    const lines = (await readFile(t.path, 'utf8')).split('\n').filter((l) => l !== '');
    // CRLF line ends and a blank line too: the batch numbers lines as the source does.
    await writeFile(t.path, shuffled(lines, 5).join('\r\n') + '\r\n\r\n');
    const spec = specFor(deps, 'refs-shuffled', { total: 200 }, { kind: 'file', path: t.path });
    expect(await runBuild(deps, spec, { timeoutMs: 120_000 })).toMatchObject({
      state: 'succeeded',
      samplesLost: 0,
    });
    const plan = (await getPlan(deps, spec.id))!;
    expect(plan.source).toMatchObject({ kind: 'file' });
    // Too many runs for plan.json: each shard's runs are in its index blob (numbers only).
    expect(plan.shards.every((s) => s.runs === undefined)).toBe(true);
    const index = (await deps.store.get(buildPaths(spec.id).shardIndex(plan.shards[0]!.id)))!;
    expect(index.toString('utf8')).toMatch(/^\{"runs":\[\[\d+,\d+,\d+\]/);
    expect(index.toString('utf8')).not.toContain('conversationId');
    const job = join(t.dir, 'inproc');
    await runPipeline(t.path, job, spec.config, {
      pipeline: spec.pipeline,
      history: spec.history,
      judge: judgeFor(spec),
      batchSize: spec.judge.batchSize,
      quiet: true,
    });
    const manifest = JSON.parse((await deps.store.get(buildPaths(spec.id).manifest))!.toString());
    const inproc = JSON.parse(await readFile(join(job, 'manifest.json'), 'utf8'));
    expect(manifest.input).toEqual(inproc.input);
    expect((await deps.store.get(buildPaths(spec.id).train))!.toString('utf8')).toBe(
      await readFile(join(job, 'train.jsonl'), 'utf8'),
    );
  }, 150_000);

  it('fail the build, naming the blob, when the source blob changes after the plan (ETag)', async () => {
    const deps = testDeps({ SFT_SHARD_BYTES: '65536' });
    const t = await telemetryFile(300, 23);
    await deps.store.ensureContainer();
    await deps.store.uploadFile('telemetry/t.jsonl', t.path);
    const spec = specFor(
      deps,
      'refs-etag',
      { total: 100 },
      { kind: 'blob', path: 'telemetry/t.jsonl' },
    );
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx());
    const plan = (await getPlan(deps, spec.id))!;
    // The same bytes uploaded again: a new ETag, so no batch trusts the planned ranges.
    await deps.store.uploadFile('telemetry/t.jsonl', t.path);
    const sid = plan.shards[0]!.id;
    await createJudgeBatch(deps)({ kind: 'shard', buildId: spec.id, shardId: sid }, ctx());
    const outcome = (await getOutcome(deps, spec.id))!;
    expect(outcome.state).toBe('failed');
    expect(outcome.reason).toMatch(
      /the telemetry blob .*telemetry\/t\.jsonl changed after the build was planned/,
    );
    const failed = JSON.parse((await deps.store.get(buildPaths(spec.id).failed(sid)))!.toString());
    expect(failed).toMatchObject({ via: 'permanent' });
  }, 60_000);

  it('fail the build when the source file grows after the plan (size and mtime)', async () => {
    const deps = testDeps({ SFT_SHARD_BYTES: '65536' });
    const t = await telemetryFile(300, 24);
    const spec = specFor(deps, 'refs-file', { total: 100 }, { kind: 'file', path: t.path });
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx());
    const plan = (await getPlan(deps, spec.id))!;
    await appendFile(t.path, '{"conversationId":"late"}\n');
    await createJudgeBatch(deps)(
      { kind: 'shard', buildId: spec.id, shardId: plan.shards[1]!.id },
      ctx(),
    );
    const outcome = (await getOutcome(deps, spec.id))!;
    expect(outcome).toMatchObject({ state: 'failed' });
    expect(outcome.reason).toContain(`the telemetry file ${t.path} changed or vanished`);
  }, 60_000);
});
