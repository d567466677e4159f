/**
 * The pure build core (shared/build.ts): routing lines to shards, completion,
 * the publish decision and the status reduction.
 */
import { describe, expect, it } from 'vitest';
import {
  completionOf,
  conversationIdOf,
  decidePublish,
  reduceStatus,
  routeLine,
  shardCount,
  shardIndexOf,
  type BatchFailure,
  type BatchSummary,
} from '../../shared/build/spec';
import { testSpec } from './harness';
import { routeBytes } from '../../functions/plan-build';

describe('conversationIdOf', () => {
  const CASES: [string, string, string | null][] = [
    ['the fast path', '{"conversationId":"c-1","turnIndex":1}', 'c-1'],
    ['a later key', '{"turnIndex":1,"conversationId":"c-2"}', 'c-2'],
    ['an escaped id', '{"conversationId":"c\\"3","turnIndex":1}', 'c"3'],
    [
      'a repeated key (JSON.parse keeps the last)',
      '{"conversationId":"a","x":1,"conversationId":"b"}',
      'b',
    ],
    ['a number id', '{"conversationId":7}', null],
    ['an empty id', '{"conversationId":""}', null],
    ['invalid JSON', '{"conversationId":"c-4"', 'c-4'],
    ['not JSON at all', 'hello', null],
    ['an array', '[1,2]', null],
  ];
  it.each(CASES)('reads %s', (_name, line, id) => {
    expect(conversationIdOf(line)).toBe(id);
  });

  it('routes every turn of a conversation to one shard, and lines without an id by line number', () => {
    const a = routeLine('{"conversationId":"conv-9","turnIndex":1}', 1, 17);
    const b = routeLine('{"turnIndex":2,"conversationId":"conv-9"}', 99, 17);
    expect(a).toBe(b);
    expect(a).toBe(shardIndexOf('conv-9', 17));
    expect(routeLine('garbage', 40, 17)).toBe(40 % 17);
  });
});

describe('shardCount', () => {
  it('gives about target bytes a shard, at least one and at most max', () => {
    expect(shardCount(0, 100, 10)).toBe(1);
    expect(shardCount(1_000, 100, 50)).toBe(10);
    expect(shardCount(1_001, 100, 50)).toBe(11);
    expect(shardCount(1_000_000, 100, 50)).toBe(50);
  });
});

describe('completionOf', () => {
  it('is complete when every planned shard has a marker; done wins over failed', () => {
    const planned = ['s00000', 's00001', 's00002'];
    const c1 = completionOf(planned, [{ shardId: 's00000', kind: 'done' }]);
    expect(c1).toMatchObject({ planned: 3, done: 1, failed: 0, pending: 2, complete: false });
    const c2 = completionOf(planned, [
      { shardId: 's00000', kind: 'done' },
      { shardId: 's00001', kind: 'failed' },
      { shardId: 's00001', kind: 'done' },
      { shardId: 's00002', kind: 'failed' },
      { shardId: 's09999', kind: 'done' },
    ]);
    expect(c2).toMatchObject({ planned: 3, done: 2, failed: 1, pending: 0, complete: true });
    expect(c2.failedIds).toEqual(['s00002']);
  });
});

const summary = (shardId: string, samples: number, labelled: number): BatchSummary => ({
  buildId: 'b-test',
  shardId,
  rows: samples,
  turns: samples,
  outsideWindow: 0,
  quarantined: 0,
  quarantineByReason: {},
  assembly: { conversations: samples, complete: samples, incomplete: 0, duplicateTurns: 0 },
  samples,
  labelled,
  unlabeled: samples - labelled,
  unlabeledByCause: {},
  judgeCalls: 1,
  attempt: 1,
});
const failure = (shardId: string, samplesLost: number | null): BatchFailure => ({
  buildId: 'b-test',
  shardId,
  reason: 'judge down',
  attempts: 5,
  samplesLost,
  via: 'retries-exhausted',
});

