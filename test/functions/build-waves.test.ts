/**
 * The pure parts of a wave-judged build (shared/build-waves.ts and the wave-aware
 * bits of shared/build.ts): blob names, marker parsing, item lines, the verdicts the
 * planner replays, the request's wave settings and the status of a build in waves.
 */
import { describe, expect, it } from 'vitest';
import {
  BuildRequestSchema,
  buildPaths,
  parseMarkerName,
  reduceStatus,
  waveSettingsOf,
  type BatchFailure,
  type BatchSummary,
} from '../../shared/build/spec';
import { collectVerdicts, idsByShard, itemLine, parseItemLine } from '../../shared/build/waves';
import { conversationOfSampleId, prepareShard } from '../../shared/build/batch';
import { generateTelemetry } from '../../shared/source/generate';
import { shardLine } from '../../shared/build/spec';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { loadSettings } from '../../shared/build/settings';
import { WaveSettingsSchema } from '../../shared/waves/planner';
import { testSpec } from './harness';

describe('blob names of a wave-judged build', () => {
  const p = buildPaths('b-w');

  it('keeps round 0 under the names a build judging everything uses', () => {
    expect(p.batch('s00003')).toEqual({
      rows: p.rows('s00003'),
      quarantine: p.quarantine('s00003'),
      unlabeled: p.unlabeled('s00003'),
      done: p.done('s00003'),
      failed: p.failed('s00003'),
    });
  });

  it('puts each wave in its own folder, and parses every marker back', () => {
    const w = p.batch('s00003', 2);
    expect(w.done).toBe('builds/b-w/status/w002/s00003.done.json');
    expect(w.rows).toBe('builds/b-w/results/w002/s00003.jsonl');
    expect(p.waveIds(12, 's00001')).toBe('builds/b-w/waves/w012/s00001.json');
    expect(parseMarkerName(w.done)).toEqual({ shardId: 's00003', kind: 'done', wave: 2 });
    expect(parseMarkerName(w.failed)).toEqual({ shardId: 's00003', kind: 'failed', wave: 2 });
    expect(parseMarkerName(p.done('s00004'))).toEqual({ shardId: 's00004', kind: 'done', wave: 0 });
    for (const other of [
      w.rows,
      p.wavePlan(1),
      p.waveQueued(1),
      'builds/b-w/status/wx/s00001.done.json',
      'builds/b-w/status/s1.done.json',
    ])
      expect(parseMarkerName(other)).toBeNull();
  });
});

describe('planner item lines', () => {
  it('round-trip ids, strata, scores (exactly) and groups', () => {
    const items = [
      { id: 'c1:1', stratum: 'A', score: 0.1 + 0.2 },
      { id: 'c"2:1', stratum: 'B|mid', score: -1e-300, group: '00ff00ff00ff00ff' },
      { id: 'c3:1', stratum: 'C', score: 12345.678901234567 },
    ];
    for (const it of items) expect(parseItemLine(itemLine(it))).toEqual(it);
  });

  it.each([
    ['not JSON', '[1,'],
    ['an object', '{"id":"x"}'],
    ['a number id', '[1,"A",0.5]'],
    ['a string score', '["x","A","0.5"]'],
    ['a non-string group', '["x","A",0.5,7]'],
    ['too long', '["x","A",0.5,"g","h"]'],
  ])('names %s as not an item', (_name, line) => {
    expect(typeof parseItemLine(line)).toBe('string');
  });
});

describe('idsByShard', () => {
  it('groups ids by shard, shards in order and ids sorted', () => {
    const shard: Record<string, string> = { b: 's00001', a: 's00001', c: 's00000', d: 's00002' };
    expect(idsByShard(['d', 'b', 'c', 'a'], (id) => shard[id]!)).toEqual([
      { shardId: 's00000', ids: ['c'] },
      { shardId: 's00001', ids: ['a', 'b'] },
      { shardId: 's00002', ids: ['d'] },
    ]);
  });
});

describe('collectVerdicts', () => {
  it('labels what the batches returned and counts every other sent id as unlabeled', () => {
    const v = collectVerdicts([
      {
        sent: ['a', 'b', 'c'],
        labelled: [
          { id: 'a', label: 0 },
          { id: 'c', label: 1 },
          { id: 'zz', label: 1 }, // never sent: ignored
        ],
      },
      { sent: ['d', 'e'], labelled: [{ id: 'e', label: 0 }] },
    ]);
    expect(Object.fromEntries(v)).toEqual({ a: 0, b: null, c: 1, d: null, e: 0 });
    expect(v.has('zz')).toBe(false);
  });
});

