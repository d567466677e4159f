/**
 * Limits that end a build rather than let one part grow without bound: a source
 * larger than the shards can hold fails at the plan step with a reason that names the
 * settings to raise (a judge batch reads its whole shard, so an oversized shard would
 * be a memory fault later). The other limits are tested where they live: message
 * size (test/contracts/contracts.test.ts, test/trust/source-rows.test.ts), history
 * window (test/samples/samples.test.ts), HTTP body size and samples per build
 * (test/functions/http.test.ts, test/trust/http.test.ts).
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvocationContext } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { getOutcome, getPlan, startBuild } from '../../functions/lib/build-ops';
import { createPlanBuild } from '../../functions/plan-build';
import { runPipeline } from '../../cli/jobs';
import { runLocal } from '../../cli/local-runner';
import { judgeFor } from '../../functions/lib/judges';
import {
  MAX_LINE_BYTES,
  MAX_SHARD_OVERSIZE,
  buildPaths,
  sourceTooLarge,
} from '../../shared/build/spec';
import { turn } from '../support/rows';
import { runBuild, specFor, telemetryFile, testDeps } from '../functions/harness';

const ctx = () =>
  new InvocationContext({ invocationId: 'l', functionName: 'plan', triggerMetadata: {} });

describe('the shard limit', () => {
  it('admits a source up to maxShards × shardBytes × the oversize factor, and no more', () => {
    const limit = 1024 * 3 * MAX_SHARD_OVERSIZE;
    expect(sourceTooLarge(limit, 1024, 3)).toBeNull();
    expect(sourceTooLarge(limit + 1, 1024, 3)).toMatch(/raise SFT_MAX_SHARDS or SFT_SHARD_BYTES/);
  });

  it('fails a build whose source is too large at the plan step, writing no shard', async () => {
    const t = await telemetryFile(40, 81);
    const { size } = await stat(t.path);
    const deps = testDeps({ SFT_SHARD_BYTES: '1024', SFT_MAX_SHARDS: '2' });
    expect(size).toBeGreaterThan(1024 * 2 * MAX_SHARD_OVERSIZE);
    const spec = specFor(deps, 'too-large', {}, { kind: 'file', path: t.path });
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx());
    const outcome = await getOutcome(deps, spec.id);
    expect(outcome).toMatchObject({ state: 'failed', stage: 'plan' });
    expect(outcome!.reason).toContain(`the source is ${size} bytes`);
    expect(await getPlan(deps, spec.id)).toBeNull();
    expect(await deps.store.list(`builds/${spec.id}/shards/`)).toEqual([]);
  });

  it('plans a source within the limit into at most maxShards shards', async () => {
    const t = await telemetryFile(40, 81);
    const deps = testDeps({ SFT_SHARD_BYTES: '65536', SFT_MAX_SHARDS: '1' });
    const spec = specFor(deps, 'fits', {}, { kind: 'file', path: t.path });
    await startBuild(deps, spec);
    await createPlanBuild(deps)({ kind: 'plan', buildId: spec.id }, ctx());
    expect(await getOutcome(deps, spec.id)).toBeNull();
    expect((await getPlan(deps, spec.id))!.shards).toHaveLength(1);
  });
});

describe('the line limit', () => {
  it('quarantines a runaway line as line_too_long at its line number, in a build and in run', async () => {
    const t = await telemetryFile(120, 83);
    const lines = (await readFile(t.path, 'utf8')).trimEnd().split('\n');
    const huge = JSON.stringify(
      turn({ conversationId: 'huge', pasted: 'log '.repeat(MAX_LINE_BYTES / 2) }),
    );
    lines.splice(10, 0, huge);
    lines.splice(20, 0, 'x'.repeat(MAX_LINE_BYTES * 3));
    const path = join(t.dir, 'long.jsonl');
    await writeFile(path, lines.join('\n') + '\n');

    const deps = testDeps();
    const spec = specFor(deps, 'long-lines', { total: 60 }, { kind: 'file', path });
    expect(await runBuild(deps, spec)).toMatchObject({ state: 'succeeded' });
    const q = (await deps.store.get(buildPaths(spec.id).datasetQuarantine))!.toString();
    const records = q
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; reason: string; raw: string });
    expect(records.map((r) => [r.line, r.reason])).toEqual([
      [11, 'line_too_long'],
      [21, 'line_too_long'],
    ]);
    expect(records.every((r) => r.raw.length <= 500)).toBe(true);
    // Its size, though only the first MAX_LINE_BYTES + 1 bytes of it were kept.
    expect(records.map((r) => (r as unknown as { detail: string }).detail)).toEqual([
      `line is ${Buffer.byteLength(huge)} bytes, over the limit of ${MAX_LINE_BYTES} bytes`,
      `line is ${MAX_LINE_BYTES * 3} bytes, over the limit of ${MAX_LINE_BYTES} bytes`,
    ]);

    await runPipeline(path, join(t.dir, 'inproc'), spec.config, {
      pipeline: spec.pipeline,
      history: spec.history,
      judge: judgeFor(spec),
      batchSize: spec.judge.batchSize,
      quiet: true,
    });
    expect(await readFile(join(t.dir, 'inproc', 'quarantine.jsonl'), 'utf8')).toBe(q);
    expect((await deps.store.get(buildPaths(spec.id).train))!.toString()).toBe(
      await readFile(join(t.dir, 'inproc', 'train.jsonl'), 'utf8'),
    );
  }, 60_000);
});

/**
 * Issue 13 item 12: a 50 MB line with no newline (the whole input) was reported as
 * "0 valid turns", and bytes that are not UTF-8 became U+FFFD without a word.
 */