describe('decidePublish', () => {
  it('counts the samples of failed batches and unlabeled samples against the judged share', () => {
    const d = decidePublish([summary('s00000', 80, 70)], [failure('s00001', 20)], 0.5);
    expect(d).toMatchObject({ publish: true, judgedShare: 0.7, samplesLost: 20 });
  });
  it('refuses below the minimum and says why', () => {
    const d = decidePublish([summary('s00000', 80, 70)], [failure('s00001', 20)], 0.75);
    expect(d.publish).toBe(false);
    expect(d.reason).toMatch(/judged share 0\.7 is below the minimum 0\.75/);
  });
  it('refuses a build where nothing was judged', () => {
    expect(decidePublish([], [failure('s00000', 5)], 0).publish).toBe(false);
  });
  it('refuses a build with a failed batch whose loss is unknown (unknown is not 0)', () => {
    const d = decidePublish([summary('s00000', 10, 10)], [failure('s00001', null)], 0.5);
    expect(d).toMatchObject({ publish: false, batchesWithUnknownLoss: 1, samplesLost: 0 });
    expect(d.reason).toMatch(/1 failed batch\(es\) held an unknown number of samples/);
    // Only a build that asks for no minimum accepts it.
    expect(decidePublish([summary('s00000', 10, 10)], [failure('s00001', null)], 0).publish).toBe(
      true,
    );
  });
});

describe('reduceStatus', () => {
  const spec = testSpec();
  const plan = {
    buildId: 'b-test',
    sourceBytes: 100,
    rows: 30,
    shards: ['s00000', 's00001', 's00002'].map((id) => ({ id, rows: 10, bytes: 33 })),
  };

  it('moves from planning to judging to balancing as the markers arrive', () => {
    expect(
      reduceStatus({ spec, plan: null, summaries: [], failures: [], outcome: null }).state,
    ).toBe('planning');
    const judging = reduceStatus({
      spec,
      plan,
      summaries: [summary('s00000', 10, 10)],
      failures: [],
      outcome: null,
    });
    expect(judging).toMatchObject({
      state: 'judging',
      progress: { planned: 3, judged: 1, failed: 0, pending: 2 },
    });
    const balancing = reduceStatus({
      spec,
      plan,
      summaries: [summary('s00000', 10, 10), summary('s00001', 10, 9)],
      failures: [failure('s00002', 10)],
      outcome: null,
    });
    expect(balancing).toMatchObject({
      state: 'balancing',
      progress: { planned: 3, judged: 2, failed: 1, pending: 0 },
      counts: { samples: 20, labelled: 19, unlabeled: 1, samplesLost: 10 },
    });
    expect(balancing.errors).toEqual([{ shardId: 's00002', stage: 'judge', reason: 'judge down' }]);
  });

  it('ends with the outcome: outputs when succeeded, the reason when failed', () => {
    const done = reduceStatus({
      spec,
      plan,
      summaries: [],
      failures: [],
      outcome: {
        buildId: 'b-test',
        state: 'succeeded',
        stage: 'fanin',
        completedAt: '2026-11-25T01:00:00Z',
      },
    });
    expect(done.state).toBe('succeeded');
    expect(done.outputs).toEqual({
      train: 'datasets/b-test/train.jsonl',
      manifest: 'datasets/b-test/manifest.json',
      quarantine: 'datasets/b-test/quarantine.jsonl',
    });
    const failed = reduceStatus({
      spec,
      plan,
      summaries: [],
      failures: [],
      outcome: {
        buildId: 'b-test',
        state: 'failed',
        stage: 'fanin',
        reason: 'too few',
        completedAt: '2026-11-25T01:00:00Z',
      },
    });
    expect(failed.state).toBe('failed');
    expect(failed.errors).toContainEqual({ stage: 'fanin', reason: 'too few' });
    expect(failed.outputs).toEqual({ manifest: 'datasets/b-test/manifest.json' });
  });
});

describe('routeBytes (the plan reads raw bytes)', () => {
  it('routes every line to the shard routeLine gives for its text', () => {
    const lines = [
      '{"conversationId":"conv-1","turnIndex":1}',
      '{"conversationId":"conv-ü-2","userMessage":"naïve ☃"}',
      '{"conversationId":"c\\"3","turnIndex":1}',
      '{"conversationId":"a","x":1,"conversationId":"b"}',
      '{"turnIndex":2,"conversationId":"conv-1"}',
      '{"conversationId":"conv-4"',
      'not json',
      '{"conversationId":',
    ];
    for (const [i, line] of lines.entries()) {
      const buf = Buffer.from(`xx${line}yy`, 'utf8');
      const end = buf.length - 2;
      expect(routeBytes(buf, 2, end, i + 1, 13)).toBe(routeLine(line, i + 1, 13));
    }
  });
});
