/**
 * The Kusto source wired into the Functions build: a full session build with
 * SFT_SOURCE=kusto:sft_session_router_first_turns, served by a local Kusto v2
 * endpoint that evaluates the query's selection (shared/source/selection.ts, the KQL's
 * TypeScript mirror) over generated telemetry, through the real plan step, queues
 * and blobs (Azurite). The dataset must equal the in-process `run` of the same
 * telemetry file.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runPipeline } from '../../cli/jobs';
import { getPlan } from '../../functions/lib/build-ops';
import { judgeFor } from '../../functions/lib/judges';
import { buildPaths } from '../../shared/build/spec';
import { runBuild, specFor, telemetryFile, testDeps } from '../functions/harness';
import { startV2Server, type V2Server } from '../kusto/v2-server';
import { emulate } from '../kusto/emulator';

describe('a session build reading Kusto (SFT_SOURCE=kusto:...)', () => {
  let server: V2Server;
  let t: { dir: string; path: string };

  beforeAll(async () => {
    t = await telemetryFile(250, 9);
    const rows = (await readFile(t.path, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    server = await startV2Server(emulate(rows));
    vi.stubEnv('SFT_KUSTO_CLUSTER_URI', server.url);
    vi.stubEnv('SFT_KUSTO_DATABASE', 'telemetry');
    vi.stubEnv('SFT_WINDOW_START', '2026-10-01T00:00:00Z');
    vi.stubEnv('SFT_WINDOW_END', '2026-11-01T00:00:00Z');
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await server.close();
  });

  it('publishes the dataset the in-process run of the same telemetry gives', async () => {
    const deps = testDeps();
    await deps.store.ensureContainer();
    const spec = specFor(
      deps,
      'kusto-session',
      { pipeline: 'session', total: 80, ratio: 0.6 },
      { kind: 'kusto', path: 'sft_session_router_first_turns' },
    );
    const outcome = await runBuild(deps, spec);
    expect(outcome).toMatchObject({ state: 'succeeded', stage: 'fanin', samplesLost: 0 });
    // The plan step asked Kusto: counts first (every shard), then each Kusto shard with whole conversations.
    const params = server.requests.map((r) => r.body.properties!.Parameters!);
    expect(params[0]).toMatchObject({ shard: 'long(-1)', allTurns: 'bool(true)' });
    expect(params.some((x) => x.shard === 'long(0)')).toBe(true);

    const p = buildPaths(spec.id);
    expect((await getPlan(deps, spec.id))!.shards.length).toBeGreaterThanOrEqual(1);
    const train = (await deps.store.get(p.train))!.toString('utf8');
    await runPipeline(t.path, join(t.dir, 'inproc'), spec.config, {
      pipeline: 'session',
      history: spec.history,
      judge: judgeFor(spec),
      batchSize: spec.judge.batchSize,
      quiet: true,
    });
    expect(train.length).toBeGreaterThan(0);
    // Kusto returns the table's declared columns only (the queries project them), so the
    // generator's extra fields (clientVersion, language) are not carried into metadata;
    // everything else is byte-identical.
    const inproc = await readFile(join(t.dir, 'inproc', 'train.jsonl'), 'utf8');
    const withoutExtras = inproc
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const row = JSON.parse(line) as { metadata: Record<string, unknown> };
        expect(Object.keys(row.metadata)).toEqual(
          expect.arrayContaining(['clientVersion', 'language']),
        );
        delete row.metadata.clientVersion;
        delete row.metadata.language;
        return JSON.stringify(row);
      });
    expect(train.split('\n').filter(Boolean)).toEqual(withoutExtras);
  });
});

describe('a Kusto source that fails permanently (issue 14: retry by type)', () => {
  it('a rejected query fails the build at the plan step with the reason, once, not by retrying', async () => {
    const server = await startV2Server(() => ({
      status: 400,
      body: {
        error: { code: 'General_BadRequest', message: 'bad', '@message': 'SEM0100: no table' },
      },
    }));
    vi.stubEnv('SFT_KUSTO_CLUSTER_URI', server.url);
    vi.stubEnv('SFT_KUSTO_DATABASE', 'telemetry');
    vi.stubEnv('SFT_WINDOW_START', '2026-10-01T00:00:00Z');
    vi.stubEnv('SFT_WINDOW_END', '2026-11-01T00:00:00Z');
    try {
      const deps = testDeps();
      await deps.store.ensureContainer();
      const spec = specFor(
        deps,
        'kusto-rejected',
        { pipeline: 'session', total: 80, ratio: 0.6 },
        { kind: 'kusto', path: 'sft_session_router_first_turns' },
      );
      const outcome = await runBuild(deps, spec);
      expect(outcome).toMatchObject({ state: 'failed', stage: 'plan' });
      // Typed as what it is (no longer disguised as a missing file), with the query's name.
      expect(outcome.reason).toMatch(/^KustoSourceError: kusto:sft_session_router_first_turns: /);
      expect(outcome.reason).toContain('SourceQueryError');
      // Permanent: one delivery asked Kusto once (the count query), no redelivery asked again.
      expect(server.requests).toHaveLength(1);
    } finally {
      vi.unstubAllEnvs();
      await server.close();
    }
  });
});
