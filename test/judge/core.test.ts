/** The judge's pure core: prompt, verdict parsing, throttle math, batch files, panel, calibration, settings. */
import { describe, expect, it } from 'vitest';
import { createSignalsJudge } from '../../shared/judge/signals';
import { readBatchOutput, splitBatchFiles } from '../../shared/judge/batch';
import { calibrationReport, cohensKappa } from '../../shared/judge/calibrate';
import { judgeCacheKey } from '../../shared/judge/cache-key';
import { createPanelJudge, majority } from '../../shared/judge/panel';
import { createReplayJudge, lookupBySampleId } from '../../shared/judge/replay';
import {
  buildJudgePrompt,
  canonicalContent,
  DelimiterCollisionError,
  makeDelimiter,
  RUBRIC,
  RUBRIC_VERSION,
} from '../../shared/judge/rubric';
import { judgeSettingsFromEnv, JudgeSettingsSchema } from '../../shared/judge/settings';
import {
  backoffDelay,
  classifyFailure,
  parseDuration,
  RateBudget,
  retryAfterMs,
  Semaphore,
  TokenBucket,
} from '../../shared/judge/throttle';
import type { Judge } from '../../shared/judge/types';
import { costOf } from '../../shared/judge/usage';
import { labelConfidences, labelOffsets, parseVerdicts } from '../../shared/judge/verdicts';
import { input } from './helpers';

describe('prompt', () => {
  it('puts the rubric first and the samples as one JSON line each between the delimiters', () => {
    const d = makeDelimiter('0123456789abcdef');
    const p = buildJudgePrompt(
      [
        { history: [], message: 'line one\n"quoted"' },
        { history: ['earlier'], message: 'now' },
      ],
      d,
    );
    expect(p.system).toBe(RUBRIC);
    expect(p.ids).toEqual(['s1', 's2']);
    const lines = p.user.split('\n');
    expect(lines.filter((l) => l === d)).toHaveLength(2);
    const data = lines
      .slice(lines.indexOf(d) + 1, lines.lastIndexOf(d))
      .map((l) => JSON.parse(l) as unknown);
    expect(data).toEqual([
      { id: 's1', message: 'line one\n"quoted"' },
      { id: 's2', history: ['earlier'], message: 'now' },
    ]);
  });

  it('refuses data that contains the delimiter, and weak delimiter randomness', () => {
    const d = makeDelimiter('0123456789abcdef');
    expect(() => buildJudgePrompt([{ history: [], message: d }], d)).toThrow(
      DelimiterCollisionError,
    );
    expect(() => makeDelimiter('abc')).toThrow(RangeError);
  });

  it('hashes content without the sample id, and history matters', () => {
    expect(canonicalContent({ history: [], message: 'x' })).not.toBe(
      canonicalContent({ history: ['y'], message: 'x' }),
    );
  });
});

