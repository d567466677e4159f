/**
 * The build's decisions as pure functions of the core, shared by the fan-in and the
 * CLI: the completion rule, the next-wave decision, the publish facts and the one
 * manifest builder (shared/build/spec.ts, waves.ts, publish.ts,
 * shared/report/build-manifest.ts). No storage: plain inputs, plain outputs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BalanceManifest } from '../../shared/balance/balancer';
import { publishFacts, withRejudged } from '../../shared/build/publish';
import {
  completionOf,
  markersOf,
  roundCompletion,
  type BatchFailure,
  type BatchSummary,
} from '../../shared/build/spec';
import { decideNextWave, type WaveVerdicts } from '../../shared/build/waves';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { testSpec } from '../functions/harness';
import type { AnnotatedRow, Label } from '../../shared/contracts/rows';
import {
  TOOL,
  buildManifest,
  failedManifest,
  judgeSection,
} from '../../shared/report/build-manifest';
import { toJsonl } from '../../shared/util/jsonl';
import type { WaveItem } from '../../shared/waves/planner';
import type { Profile } from '../../shared/report/profile';

const summary = (shardId: string, over: Partial<BatchSummary> = {}): BatchSummary => ({
  buildId: 'b-test',
  shardId,
  rows: 10,
  turns: 10,
  outsideWindow: 0,
  quarantined: 0,
  quarantineByReason: {},
  assembly: { conversations: 5, complete: 5, incomplete: 0, duplicateTurns: 0 },
  samples: 10,
  labelled: 10,
  unlabeled: 0,
  unlabeledByCause: {},
  judgeCalls: 1,
  attempt: 1,
  ...over,
});
const failure = (shardId: string, wave?: number): BatchFailure => ({
  buildId: 'b-test',
  shardId,
  reason: 'judge down',
  attempts: 5,
  samplesLost: 10,
  via: 'retries-exhausted',
  ...(wave ? { wave } : {}),
});

describe('the completion rule', () => {
  const planned = ['s00000', 's00001', 's00002'];

  it('counts only the markers of its round, and only for planned shards', () => {
    const c = completionOf(
      planned,
      [
        { shardId: 's00000', kind: 'done', wave: 0 },
        { shardId: 's00001', kind: 'done', wave: 1 }, // another round
        { shardId: 's00009', kind: 'done', wave: 0 }, // not planned
        { shardId: 's00002', kind: 'failed' }, // no wave: round 0
      ],
      0,
    );
    expect(c).toMatchObject({ planned: 3, done: 1, failed: 1, pending: 1, complete: false });
    expect(c.doneIds).toEqual(['s00000']);
    expect(c.failedIds).toEqual(['s00002']);
    const w1 = completionOf(planned, [{ shardId: 's00001', kind: 'done', wave: 1 }], 1);
    expect(w1).toMatchObject({ done: 1, pending: 2 });
  });

  it('counts a shard with both markers as done', () => {
    const c = completionOf(planned.slice(0, 1), [
      { shardId: 's00000', kind: 'failed' },
      { shardId: 's00000', kind: 'done' },
    ]);
    expect(c).toMatchObject({ done: 1, failed: 0, complete: true, failedIds: [] });
  });

  it('reads marker bodies as their markers (summary = done, failure = failed)', () => {
    const bodies = {
      summaries: [summary('s00000'), summary('s00001', { wave: 2 })],
      failures: [failure('s00002', 2)],
    };
    expect(markersOf(bodies)).toEqual([
      { shardId: 's00000', kind: 'done', wave: 0 },
      { shardId: 's00001', kind: 'done', wave: 2 },
      { shardId: 's00002', kind: 'failed', wave: 2 },
    ]);
    expect(roundCompletion(planned, bodies, 2)).toMatchObject({
      done: 1,
      failed: 1,
      pending: 1,
      doneIds: ['s00001'],
      failedIds: ['s00002'],
    });
    expect(roundCompletion(planned, bodies)).toMatchObject({ done: 1, pending: 2 });
  });
});

describe('decideNextWave', () => {
  const config = parseBalanceConfig({ total: 40, ratio: 0.5, seed: 3 });
  const items: WaveItem[] = Array.from({ length: 300 }, (_, i) => ({
    id: `c${String(i).padStart(4, '0')}#1`,
    stratum: ['A', 'B', 'C'][i % 3]!,
    score: (i % 17) / 17,
  }));
  const shardOf = new Map(items.map((it, i) => [it.id, `s0000${i % 4}`]));
  const truth = (id: string): Label => (Number(id.slice(1, 5)) % 5 < 2 ? 0 : 1);
  const row = (id: string): AnnotatedRow =>
    ({ sampleId: id, id, label: truth(id), text: id }) as unknown as AnnotatedRow;
  const base = { buildId: 'b-test', config, settings: {}, items, shardOf };

  /** Judges each planned wave with the truth until the decision is done. */
  function runToDone(calls = 1) {
    const verdicts: WaveVerdicts = { waves: [], judged: [] };
    const summaries: BatchSummary[] = [];
    const plans = [];
    for (let latest = 0; latest < 20; latest++) {
      const next = decideNextWave({ ...base, latest, verdicts, summaries });
      if (next.kind !== 'judge') return { next, plans };
      plans.push(next.plan);
      const sent = next.groups.flatMap((g) => g.ids);
      verdicts.waves.push({ sent, labelled: sent.map((id) => ({ id, label: truth(id) })) });
      verdicts.judged.push(...sent.map(row));
      summaries.push(summary('s00000', { wave: next.plan.wave, judgeCalls: calls }));
    }
    throw new Error('no end');
  }

  it('plans wave 1 with its ids grouped by shard, shards in order, ids sorted', () => {
    const next = decideNextWave({
      ...base,
      latest: 0,
      verdicts: { waves: [], judged: [] },
      summaries: [],
    });
    expect(next.kind).toBe('judge');
    if (next.kind !== 'judge') return;
    expect(next.plan.wave).toBe(1);
    expect(next.plan.buildId).toBe('b-test');
    const shardIds = next.groups.map((g) => g.shardId);
    expect(shardIds).toEqual([...shardIds].sort());
    for (const g of next.groups) {
      expect(g.ids).toEqual([...g.ids].sort());
      for (const id of g.ids) expect(shardOf.get(id)).toBe(g.shardId);
    }
    expect(next.plan.samples).toBe(next.groups.reduce((a, g) => a + g.ids.length, 0));
    expect(next.plan.shards).toEqual(
      next.groups.map((g) => ({ id: g.shardId, samples: g.ids.length })),
    );
  });

  it('replayed from the verdicts, ends with the planner selection among the judged rows', () => {
    const { next, plans } = runToDone();
    expect(next.kind).toBe('done');
    if (next.kind !== 'done') return;
    expect(plans.map((p) => p.wave)).toEqual(plans.map((_, i) => i + 1));
    expect(next.offered.map((r) => r.sampleId)).toEqual(next.planner.selection().map((s) => s.id));
    const ids = next.judged.map((r) => r.sampleId!);
    expect(ids).toEqual([...ids].sort());
    expect(ids.length).toBe(plans.reduce((a, p) => a + p.samples, 0));
    // Deterministic: the same inputs decide the same thing.
    const again = runToDone();
    expect(again.plans).toEqual(plans);
  });

  it('records the judge requests of each wave from the wave summaries', () => {
    const { next } = runToDone(7);
    if (next.kind !== 'done') throw new Error('not done');
    const report = next.planner.report([]);
    expect(report.waves.length).toBeGreaterThan(0);
    for (const w of report.waves) expect(w.requests).toBe(7);
  });

  it('fails when a planned wave left samples without a verdict', () => {
    const first = decideNextWave({
      ...base,
      latest: 0,
      verdicts: { waves: [], judged: [] },
      summaries: [],
    });
    if (first.kind !== 'judge') throw new Error('expected a wave');
    // Wave 1 is planned but nothing came back from it: not even "sent".
    const next = decideNextWave({
      ...base,
      latest: 1,
      verdicts: { waves: [{ sent: [], labelled: [] }], judged: [] },
      summaries: [],
    });
    expect(next).toEqual({
      kind: 'fail',
      reason: `wave 1 has ${first.plan.samples} sample(s) without a verdict after wave 1`,
    });
  });
});

