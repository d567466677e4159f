/**
 * Depth never crashes anything (issue 13, item 1): a row whose extra field nests
 * 100,000 levels deep, the rest of the row valid, is quarantined `too_deep` (counted,
 * its raw text redacted) by `run --in-process`, `annotate` and the Functions build,
 * and every other row is kept. And a poisoned shard whose samples cannot be counted
 * fails the build (unknown is not 0) instead of letting it report success.
 */
import { readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cmdAnnotate } from '../../cli/annotate';
import { runPipeline } from '../../cli/jobs';
import { getOutcome, getPlan, startBuild } from '../../functions/lib/build-ops';
import { createDeps } from '../../functions/lib/deps';
import { createFanin } from '../../functions/fan-in';
import { createJudgeBatch } from '../../functions/judge-batch';
import { judgeFor } from '../../functions/lib/judges';
import { createPlanBuild } from '../../functions/plan-build';
import { createShardPoison } from '../../functions/stage-poison';
import { createTelemetrySource, selectedLines } from '../../adapters/source/telemetry';
import { buildPaths } from '../../shared/build/spec';
import { parseTelemetryLine } from '../../shared/build/batch';
import { loadSourceSettings } from '../../shared/source/settings';
import { runBuild, specFor, telemetryFile, uniqueSettings } from '../functions/harness';

const DEPTH = 100_000;
const SECRET = 'deep.owner@example.com';

/** A valid turn of its own conversation, with a metadata field DEPTH levels deep. */
const deepLine = (timestamp = '2026-11-01T10:00:00Z') =>
  `{"conversationId":"deep-1","turnIndex":1,"turnCount":1,"userMessage":"mail ${SECRET}",` +
  `"model":"gpt-4o","numRequests":1,"turnDurationMs":10,"promptTokenDelta":5,"tools":[],` +
  `"timestamp":"${timestamp}","meta":${'['.repeat(DEPTH)}"x"${']'.repeat(DEPTH)}}`;

const ctx = () =>
  new InvocationContext({
    invocationId: 'deep',
    functionName: 'deep',
    triggerMetadata: { dequeueCount: 6 },
  });

const linesOf = (text: string) => text.split('\n').filter((l) => l.length > 0);

describe('a row nested 100,000 levels deep', () => {
  beforeEach(() => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => vi.restoreAllMocks());

  it('is quarantined too_deep by the in-process run; the other rows build as without it', async () => {
    const clean = await telemetryFile(120, 7);
    const t = await telemetryFile(120, 7, [deepLine()]);
    const run = async (path: string, out: string) => {
      const spec = specFor(
        createDeps(uniqueSettings()),
        'x',
        { total: 60 },
        { kind: 'file', path },
      );
      return runPipeline(path, out, spec.config, {
        pipeline: spec.pipeline,
        history: spec.history,
        judge: judgeFor(spec),
        batchSize: spec.judge.batchSize,
        quiet: true,
      });
    };
    const job = await run(t.path, join(t.dir, 'out'));
    expect(job.manifest.quarantine).toMatchObject({ total: 1, byReason: { too_deep: 1 } });
    const q = linesOf(await readFile(join(t.dir, 'out', 'quarantine.jsonl'), 'utf8'));
    expect(q).toHaveLength(1);
    expect(JSON.parse(q[0]!)).toMatchObject({ reason: 'too_deep', field: 'meta' });
    expect(q[0]).not.toContain(SECRET);
    expect(q[0]).toContain('[EMAIL]');
    await run(clean.path, join(clean.dir, 'out'));
    expect(await readFile(join(t.dir, 'out', 'train.jsonl'), 'utf8')).toBe(
      await readFile(join(clean.dir, 'out', 'train.jsonl'), 'utf8'),
    );
  }, 60_000);

  it('is counted as an invalid line by annotate, which judges the rest', async () => {
    const t = await telemetryFile(40, 8, [deepLine()]);
    const out = join(t.dir, 'annotated.jsonl');
    expect(await cmdAnnotate(['--input', t.path, '--out', out, '-q'])).toBe(0);
    const summary = JSON.parse(await readFile(join(t.dir, 'annotated.judge.json'), 'utf8'));
    expect(summary.input.invalidLines).toBe(1);
    expect(linesOf(await readFile(out, 'utf8')).length).toBe(summary.input.samples);
    expect(summary.input.samples).toBeGreaterThan(0);
  }, 60_000);

  it('is quarantined too_deep by a Functions build, which succeeds with nothing lost', async () => {
    const t = await telemetryFile(150, 9, [deepLine()]);
    const deps = createDeps(uniqueSettings());
    const spec = specFor(deps, 'deep-row', { total: 60 }, { kind: 'file', path: t.path });
    const outcome = await runBuild(deps, spec, { timeoutMs: 60_000 });
    expect(outcome).toMatchObject({ state: 'succeeded', samplesLost: 0 });
    const manifest = JSON.parse((await deps.store.get(buildPaths(spec.id).manifest))!.toString());
    expect(manifest.quarantine).toMatchObject({ total: 1, byReason: { too_deep: 1 } });
    expect(manifest.batches.failed).toBe(0);
    const q = (await deps.store.get(buildPaths(spec.id).datasetQuarantine))!.toString();
    expect(q).toContain('"too_deep"');
    expect(q).not.toContain(SECRET);
  }, 90_000);
});