describe('the wave settings of a build', () => {
  const defaults = { maxJudged: 5000, explore: 0.5 };

  it('follow the request over the configured default', () => {
    expect(waveSettingsOf(undefined, undefined)).toBeUndefined();
    expect(waveSettingsOf(false, defaults)).toBeUndefined();
    expect(waveSettingsOf(undefined, defaults)).toEqual(WaveSettingsSchema.parse(defaults));
    expect(waveSettingsOf(true, undefined)).toEqual(WaveSettingsSchema.parse({}));
    expect(waveSettingsOf({ judgeBudget: 900, maxWaves: 4 }, defaults)).toEqual(
      WaveSettingsSchema.parse({ maxJudged: 900, explore: 0.5, maxWaves: 4 }),
    );
  });

  it.each([
    [{ waves: { judgeBudget: 0 } }, 'waves.judgeBudget'],
    [{ waves: { explore: 1.5 } }, 'waves.explore'],
    [{ waves: { maxWaves: 101 } }, 'waves.maxWaves'],
    [{ waves: { budget: 10 } }, 'waves'],
    [{ waves: 'yes' }, 'waves'],
  ])('reject %j naming %s', (body, field) => {
    const r = BuildRequestSchema.safeParse(body);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.'))).toContain(field);
  });

  it('come from SFT_WAVES and its companions', () => {
    const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
    expect(loadSettings(base).defaults.waves).toBeUndefined();
    expect(
      loadSettings({ ...base, SFT_JUDGE_BUDGET: '100' }).defaults.waves,
      'companions alone do not turn waves on',
    ).toBeUndefined();
    expect(
      loadSettings({
        ...base,
        SFT_WAVES: 'true',
        SFT_JUDGE_BUDGET: '120000',
        SFT_WAVE_EXPLORE: '1',
        SFT_MAX_WAVES: '8',
      }).defaults.waves,
    ).toEqual({ maxJudged: 120000, explore: 1, maxWaves: 8 });
    expect(() => loadSettings({ ...base, SFT_MAX_WAVES: '101' })).toThrow(/SFT_MAX_WAVES/);
    expect(() => loadSettings({ ...base, SFT_WAVE_EXPLORE: '2' })).toThrow(/SFT_WAVE_EXPLORE/);
  });
});

describe('the status of a wave-judged build', () => {
  const spec = testSpec({ id: 'b-w', waves: WaveSettingsSchema.parse({}) });
  const plan = {
    buildId: 'b-w',
    sourceBytes: 100,
    rows: 20,
    shards: ['s00000', 's00001'].map((id) => ({ id, rows: 10, bytes: 50 })),
  };
  const summary = (shardId: string, over: Partial<BatchSummary> = {}): BatchSummary => ({
    buildId: 'b-w',
    shardId,
    rows: 10,
    turns: 10,
    outsideWindow: 0,
    quarantined: 0,
    quarantineByReason: {},
    assembly: { conversations: 2, complete: 2, incomplete: 0, duplicateTurns: 0 },
    samples: 2,
    labelled: 0,
    unlabeled: 0,
    unlabeledByCause: {},
    judgeCalls: 0,
    attempt: 1,
    ...over,
  });
  const scan = [summary('s00000'), summary('s00001')];
  const judged = (shardId: string, wave: number, labelled: number) =>
    summary(shardId, {
      rows: 0,
      turns: 0,
      samples: labelled,
      labelled,
      judgeCalls: 1,
      wave,
    });
  const failure: BatchFailure = {
    buildId: 'b-w',
    shardId: 's00001',
    reason: 'judge failed on all 5 deliveries',
    attempts: 5,
    samplesLost: 3,
    via: 'retries-exhausted',
    wave: 1,
  };

  it('is judging through the scan round and while the latest wave runs, then balancing', () => {
    const status = (waves: Parameters<typeof reduceStatus>[0]['waves']) =>
      reduceStatus({ spec, plan, summaries: scan, failures: [], outcome: null, waves });
    const none = { wave: 0, planned: [], summaries: [], failures: [] };
    expect(status(none).state).toBe('judging');
    const running = status({
      wave: 1,
      planned: ['s00000', 's00001'],
      summaries: [judged('s00000', 1, 4)],
      failures: [],
    });
    expect(running.state).toBe('judging');
    expect(running.waves).toEqual({
      wave: 1,
      batches: { planned: 2, done: 1, failed: 0, pending: 1 },
      judged: 4,
    });
    expect(running.counts.labelled).toBe(4);
    const complete = status({
      wave: 1,
      planned: ['s00000', 's00001'],
      summaries: [judged('s00000', 1, 4)],
      failures: [failure],
    });
    expect(complete.state).toBe('balancing');
    expect(complete.waves?.judged).toBe(7);
    expect(complete.counts.samplesLost).toBe(3);
    expect(complete.errors).toEqual([
      { shardId: 's00001', stage: 'judge wave 1', reason: failure.reason },
    ]);
    // A wave 1 marker does not count toward wave 2.
    const next = status({
      wave: 2,
      planned: ['s00000'],
      summaries: [judged('s00000', 1, 4)],
      failures: [],
    });
    expect(next.state).toBe('judging');
    expect(next.waves?.batches.pending).toBe(1);
  });
});

describe("a wave batch reading only its samples' conversations", () => {
  const spec = testSpec({
    id: 'b-w',
    pipeline: 'conversation',
    history: { historyTurns: 2, historyTokenBudget: 400 },
    config: parseBalanceConfig({ total: 10, stratify: ['turnBucket', 'position'] }),
  });
  // Turns of all conversations interleaved (reversed), with a broken line and an id-less one.
  const lines = [...generateTelemetry({ conversations: 60, seed: 5 })]
    .reverse()
    .map((t, i) => shardLine(i + 1, JSON.stringify(t)));
  lines.push(shardLine(9001, '{"conversationId":'), shardLine(9002, '{"turnIndex":1}'));

  it('builds exactly the samples the whole shard gives for those conversations', () => {
    const full = prepareShard(lines, spec);
    const wanted = new Set(full.samples.filter((_, i) => i % 7 === 0).map((s) => s.conversationId));
    const part = prepareShard(lines, spec, wanted);
    expect(part.samples.length).toBeGreaterThan(0);
    expect(part.samples).toEqual(full.samples.filter((s) => wanted.has(s.conversationId)));
    expect(part.rows).toBeLessThan(full.rows);
  });

  it('finds the conversation of a sample id, colons in the id included', () => {
    expect(conversationOfSampleId('conv-1:3')).toBe('conv-1');
    expect(conversationOfSampleId('tenant:conv:12')).toBe('tenant:conv');
  });
});