describe('parseVerdicts', () => {
  const ids = ['s1', 's2', 's3'];
  const v = (id: string, label: unknown) => ({ id, label, rationale: 'r' });
  const cases: [string, unknown, Record<string, 0 | 1>, Record<string, RegExp>][] = [
    ['all good', { verdicts: [v('s1', 0), v('s2', 1), v('s3', 0)] }, { s1: 0, s2: 1, s3: 0 }, {}],
    ['missing id', { verdicts: [v('s1', 0), v('s3', 1)] }, { s1: 0, s3: 1 }, { s2: /missing/ }],
    [
      'duplicate id',
      { verdicts: [v('s1', 0), v('s2', 1), v('s2', 1), v('s3', 0)] },
      { s1: 0, s3: 0 },
      { s2: /2 times/ },
    ],
    [
      'label 2',
      { verdicts: [v('s1', 2), v('s2', 1), v('s3', 0)] },
      { s2: 1, s3: 0 },
      { s1: /label 2 is not 0 or 1/ },
    ],
    [
      'label "0" string',
      { verdicts: [v('s1', '0'), v('s2', 1), v('s3', 0)] },
      { s2: 1, s3: 0 },
      { s1: /not 0 or 1/ },
    ],
    [
      'extra id ignored',
      { verdicts: [v('s1', 0), v('s2', 1), v('s3', 0), v('s4', 1)] },
      { s1: 0, s2: 1, s3: 0 },
      {},
    ],
    [
      'no verdicts array',
      { labels: [0, 1, 0] },
      {},
      { s1: /no "verdicts"/, s2: /no "verdicts"/, s3: /no "verdicts"/ },
    ],
  ];
  it.each(cases)('%s', (_name, answer, ok, problems) => {
    const r = parseVerdicts(JSON.stringify(answer), ids);
    expect(Object.fromEntries([...r.ok].map(([id, x]) => [id, x.label]))).toEqual(ok);
    expect([...r.problems.keys()].sort()).toEqual(Object.keys(problems).sort());
    for (const [id, re] of Object.entries(problems)) expect(r.problems.get(id)).toMatch(re);
  });

  it('cuts an over-long rationale instead of rejecting the verdict', () => {
    const r = parseVerdicts(
      JSON.stringify({ verdicts: [{ id: 's1', label: 1, rationale: 'x'.repeat(1000) }] }),
      ['s1'],
    );
    expect(r.ok.get('s1')?.rationale).toHaveLength(300);
  });

  it('rejects a verdict without a rationale', () => {
    const r = parseVerdicts(JSON.stringify({ verdicts: [{ id: 's1', label: 1 }] }), ['s1']);
    expect(r.problems.get('s1')).toMatch(/rationale/);
  });

  it('rejects text that is not JSON, or empty', () => {
    expect(parseVerdicts('{"verdicts": [', ids).fatal).toMatch(/not JSON/);
    expect(parseVerdicts('', ids).fatal).toMatch(/empty/);
    expect(parseVerdicts(null, ids).ok.size).toBe(0);
  });

  it('finds label digits outside strings only', () => {
    const text =
      '{"verdicts":[{"id":"s1","rationale":"says \\"label\\": 1","label":0},{"id":"s2","label": 1,"rationale":"x"}]}';
    const offs = labelOffsets(text);
    expect(offs.map((o) => text[o])).toEqual(['0', '1']);
  });

  it('derives confidence from the chosen digit against its alternative', () => {
    const text = '{"label":0}';
    const tokens = [
      { token: '{"label":', logprob: 0 },
      {
        token: '0',
        logprob: Math.log(0.6),
        top: [
          { token: '0', logprob: Math.log(0.6) },
          { token: '1', logprob: Math.log(0.2) },
        ],
      },
      { token: '}', logprob: 0 },
    ];
    expect(labelConfidences(text, tokens)).toEqual([0.75]);
    expect(labelConfidences(text, null)).toEqual([]);
    // Tokens that do not spell the text give no confidence rather than a wrong one.
    expect(labelConfidences(text, tokens.slice(0, 2))).toEqual([]);
  });
});