describe('a source (the plan step of a Kusto or file selection)', () => {
  it('passes a row too deep to stringify on as its raw text, without crashing', async () => {
    const t = await telemetryFile(60, 5, [deepLine('2026-10-15T10:00:00Z')]);
    const settings = loadSourceSettings({
      SFT_TELEMETRY_FILE: `file:${t.path}`,
      SFT_WINDOW_START: '2026-10-01T00:00:00Z',
      SFT_WINDOW_END: '2026-11-01T00:00:00Z',
    });
    const sel = selectedLines(
      createTelemetrySource(settings, { credential: null }),
      settings.selection,
    );
    const lines: string[] = [];
    for await (const batch of sel.lines()) lines.push(...batch.map((l) => l.line));
    const deep = lines.filter((l) => l.includes('deep-1'));
    expect(deep).toHaveLength(1);
    // Cut to 500 characters by the source: the batch quarantines it (invalid_json), counted.
    expect(parseTelemetryLine(deep[0]!, 1, 32_000)).toMatchObject({
      quarantine: { reason: 'invalid_json' },
    });
  });
});

describe('a poisoned shard whose samples cannot be counted', () => {
  it('fails the build with the reason (unknown loss is not 0), not succeeds', async () => {
    const t = await telemetryFile(300, 61);
    // A whole-second mtime, so the test can put it back exactly.
    const planned = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    await utimes(t.path, planned, planned);
    const deps = createDeps(uniqueSettings({ SFT_SHARD_BYTES: '16384' }));
    const id = 'poison-uncounted';
    const spec = specFor(deps, id, { total: 120 }, { kind: 'file', path: t.path });
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: id }, ctx());
    const plan = (await getPlan(deps, id))!;
    expect(plan.shards.length).toBeGreaterThan(3);
    const [poisoned, ...rest] = plan.shards.map((s) => s.id);
    // The source reads as changed when the poison handler looks: nothing to count from.
    await utimes(t.path, planned, new Date());
    await createShardPoison(deps)({ kind: 'shard', buildId: id, shardId: poisoned }, ctx());
    await utimes(t.path, planned, planned);
    for (const shardId of rest)
      await createJudgeBatch(deps)({ kind: 'shard', buildId: id, shardId }, ctx());
    const failed = JSON.parse(
      (await deps.store.get(buildPaths(id).batch(poisoned!).failed))!.toString(),
    );
    expect(failed).toMatchObject({ samplesLost: null, via: 'poison-queue' });
    expect(failed.reason).toMatch(/could not be counted/);

    await createFanin(deps)({ kind: 'fanin', buildId: id }, ctx());
    const outcome = (await getOutcome(deps, id))!;
    expect(outcome.state).toBe('failed');
    expect(outcome.reason).toMatch(/1 failed batch\(es\) held an unknown number of samples/);
    const manifest = JSON.parse((await deps.store.get(buildPaths(id).manifest))!.toString());
    expect(manifest).toMatchObject({ status: 'failed', batches: { batchesWithUnknownLoss: 1 } });
    expect(await deps.store.get(buildPaths(id).train)).toBeNull();
  }, 90_000);
});

// Keeps the generated fixture honest: the deep line is valid JSON of that depth.
it('the deep line parses (JSON.parse is not recursive) but cannot be stringified back', () => {
  const v = JSON.parse(deepLine()) as Record<string, unknown>;
  expect(v.conversationId).toBe('deep-1');
  expect(() => JSON.stringify(v)).toThrow(RangeError);
});
