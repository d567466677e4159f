/**
 * Yield-aware judging in the functions pipeline, on a real Azurite: a scan round,
 * then waves of batches planned by the fan-in. The dataset equals the in-process
 * `run --waves` one byte for byte; every message delivered twice changes nothing;
 * the judge budget ends judging with a clear outcome; a wave batch whose judge keeps
 * failing is recorded failed and its samples count as judged and unlabeled.
 */
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QueueSender } from '../../adapters/storage/queue';
import type { HostEvent } from '../../adapters/local/queue-host';
import { runPipeline } from '../../cli/jobs';
import { getWavePlan, latestWave, listMarkers, readStatus } from '../../functions/lib/build-ops';
import { createDeps, type Deps } from '../../functions/lib/deps';
import { buildPaths, shardCount, type BuildRequest, type BuildSpec } from '../../shared/build/spec';
import { WaveIdsSchema } from '../../shared/build/waves';
import { createSignalsJudge } from '../../shared/judge/signals';
import { failingFor, runBuild, specFor, telemetryFile, uniqueSettings } from './harness';

interface WavesManifest {
  judge: { calls: number; samplesJudged: number; labelled: number; unlabeled: number };
  pipeline: { assembly: { complete: number } };
  selected: { total: number; byLabel: Record<string, number> };
  batches: {
    judgedShare: number;
    waveBatches: {
      done: number;
      failed: number;
      failedBatches: { wave: number; shardId: string; samplesLost: number }[];
    };
  };
  waves: {
    outcome: string;
    judged: number;
    waves: { wave: number; judged: number; requests: number }[];
    strata: { label: number; stratum: string; quota: number; delivered: number }[];
  };
}

const SETTINGS = { SFT_SHARD_BYTES: String(1 << 20) };
let input: { dir: string; path: string };
let size: number;

beforeAll(async () => {
  input = await telemetryFile(4_000, 17);
  size = (await stat(input.path)).size;
});

async function build(
  id: string,
  request: BuildRequest,
  opts: { deps?: Deps; events?: HostEvent[] } = {},
) {
  const deps = opts.deps ?? createDeps(uniqueSettings(SETTINGS));
  // The wave planner's quotas assume exact dedup only: near-dedup off, the counts are the point.
  const spec = specFor(
    deps,
    id,
    { nearDedup: false, ...request },
    { kind: 'file', path: input.path },
  );
  const outcome = await runBuild(deps, spec, {
    timeoutMs: 120_000,
    ...(opts.events ? { events: opts.events } : {}),
  });
  const p = buildPaths(id);
  const manifestBuf = await deps.store.get(p.manifest);
  const manifest = JSON.parse(manifestBuf!.toString('utf8')) as WavesManifest;
  return { deps, spec, outcome, manifest, p, train: await deps.store.get(p.train) };
}

/** The in-process `run --waves` of a build's spec, with the same (signals) judge. */
async function inProcess(spec: BuildSpec) {
  const out = await mkdtemp(join(tmpdir(), 'sftb-waves-inproc-'));
  await runPipeline(input.path, out, spec.config, {
    pipeline: spec.pipeline,
    history: spec.history,
    judge: createSignalsJudge({
      complexity: spec.config.complexity,
      reasoningModels: spec.config.reasoningModels,
    }),
    batchSize: spec.judge.batchSize,
    quiet: true,
    waves: spec.waves!,
  });
  return {
    manifest: JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as WavesManifest,
    train: await readFile(join(out, 'train.jsonl')),
  };
}