describe('a runaway line and invalid UTF-8 in run --in-process', () => {
  const opts = (spec: ReturnType<typeof specFor>) => ({
    pipeline: spec.pipeline,
    history: spec.history,
    judge: judgeFor(spec),
    batchSize: spec.judge.batchSize,
    quiet: true,
  });

  it('names the line over the limit, with its number and size, when nothing else is left', async () => {
    const t = await telemetryFile(10, 85);
    const path = join(t.dir, 'one-line.jsonl');
    const size = 50 * MAX_LINE_BYTES;
    await writeFile(path, '{"conversationId":"' + 'x'.repeat(size - 20));
    const spec = specFor(testDeps(), 'runaway', { total: 60 }, { kind: 'file', path });
    const out = join(t.dir, 'runaway-out');
    const err = await runPipeline(path, out, spec.config, opts(spec)).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('NoValidRowsError');
    expect(err?.message).toContain('quarantined 1 line_too_long');
    const q = JSON.parse(await readFile(join(out, 'quarantine.jsonl'), 'utf8')) as {
      line: number;
      reason: string;
      detail: string;
      raw: string;
    };
    expect(q).toMatchObject({
      line: 1,
      reason: 'line_too_long',
      detail: `line is ${size - 1} bytes, over the limit of ${MAX_LINE_BYTES} bytes`,
    });
    expect(q.raw.length).toBeLessThanOrEqual(500);
  }, 60_000);

  it('on the local runner: the failure says a line was quarantined', async () => {
    const t = await telemetryFile(10, 86);
    const path = join(t.dir, 'one-line-runner.jsonl');
    const size = 20 * MAX_LINE_BYTES;
    await writeFile(path, '{"conversationId":"' + 'x'.repeat(size - 20));
    const spec = specFor(testDeps(), 'runaway-runner', { total: 60 }, { kind: 'file', path });
    const err = await runLocal({
      input: path,
      out: join(t.dir, 'runaway-runner-out'),
      pipeline: spec.pipeline,
      history: spec.history,
      config: spec.config,
      quiet: true,
      env: { SFT_SHARD_BYTES: String(8 * MAX_LINE_BYTES) },
    }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/no sample was judged; 1 line\(s\) quarantined/);
    // The failed build still hands over why the line was set aside (it did not before).
    const out = join(t.dir, 'runaway-runner-out');
    expect(err?.message).toContain(join(out, 'quarantine.jsonl'));
    const q = (await readFile(join(out, 'quarantine.jsonl'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; reason: string; detail: string });
    expect(q).toEqual([
      expect.objectContaining({
        line: 1,
        reason: 'line_too_long',
        detail: `line is ${size - 1} bytes, over the limit of ${MAX_LINE_BYTES} bytes`,
      }),
    ]);
    const status = JSON.parse(await readFile(join(out, 'status.json'), 'utf8')) as {
      outcome: { state: string };
    };
    expect(status.outcome.state).toBe('failed');
  }, 120_000);

  it('keeps rows with invalid UTF-8 and counts them in the manifest', async () => {
    const t = await telemetryFile(120, 87);
    const lines = (await readFile(t.path, 'utf8')).trimEnd().split('\n');
    const bad = new Set([3, 17, 40]);
    const bytes = Buffer.concat(
      lines.map((l, i) =>
        Buffer.concat([
          // A stray Latin-1 byte inside the user's text: still valid JSON.
          bad.has(i)
            ? Buffer.from(l.replace('"userMessage":"', '"userMessage":"\u0000'), 'utf8')
            : Buffer.from(l),
          Buffer.from('\n'),
        ]),
      ),
    );
    // Replace each planted NUL with 0xE9 (é in Latin-1, invalid alone in UTF-8).
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) bytes[i] = 0xe9;
    const path = join(t.dir, 'latin1.jsonl');
    await writeFile(path, bytes);
    const spec = specFor(testDeps(), 'latin1', { total: 60 }, { kind: 'file', path });
    const job = await runPipeline(path, join(t.dir, 'latin1-out'), spec.config, opts(spec));
    expect(job.manifest).toMatchObject({ telemetry: { invalidUtf8Lines: 3 } });
    expect((job.manifest as { quarantine: { total: number } }).quarantine.total).toBe(0);
  }, 60_000);
});