describe('throttle math', () => {
  it('a token bucket lets a full minute through, then paces', () => {
    const b = new TokenBucket(60, 0);
    for (let i = 0; i < 60; i++) expect(b.reserve(0, 1)).toBe(0);
    expect(b.reserve(0, 1)).toBe(1_000);
    expect(b.reserve(0, 1)).toBe(2_000);
    expect(b.reserve(10_000, 1)).toBe(0); // the debt of 2 is repaid by t = 2 s
  });

  it('a token bucket charges at most its capacity for one huge request', () => {
    const b = new TokenBucket(1_000, 0);
    expect(b.reserve(0, 1_000)).toBe(0);
    expect(b.reserve(0, 50_000)).toBe(60_000);
  });

  it('settling gives back unused tokens', () => {
    const r = new RateBudget({ tpm: 1_000 }, 0);
    expect(r.reserve(0, 1_000)).toBe(0);
    r.settle(0, 1_000, 400);
    expect(r.reserve(0, 600)).toBe(0);
  });

  it('a 429 pause holds every request', () => {
    const r = new RateBudget({}, 0);
    r.pauseUntil(5_000);
    expect(r.reserve(1_000, 10)).toBe(4_000);
    expect(r.reserve(6_000, 10)).toBe(0);
  });

  it('backoff grows exponentially with full jitter and a cap', () => {
    const o = { baseMs: 100, maxMs: 1_000 };
    expect(backoffDelay(0, o, 0.999)).toBe(99);
    expect(backoffDelay(3, o, 0.5)).toBe(400);
    expect(backoffDelay(10, o, 0.5)).toBe(500);
    expect(backoffDelay(10, o, 0)).toBe(0);
  });

  it.each([
    [{ 'retry-after-ms': '250' }, 250],
    [{ 'retry-after': '2' }, 2_000],
    [{ 'retry-after': 'Thu, 01 Jan 1970 00:00:10 GMT' }, 9_000],
    [{ 'x-ratelimit-reset-requests': '1s', 'x-ratelimit-reset-tokens': '6m0s' }, 360_000],
    [{ 'x-ratelimit-reset-tokens': '20ms' }, 20],
    [{}, null],
  ])('reads %j as %s ms', (headers, ms) => {
    const h = headers as Record<string, string>;
    expect(retryAfterMs((n) => h[n], 1_000)).toBe(ms);
  });

  it('a semaphore holds every caller to the limit', async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    const task = () =>
      sem.run(async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 5));
        active--;
      });
    await Promise.all([task(), task(), task(), task(), task()]);
    expect(peak).toBe(2);
  });

  it('parses provider durations', () => {
    expect(parseDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseDuration('soon')).toBeNull();
  });

  it.each([
    [429, 'rate_limited'],
    [500, 'transient'],
    [503, 'transient'],
    [408, 'transient'],
    [undefined, 'transient'],
    [400, 'bad_request'],
    [401, 'fatal'],
    [404, 'fatal'],
  ])('status %s is %s', (status, kind) => {
    expect(classifyFailure(status)).toBe(kind);
  });
});

describe('batch files', () => {
  it('splits by request count and by bytes', () => {
    const lines = ['aaaa', 'bbbb', 'cccc', 'dddd', 'eeee'];
    expect(splitBatchFiles(lines, 2, 1_000).map((f) => f.length)).toEqual([2, 2, 1]);
    expect(splitBatchFiles(lines, 100, 10).map((f) => f.length)).toEqual([2, 2, 1]);
    expect(splitBatchFiles(['é'.repeat(4)], 10, 9)).toHaveLength(1);
    expect(() => splitBatchFiles(['é'.repeat(5)], 10, 9)).toThrow(RangeError);
  });

  it('reads output and error lines into per-line results', () => {
    const text = [
      JSON.stringify({
        custom_id: 'r1',
        response: { status_code: 200, body: { ok: 1 } },
        error: null,
      }),
      JSON.stringify({ custom_id: 'r2', response: { status_code: 429, body: {} }, error: null }),
      JSON.stringify({
        custom_id: 'r3',
        response: { status_code: 400, body: { error: { message: 'bad' } } },
      }),
      JSON.stringify({
        custom_id: 'r4',
        response: null,
        error: { code: 'batch_expired', message: 'expired' },
      }),
      'not json',
    ].join('\n');
    const r = readBatchOutput(text);
    expect(r.map((x) => [x.customId, x.ok, x.ok ? null : x.retry])).toEqual([
      ['r1', true, null],
      ['r2', false, true],
      ['r3', false, false],
      ['r4', false, true],
    ]);
  });
});