describe('publishFacts', () => {
  const spec = testSpec({ minJudgedShare: 0.6 });
  const labelledBy = { name: 'signals', kind: 'heuristic' as const, rubricVersion: null };
  const done = [summary('s00000', { samples: 80, labelled: 70 })];
  const failed = [failure('s00001')];
  const round = {
    completion: roundCompletion(['s00000', 's00001'], { summaries: done, failures: failed }),
    done,
    failed,
  };

  it('decides on the judged share and lists the batches in the manifest order', () => {
    const f = publishFacts(spec, round, null, labelledBy);
    expect(f.decision).toMatchObject({ publish: true, samplesLost: 10 });
    expect(f.decision.judgedShare).toBeCloseTo(70 / 90);
    expect(Object.keys(f.sections)).toEqual([
      'build',
      'pipeline',
      'judge',
      'telemetry',
      'redaction',
      'batches',
    ]);
    expect(f.sections.batches).toMatchObject({ planned: 2, done: 1, failed: 1 });
    expect(f.sections.judge).toMatchObject({ samplesJudged: 80, labelled: 70, calls: 1 });
    expect(f.sections.judge).not.toHaveProperty('cost');
    expect(f.sections.pipeline).toEqual({
      name: 'session',
      history: null,
      assembly: done[0]!.assembly,
    });
    expect(
      publishFacts({ ...spec, minJudgedShare: 0.8 }, round, null, labelledBy).decision.publish,
    ).toBe(false);
  });

  it('counts the waves judged share when the build judged in waves', () => {
    const waved = {
      summaries: [summary('s00000', { wave: 1, samples: 10, labelled: 10 })],
      failures: [],
      rejudged: [{ wave: 1, shardId: 's00000', cause: 'are missing' }],
    };
    const f = publishFacts(spec, round, waved, labelledBy);
    expect(f.decision.judgedShare).toBeCloseTo(10 / 20);
    expect(f.sections.batches.waveBatches).toMatchObject({ done: 1, rejudged: waved.rejudged });
    expect(f.sections.judge).toMatchObject({ samplesJudged: 10 });
  });

  it('lists first-round batches judged again last, without touching the sections given', () => {
    const f = publishFacts(spec, round, null, labelledBy);
    const again = withRejudged(f.sections, [{ shardId: 's00000', cause: 'are missing' }]);
    expect(Object.keys(again.batches).at(-1)).toBe('rejudged');
    expect(f.sections.batches).not.toHaveProperty('rejudged');
    expect(withRejudged(f.sections, [])).toBe(f.sections);
  });
});

