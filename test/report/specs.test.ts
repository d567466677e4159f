import { describe, expect, it } from 'vitest';
import { ReportManifestSchema, type ReportManifest } from '../../shared/report/manifest';
import { escapeHtml, renderPage, reportModel } from '../../shared/report/page';
import {
  NO_CONFIDENCE,
  ProfileBuilder,
  confidenceBin,
  profileRows,
} from '../../shared/report/profile';
import {
  MAX_MODELS,
  classRatioChart,
  confidenceChart,
  judgeChart,
  modelMixChart,
  positionChart,
  quarantineChart,
  reportCharts,
  shortfallChart,
  shortfallOf,
  turnCountChart,
} from '../../shared/report/specs';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { row } from '../support/rows';
import { conversationRows, manifestOf } from './fixture';

type Datum = Record<string, unknown> & { count: number; description: string };
const valuesOf = (spec: Record<string, unknown> | null): Datum[] =>
  (spec!.data as { values: Datum[] }).values;

const CONVERSATION = {
  pipeline: { name: 'conversation', assembly: { conversations: 600, complete: 600 } },
  judge: {
    name: 'signals-v1',
    calls: 40,
    batchSize: 20,
    samplesJudged: 800,
    labelled: 790,
    unlabeled: 10,
    stats: {
      calls: 40,
      retries: 2,
      samplesJudged: 800,
      labelled: 790,
      unlabeled: 10,
      cacheHits: 120,
      reasked: 3,
      promptTokens: 50_000,
      cachedTokens: 30_000,
      completionTokens: 4_000,
      estimatedCost: 0.0123,
      batchCalls: 0,
    },
  },
};

const parsed = (m: unknown): ReportManifest => ReportManifestSchema.parse(m);
const convManifest = () =>
  parsed(
    manifestOf(
      conversationRows(),
      { total: 400, ratio: 0.7, stratify: ['turnBucket', 'position'], seed: 5 },
      CONVERSATION,
      { invalid_json: 3, bad_timestamp: 2 },
    ),
  );

describe('confidenceBin', () => {
  it.each([
    [0, '0.0'],
    [0.5, '0.5'],
    [0.55, '0.5'],
    [0.6, '0.6'],
    [0.95, '0.9'],
    [1, '0.9'],
    [undefined, NO_CONFIDENCE],
    [Number.NaN, NO_CONFIDENCE],
  ])('puts %s in bin %s', (c, bin) => {
    expect(confidenceBin(c)).toBe(bin);
  });
});

describe('profile', () => {
  const cfg = parseBalanceConfig({});

  it('counts rows per label along every dimension', () => {
    const p = profileRows(cfg, [
      row({ label: 0, turnIndex: 1, turnCount: 4, model: 'o1', confidence: 0.93 }),
      row({ label: 1, turnIndex: 4, turnCount: 4, model: 'gpt-4o-mini' }),
      row({ label: 1, turnIndex: 2, turnCount: 30, model: 'gpt-4o-mini', confidence: 0.61 }),
    ]);
    expect(p.rows).toBe(3);
    expect(p.byLabel).toEqual({ '0': 1, '1': 2 });
    expect(p.turnCount).toEqual({ '4': { '0': 1, '1': 1 }, '30': { '0': 0, '1': 1 } });
    expect(p.turnBucket).toEqual({ A: { '0': 1, '1': 1 }, outside: { '0': 0, '1': 1 } });
    expect(p.position).toEqual({ early: { '0': 1, '1': 1 }, late: { '0': 0, '1': 1 } });
    expect(p.model).toEqual({ 'gpt-4o-mini': { '0': 0, '1': 2 }, o1: { '0': 1, '1': 0 } });
    expect(p.confidence).toEqual({
      '0.6': { '0': 0, '1': 1 },
      '0.9': { '0': 1, '1': 0 },
      none: { '0': 0, '1': 1 },
    });
  });

  it('reads the confidence a dataset line keeps in its metadata', () => {
    const p = profileRows(cfg, [{ ...row({ label: 0 }), metadata: { confidence: 0.71 } }]);
    expect(p.confidence).toEqual({ '0.7': { '0': 1, '1': 0 } });
  });

  it('does not depend on the order rows arrive in', () => {
    const rows = conversationRows(200);
    const a = new ProfileBuilder(cfg);
    const b = new ProfileBuilder(cfg);
    for (const r of rows) a.add(r);
    for (const r of [...rows].reverse()) b.add(r);
    expect(JSON.stringify(b.snapshot())).toBe(JSON.stringify(a.snapshot()));
  });

  it('lists turn counts in numeric order', () => {
    const p = profileRows(cfg, [row({ turnCount: 12 }), row({ turnCount: 3 })]);
    expect(Object.keys(p.turnCount)).toEqual(['3', '12']);
  });
});