describe('cache key', () => {
  it('is model × rubric version × content hash, safe as a blob name', () => {
    const h = 'ab'.repeat(32);
    expect(judgeCacheKey('gpt-4o mini', RUBRIC_VERSION, h)).toBe(
      `verdicts/gpt-4o_mini/${RUBRIC_VERSION}/ab/${h}.json`,
    );
    expect(() => judgeCacheKey('m', 'v', 'xyz')).toThrow(RangeError);
  });
});

describe('panel', () => {
  it.each([
    [[0, 0, 1], 0, 2 / 3],
    [[1, null, 1], 1, 2 / 3],
    [[0, 1, null], null, 0],
    [[0, 1], null, 0],
    [[null, null, 0], null, 0],
  ] as const)('majority of %j is %s', (votes, label, agreement) => {
    const m = majority(votes);
    expect(m.label).toBe(label);
    expect(m.agreement).toBeCloseTo(agreement);
  });

  const fixed = (name: string, labels: Record<string, 0 | 1 | null>): Judge => ({
    name,
    judge: (batch) =>
      Promise.resolve(
        batch.map((s) => {
          const l = labels[s.sampleId];
          return l === null || l === undefined
            ? { sampleId: s.sampleId, label: null, error: `${name} failed` }
            : { sampleId: s.sampleId, label: l };
        }),
      ),
  });

  it('labels by majority, leaves splits unlabeled, and records agreement', async () => {
    const panel = createPanelJudge([
      fixed('a', { x: 0, y: 1, z: 0 }),
      fixed('b', { x: 0, y: 1, z: 1 }),
      fixed('c', { x: 1, y: 1, z: null }),
    ]);
    const vs = await panel.judge([input('x', 'm'), input('y', 'm'), input('z', 'm')]);
    expect(vs.map((v) => v.label)).toEqual([0, 1, null]);
    expect(vs[0]).toMatchObject({ confidence: 0.667, rationale: 'panel 2/3 (a=0 b=0 c=1)' });
    expect(vs[2]!.label === null && vs[2]!.error).toMatch(/panel split .*c: c failed/);
    const ag = panel.agreement();
    expect(ag.samples).toBe(3);
    expect(ag.unanimous).toBeCloseTo(1 / 3);
    expect(ag.split).toBe(1);
    expect(ag.pairwise[0]![1]).toBeCloseTo(2 / 3); // a and b agree on x, y; not z
    expect(ag.pairwise[0]![2]).toBeCloseTo(1 / 2); // a and c both labelled x, y; agree on y
  });

  it('needs two judges', () => {
    expect(() => createPanelJudge([createSignalsJudge()])).toThrow(RangeError);
  });
});

describe('replay', () => {
  it('answers from its source and never invents a label', async () => {
    const j = createReplayJudge(
      'replay:f',
      lookupBySampleId(new Map([['a', { label: 1 as const, rationale: 'old' }]])),
    );
    const vs = await j.judge([input('a', 'x'), input('b', 'y')]);
    expect(vs[0]).toEqual({ sampleId: 'a', label: 1, rationale: 'old' });
    expect(vs[1]).toMatchObject({ label: null, error: 'not in replay source (replay:f)' });
  });
});

describe('calibration', () => {
  it("computes Cohen's kappa", () => {
    expect(
      cohensKappa([
        [20, 5],
        [10, 15],
      ]),
    ).toBeCloseTo(0.4);
    expect(
      cohensKappa([
        [10, 0],
        [0, 10],
      ]),
    ).toBe(1);
    expect(
      cohensKappa([
        [0, 0],
        [0, 0],
      ]),
    ).toBe(0);
  });

  it('reports accuracy, confusion, coverage and per-stratum agreement', () => {
    const r = calibrationReport([
      { gold: 0, predicted: 0, stratum: 'A' },
      { gold: 0, predicted: 1, stratum: 'A' },
      { gold: 1, predicted: 1, stratum: 'B' },
      { gold: 1, predicted: null, stratum: 'B' },
    ]);
    expect(r.confusion).toEqual([
      [1, 1],
      [0, 1],
    ]);
    expect(r.accuracy).toBeCloseTo(2 / 3, 4);
    expect(r.coverage).toBe(0.75);
    expect(r.byStratum.A).toMatchObject({ n: 2, accuracy: 0.5 });
    expect(r.byStratum.B).toMatchObject({ n: 2, labelled: 1, accuracy: 1 });
  });
});