describe('buildManifest', () => {
  const balance = {
    config: { total: 1 },
    seed: 1,
    selected: { total: 1 },
  } as unknown as BalanceManifest;
  const after = { rows: 1 } as unknown as Profile;

  it('orders the keys: status, tool, command, the sections, waves, the balance, profile, outputs', () => {
    const m = buildManifest({
      status: 'succeeded',
      command: 'build',
      sections: { build: { id: 'b' }, judge: { name: 'j' } },
      waves: { outcome: 'quotas-met' },
      balance,
      profile: { before: after, after },
      outputs: { 'train.jsonl': { sha256: 'x' } },
    });
    expect(Object.keys(m)).toEqual([
      'status',
      'tool',
      'command',
      'build',
      'judge',
      'waves',
      'config',
      'seed',
      'selected',
      'profile',
      'outputs',
    ]);
    expect(m.profile).toEqual({ before: after, after });
  });

  it('leaves out what an input does not have (the CLI: no status, no waves, no profile before)', () => {
    const m = buildManifest({
      command: 'balance',
      sections: { source: 'in.jsonl' },
      balance,
      profile: { before: undefined, after },
      outputs: {},
    });
    expect(JSON.stringify(m)).toBe(
      JSON.stringify({
        tool: TOOL,
        command: 'balance',
        source: 'in.jsonl',
        ...balance,
        profile: { after },
        outputs: {},
      }),
    );
  });

  it('writes a failed build as status, reason, tool, command, the sections and the config', () => {
    const m = failedManifest({
      command: 'build',
      reason: 'too few',
      sections: { build: { id: 'b' } },
      config: parseBalanceConfig({ total: 10 }),
    });
    expect(Object.keys(m)).toEqual(['status', 'reason', 'tool', 'command', 'build', 'config']);
  });

  it('names the version package.json gives', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8'));
    expect(TOOL).toEqual({ name: pkg.name, version: pkg.version });
  });

  it('prices the judge calls only when tokens were used', () => {
    const labelledBy = { name: 'j', kind: 'llm' as const, rubricVersion: '1' };
    const args = {
      name: 'j',
      calls: 2,
      batchSize: 8,
      samplesJudged: 3,
      labelled: 3,
      unlabeled: 0,
      unlabeledByCause: {},
      labelledBy,
    };
    expect(judgeSection({ ...args, usage: null })).not.toHaveProperty('cost');
    const usage = { promptTokens: 10, cachedTokens: 0, completionTokens: 2, estimatedCost: 0.5 };
    const j = judgeSection({ ...args, stats: { calls: 2 }, usage });
    expect(Object.keys(j)).toEqual([
      'name',
      'calls',
      'batchSize',
      'samplesJudged',
      'labelled',
      'unlabeled',
      'unlabeledByCause',
      'stats',
      'labelledBy',
      'cost',
    ]);
    expect(j.cost).toMatchObject({ promptTokens: 10, completionTokens: 2 });
  });
});

describe('toJsonl', () => {
  it('ends every line with a newline, and writes nothing for nothing', () => {
    expect(toJsonl([])).toBe('');
    expect(toJsonl([{ a: 1 }, 2])).toBe('{"a":1}\n2\n');
  });
});