describe('a wave-judged build', () => {
  let r: Awaited<ReturnType<typeof build>>;
  beforeAll(async () => {
    r = await build('waves-main', { total: 800, waves: true });
  }, 150_000);

  it('publishes a dataset byte-identical to the in-process run --waves', async () => {
    expect(r.outcome.state).toBe('succeeded');
    const inproc = await inProcess(r.spec);
    expect(r.train!.equals(inproc.train)).toBe(true);
    // The same waves: same samples per wave, same outcome, same delivered strata.
    expect(r.manifest.waves.waves.map((w) => w.judged)).toEqual(
      inproc.manifest.waves.waves.map((w) => w.judged),
    );
    expect(r.manifest.waves.outcome).toBe(inproc.manifest.waves.outcome);
    expect(r.manifest.waves.strata).toEqual(inproc.manifest.waves.strata);
  }, 60_000);

  it('judges in several waves, far fewer samples than the source holds, every quota met', () => {
    const m = r.manifest;
    expect(m.waves.outcome).toBe('quotas-met');
    expect(m.waves.waves.length).toBeGreaterThanOrEqual(2);
    expect(m.selected.total).toBe(800);
    expect(m.selected.byLabel).toEqual({ '0': 400, '1': 400 });
    for (const s of m.waves.strata) expect(s.delivered).toBe(s.quota);
    const judged = m.waves.waves.reduce((a, w) => a + w.judged, 0);
    expect(m.judge.samplesJudged).toBe(judged);
    expect(m.waves.judged).toBe(judged);
    expect(judged).toBeLessThan(m.pipeline.assembly.complete / 2);
    expect(judged / m.selected.total).toBeLessThan(1.3);
    // Calls per wave are the wave batches' judge calls.
    expect(m.waves.waves.reduce((a, w) => a + w.requests, 0)).toBe(m.judge.calls);
    expect(m.batches.judgedShare).toBe(1);
  });

  it('keeps one plan, one id list per batch and one marker per batch for each wave', async () => {
    const { deps, p } = r;
    const waves = await latestWave(deps, 'waves-main');
    expect(waves).toBe(r.manifest.waves.waves.length);
    const seen = new Set<string>();
    for (let w = 1; w <= waves; w++) {
      const plan = (await getWavePlan(deps, 'waves-main', w))!;
      expect(plan.samples).toBe(r.manifest.waves.waves[w - 1]!.judged);
      const markers = await listMarkers(deps, 'waves-main', w);
      expect(markers.map((m) => `${m.shardId}:${m.kind}`).sort()).toEqual(
        plan.shards.map((s) => `${s.id}:done`).sort(),
      );
      for (const s of plan.shards) {
        const ids = WaveIdsSchema.parse(
          JSON.parse((await deps.store.get(p.waveIds(w, s.id)))!.toString('utf8')),
        );
        expect(ids.length).toBe(s.samples);
        for (const id of ids) {
          expect(seen.has(id), `${id} judged in two waves`).toBe(false);
          seen.add(id);
        }
      }
      expect(await deps.store.exists(p.waveQueued(w))).toBe(true);
    }
    expect(seen.size).toBe(r.manifest.judge.samplesJudged);
  });

  it('reports the waves in its status', async () => {
    const status = (await readStatus(r.deps, 'waves-main'))!;
    expect(status.state).toBe('succeeded');
    expect(status.waves?.wave).toBe(r.manifest.waves.waves.length);
    expect(status.waves?.judged).toBe(r.manifest.judge.samplesJudged);
    expect(status.waves?.batches.pending).toBe(0);
    expect(status.counts.labelled).toBe(r.manifest.judge.labelled);
  });

  it('gives the same bytes when every message is delivered twice', async () => {
    const base = createDeps(uniqueSettings(SETTINGS));
    const doubled: QueueSender = {
      async send(queue, message, opts) {
        await base.queues.send(queue, message, opts);
        await base.queues.send(queue, message, opts);
      },
    };
    const twice = await build(
      'waves-main',
      { total: 800, waves: true },
      { deps: { ...base, queues: doubled } },
    );
    expect(twice.train!.equals(r.train!)).toBe(true);
    expect(
      (await twice.deps.store.get(twice.p.manifest))!.equals(
        (await r.deps.store.get(r.p.manifest))!,
      ),
    ).toBe(true);
  }, 150_000);
});

describe('a wave-judged build of the conversation pipeline', () => {
  it('judges turns with their history and gives the in-process bytes', async () => {
    const { spec, outcome, manifest, train } = await build('waves-conv', {
      pipeline: 'conversation',
      total: 1200,
      waves: true,
    });
    expect(outcome.state).toBe('succeeded');
    expect(manifest.waves.outcome).toBe('quotas-met');
    expect(manifest.waves.waves.length).toBeGreaterThanOrEqual(2);
    const inproc = await inProcess(spec);
    expect(train!.equals(inproc.train)).toBe(true);
    // Later turns carry history: the conversation filter kept every turn they need.
    const rows = train!
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { turnIndex: number; messages: unknown[] });
    expect(rows.some((x) => x.turnIndex > 1 && x.messages.length > 1)).toBe(true);
  }, 150_000);
});

describe('the judge budget of a wave-judged build', () => {
  it('stops judging at the budget and balances what was judged, saying so', async () => {
    const { outcome, manifest } = await build('waves-budget', {
      total: 800,
      waves: { judgeBudget: 700 },
    });
    expect(outcome.state).toBe('succeeded');
    expect(manifest.waves.outcome).toBe('budget-exhausted');
    expect(manifest.judge.samplesJudged).toBe(700);
    expect(manifest.waves.waves.length).toBeGreaterThanOrEqual(2);
    // Shrink keeps the ratio exact below the target.
    expect(manifest.selected.total).toBeLessThan(800);
    expect(manifest.selected.byLabel['0']).toBe(manifest.selected.byLabel['1']);
  }, 150_000);
});

describe('a wave batch whose judge keeps failing', () => {
  it('is recorded failed, its samples judged and unlabeled, and the quotas met from the rest', async () => {
    const settings = uniqueSettings({ ...SETTINGS, SFT_MIN_JUDGED_SHARE: '0.5' });
    const shards = shardCount(size, settings.shardBytes, settings.maxShards);
    expect(shards).toBeGreaterThanOrEqual(3);
    const deps: Deps = createDeps(settings, { judgeFor: failingFor('s00001', () => deps) });
    const { outcome, manifest } = await build('waves-flaky', { total: 800, waves: true }, { deps });
    expect(outcome.state).toBe('succeeded');
    const failed = manifest.batches.waveBatches.failedBatches;
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.every((f) => f.shardId === 's00001')).toBe(true);
    // Every wave that sent s00001 samples lost them; the planner moved on without them.
    const lost = failed.reduce((a, f) => a + f.samplesLost, 0);
    expect(lost).toBeGreaterThan(0);
    expect(manifest.judge.samplesJudged + lost).toBe(manifest.waves.judged);
    expect(manifest.batches.judgedShare).toBeLessThan(1);
    expect(manifest.waves.outcome).toBe('quotas-met');
    expect(manifest.selected.total).toBe(800);
  }, 240_000);
});