describe('settings', () => {
  it('fills defaults for an OpenAI judge (K = 20)', () => {
    const s = JudgeSettingsSchema.parse({ kind: 'openai', model: 'gpt-4o-mini' });
    expect(s).toMatchObject({
      provider: 'openai',
      batchSize: 20,
      mode: 'sync',
      maxVerdictAttempts: 3,
    });
  });

  it('reads Azure settings from the environment, Entra ID unless a key is set', () => {
    const s = judgeSettingsFromEnv({
      JUDGE_KIND: 'openai',
      JUDGE_PROVIDER: 'azure',
      JUDGE_MODEL: 'gpt4o-dep',
      AZURE_OPENAI_ENDPOINT: 'https://r.openai.azure.com',
      JUDGE_BATCH_SIZE: '25',
      JUDGE_RPM: '600',
      JUDGE_PRICE_INPUT: '2.5',
    });
    expect(s).toMatchObject({
      kind: 'openai',
      provider: 'azure',
      batchSize: 25,
      rpm: 600,
      endpoint: 'https://r.openai.azure.com',
    });
    expect(s.kind === 'openai' && s.apiKey).toBeUndefined();
    expect(s.kind === 'openai' && s.prices?.inputPerMTok).toBe(2.5);
    expect(judgeSettingsFromEnv({}).kind).toBe('signals');
  });

  it("takes the provider's own key variable when no JUDGE_API_KEY is set", () => {
    const base = { JUDGE_KIND: 'openai', JUDGE_MODEL: 'm' };
    const azure = judgeSettingsFromEnv({
      ...base,
      JUDGE_PROVIDER: 'azure',
      AZURE_OPENAI_API_KEY: 'az',
      OPENAI_API_KEY: 'oa',
    });
    expect(azure.kind === 'openai' && azure.apiKey).toBe('az');
    const openai = judgeSettingsFromEnv({
      ...base,
      AZURE_OPENAI_API_KEY: 'az',
      OPENAI_API_KEY: 'oa',
    });
    expect(openai.kind === 'openai' && openai.apiKey).toBe('oa');
    const both = judgeSettingsFromEnv({ ...base, JUDGE_API_KEY: 'j', OPENAI_API_KEY: 'oa' });
    expect(both.kind === 'openai' && both.apiKey).toBe('j');
  });

  it('takes a panel as JSON', () => {
    const s = judgeSettingsFromEnv({
      JUDGE_SETTINGS: JSON.stringify({
        kind: 'panel',
        judges: [{ kind: 'signals' }, { kind: 'openai', model: 'm' }],
      }),
    });
    expect(s.kind === 'panel' && s.judges.length).toBe(2);
  });

  it('rejects a bad batch size', () => {
    expect(() => JudgeSettingsSchema.parse({ kind: 'openai', model: 'm', batchSize: 0 })).toThrow();
  });
});

describe('cost', () => {
  it('prices cached tokens apart and halves batch requests', () => {
    const p = { inputPerMTok: 2, cachedInputPerMTok: 1, outputPerMTok: 8, batchMultiplier: 0.5 };
    const u = { promptTokens: 1_000_000, cachedTokens: 500_000, completionTokens: 100_000 };
    expect(costOf(u, p)).toBeCloseTo(1 + 0.5 + 0.8);
    expect(costOf(u, p, true)).toBeCloseTo(1.15);
  });
});