describe('chart specs', () => {
  const m = convManifest();

  it('class ratio draws the input and selected counts of each label', () => {
    const v = valuesOf(classRatioChart(m).spec);
    const get = (when: string, label: string) =>
      v.find((d) => d.when === when && d.label === label)!.count;
    expect(get('before', 'reasoning')).toBe(m.input.byLabel['0']);
    expect(get('before', 'non_reasoning')).toBe(m.input.byLabel['1']);
    expect(get('after', 'reasoning')).toBe(m.selected.byLabel['0']);
    expect(get('after', 'non_reasoning')).toBe(m.selected.byLabel['1']);
    expect(get('after', 'reasoning')).toBe(280); // 70:30 of 400, exact
  });

  it('turn counts sum to the profiled rows and carry their bucket', () => {
    const v = valuesOf(turnCountChart(m).spec);
    const sum = (when: string) => v.filter((d) => d.when === when).reduce((s, d) => s + d.count, 0);
    expect(sum('before')).toBe(m.profile!.before!.rows);
    expect(sum('after')).toBe(m.selected.total);
    expect(v.find((d) => d.turnCount === 7)!.bucket).toBe('B');
    expect(v.find((d) => d.turnCount === 2)?.bucket ?? 'outside').toBe('outside');
  });

  it('positions, complexity and model mix sum to the selection per label', () => {
    for (const chart of [positionChart(m), modelMixChart(m), reportCharts(m)[4]!]) {
      const v = valuesOf(chart.spec).filter((d) => d.when === 'after');
      for (const [l, name] of [
        ['0', 'reasoning'],
        ['1', 'non_reasoning'],
      ] as const) {
        const n = v.filter((d) => d.label === name).reduce((s, d) => s + d.count, 0);
        expect(n, `${chart.id} ${name}`).toBe(m.selected.byLabel[l]);
      }
    }
  });

  it('folds models beyond the largest ones into one bar, keeping the totals', () => {
    const many = parsed(
      manifestOf(
        conversationRows(300).map((r, i) => ({ ...r, model: `model-${i % 20}` })),
        { total: 100, ratio: 0.5, stratify: ['turnBucket'], seed: 1 },
      ),
    );
    const v = valuesOf(modelMixChart(many).spec).filter((d) => d.when === 'before');
    const keys = new Set(v.map((d) => d.key));
    expect(keys.size).toBe(MAX_MODELS + 1);
    expect(keys.has('(8 other models)')).toBe(true);
    expect(v.reduce((s, d) => s + d.count, 0)).toBe(many.profile!.before!.rows);
  });

  it('shortfall chart shows supply, selection and nominal minus selected', () => {
    const short = parsed(
      manifestOf(conversationRows(), {
        total: 3000,
        ratio: 0.5,
        stratify: ['turnBucket'],
        seed: 2,
      }),
    );
    expect(short.shortfalls.strata.length).toBeGreaterThan(0);
    const v = valuesOf(shortfallChart(short).spec);
    for (const s of short.shortfalls.strata) {
      const cell = `${s.label === 0 ? 'reasoning' : 'non_reasoning'} / ${s.stratum}`;
      const at = (measure: string) => v.find((d) => d.cell === cell && d.measure === measure)!;
      expect(at('shortfall').count).toBe(shortfallOf(s));
      expect(at('shortfall').count).toBeCloseTo(s.nominal - s.selected, 2);
      expect(at('selected').count).toBe(s.selected);
      expect(at('available').count).toBe(s.available);
    }
  });

  it('judge chart shows cache hits and tokens from the judge stats', () => {
    const v = valuesOf(judgeChart(m).spec);
    const at = (measure: string) => v.find((d) => d.measure === measure)!.count;
    expect(at('cache hits')).toBe(120);
    expect(at('calls')).toBe(40);
    expect(at('prompt (uncached)')).toBe(20_000);
    expect(at('prompt (cached)')).toBe(30_000);
    expect(judgeChart(m).caption).toContain('0.0123');
  });

  it('quarantine chart lists every reason with its count', () => {
    const v = valuesOf(quarantineChart(m).spec);
    expect(Object.fromEntries(v.map((d) => [d.reason, d.count]))).toEqual({
      bad_timestamp: 2,
      invalid_json: 3,
    });
  });

  it('says why a chart is absent instead of drawing an empty one', () => {
    const session = parsed(
      manifestOf(
        conversationRows(300).map(({ confidence: _c, ...r }) => r),
        { total: 100, ratio: 0.5, stratify: ['turnBucket'], seed: 1 },
        { pipeline: { name: 'session' } },
      ),
    );
    expect(quarantineChart(session)).toMatchObject({
      spec: null,
      absent: 'no row was quarantined',
    });
    expect(positionChart(session).spec).toBeNull();
    expect(positionChart(session).absent).toContain('session pipeline');
    expect(confidenceChart(session).absent).toContain('no confidence');
    expect(judgeChart(session).spec).toBeNull();
  });

  it('every chart has a description on each datum naming its count', () => {
    const charts = reportCharts(m);
    // Only the wave charts are absent: this build judged every sample.
    expect(charts.filter((c) => !c.spec).map((c) => c.id)).toEqual(['waves', 'waves-strata']);
    for (const c of charts.filter((x) => x.spec)) {
      for (const d of valuesOf(c.spec)) expect(d.description).toContain(`: ${d.count}`);
    }
  });
});

describe('page', () => {
  it('escapes the five HTML metacharacters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
  });

  it('shows the manifest numbers as facts, keyed by their manifest path', () => {
    const m = convManifest();
    const facts = Object.fromEntries(reportModel(m).facts.map((f) => [f.key, f.value]));
    expect(facts['selected.total']).toBe(m.selected.total);
    expect(facts['input.rows']).toBe(m.input.rows);
    expect(facts['input.quarantined']).toBe(5);
    expect(facts['judge.stats.cacheHits']).toBe(120);
  });

  it('escapes user-derived text and draws no script', () => {
    const evil = '<script>alert(1)</script>';
    const m = parsed(
      manifestOf(
        conversationRows(100),
        { total: 50, ratio: 0.5, stratify: ['turnBucket'], seed: 1 },
        { source: `x"><img src=x onerror=alert(1)>`, judge: { ...CONVERSATION.judge, name: evil } },
      ),
    );
    const html = renderPage(reportModel(m), {});
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain("default-src 'none'");
  });

  it('marks charts without data as absent with the reason', () => {
    const m = convManifest();
    const model = reportModel(m);
    const html = renderPage(model, { 'class-ratio': '<svg></svg>' });
    expect(html).toContain('data-chart="class-ratio" id="chart-class-ratio"');
    expect(html).toContain('data-chart="turn-count" data-absent="true"');
  });
});
