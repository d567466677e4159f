/**
 * Chart specs for the build report: pure functions from the manifest to Vega-Lite
 * specs with their data inline. A builder returns null when the manifest holds
 * nothing for its chart (with the reason), so the page says why instead of drawing
 * an empty frame. Rendering to SVG happens in adapters/files/report.ts.
 *
 * Every mark carries a `description` (its aria-label in the SVG) that states the
 * numbers it draws, so a reader with a screen reader and the browser test see them.
 */
import type { ReportManifest } from './manifest';
import type { LabelCounts, Profile } from './profile';

/** A Vega-Lite spec as plain data (the core does not import the library). */
export type VegaLiteSpec = Record<string, unknown>;

export type ChartId =
  | 'class-ratio'
  | 'turn-count'
  | 'turn-position'
  | 'model-mix'
  | 'complexity'
  | 'confidence'
  | 'shortfalls'
  | 'judge'
  | 'waves'
  | 'waves-strata'
  | 'quarantine'
  | 'probe-roc'
  | 'probe-strata'
  | 'probe-routing';

export interface ChartResult {
  id: ChartId;
  title: string;
  caption: string;
  /** null: nothing to draw; `absent` says why. */
  spec: VegaLiteSpec | null;
  absent?: string;
}

export const LABEL_TITLES = { '0': 'reasoning', '1': 'non_reasoning' } as const;
const LABEL_DOMAIN = [LABEL_TITLES['0'], LABEL_TITLES['1']];
const LABEL_COLORS = ['#4c78a8', '#f58518'];
const WHEN_ORDER = ['before', 'after'];
/** At most this many models are drawn; the rest are summed as one bar. */
export const MAX_MODELS = 12;

const labelColor = {
  field: 'label',
  type: 'nominal',
  title: 'label',
  scale: { domain: LABEL_DOMAIN, range: LABEL_COLORS },
};

const base = (title: string): VegaLiteSpec => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title,
  config: {
    font: 'Helvetica, Arial, sans-serif',
    view: { stroke: '#ddd' },
    axis: { labelFontSize: 11, titleFontSize: 11 },
    title: { fontSize: 13, anchor: 'start' },
  },
  background: 'white',
});

const pct = (n: number, d: number) => (d > 0 ? `${((100 * n) / d).toFixed(1)}%` : '0.0%');

/** Rows of (when, label, key, count) from per-label counts. */
function labelRows(when: string, key: string, c: LabelCounts) {
  return (['0', '1'] as const).map((l) => ({
    when,
    key,
    label: LABEL_TITLES[l],
    count: c[l],
    description: `${when} · ${key} · ${LABEL_TITLES[l]}: ${c[l]}`,
  }));
}

/** Before (when known) and after profiles, in that order. */
function profiles(m: ReportManifest): { when: string; p: Profile }[] {
  const out: { when: string; p: Profile }[] = [];
  if (m.profile?.before) out.push({ when: 'before', p: m.profile.before });
  if (m.profile?.after) out.push({ when: 'after', p: m.profile.after });
  return out;
}

/** A grouped bar chart of label counts per category, one column per before/after. */
function labelBars(
  title: string,
  rows: ReturnType<typeof labelRows>,
  keyTitle: string,
  order: string[],
): VegaLiteSpec {
  return {
    ...base(title),
    data: { values: rows },
    facet: {
      column: { field: 'when', type: 'nominal', title: null, sort: WHEN_ORDER },
    },
    spec: {
      width: 220,
      height: 160,
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'key', type: 'nominal', title: keyTitle, sort: order, axis: { labelAngle: 0 } },
        xOffset: { field: 'label', type: 'nominal', sort: LABEL_DOMAIN },
        y: { field: 'count', type: 'quantitative', title: 'samples' },
        color: labelColor,
        description: { field: 'description', type: 'nominal' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Class ratio of the valid input (before) and of the selection (after). */
export function classRatioChart(m: ReportManifest): ChartResult {
  const title = 'Class ratio before and after balancing';
  const rows = [];
  const before = m.input.byLabel;
  const after = m.selected.byLabel;
  for (const [when, c] of [
    ['before', before],
    ['after', after],
  ] as const) {
    const total = (c['0'] ?? 0) + (c['1'] ?? 0);
    for (const l of ['0', '1'] as const) {
      const n = c[l] ?? 0;
      rows.push({
        when,
        label: LABEL_TITLES[l],
        count: n,
        share: total > 0 ? n / total : 0,
        description: `${when} · ${LABEL_TITLES[l]}: ${n} (${pct(n, total)})`,
      });
    }
  }
  return {
    id: 'class-ratio',
    title,
    caption:
      `Distinct valid samples per label before balancing and selected samples after. ` +
      `Target ratio ${m.config.ratio} reasoning.`,
    spec: {
      ...base(title),
      width: 460,
      height: 90,
      data: { values: rows },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'when', type: 'nominal', title: null, sort: WHEN_ORDER },
        x: {
          field: 'count',
          type: 'quantitative',
          stack: 'normalize',
          title: 'share of samples',
          axis: { format: '%' },
        },
        color: labelColor,
        description: { field: 'description', type: 'nominal' },
      },
    },
  };
}

/** Turn-count histogram before and after, coloured by turn bucket. */
export function turnCountChart(m: ReportManifest): ChartResult {
  const title = 'Turn-count distribution per bucket, before and after';
  const ps = profiles(m);
  if (ps.length === 0)
    return { id: 'turn-count', title, caption: '', spec: null, absent: 'no profile in manifest' };
  const buckets = (m.config as { buckets?: { name: string; min: number; max: number }[] }).buckets;
  const bucketOf = (tc: number) =>
    buckets?.find((b) => tc >= b.min && tc <= b.max)?.name ?? 'outside';
  const rows = [];
  for (const { when, p } of ps) {
    for (const [tc, c] of Object.entries(p.turnCount)) {
      const n = c['0'] + c['1'];
      const bucket = bucketOf(Number(tc));
      rows.push({
        when,
        turnCount: Number(tc),
        bucket,
        count: n,
        description: `${when} · ${tc} turns (bucket ${bucket}): ${n}`,
      });
    }
  }
  const bucketNames = [...new Set(rows.map((r) => r.bucket))];
  return {
    id: 'turn-count',
    title,
    caption:
      'Samples by the turn count of their conversation, coloured by turn bucket (Strategy 1); ' +
      (ps.length === 1
        ? 'only the selection was profiled.'
        : 'before: every labelled sample offered to the balancer.'),
    spec: {
      ...base(title),
      data: { values: rows },
      facet: { column: { field: 'when', type: 'nominal', title: null, sort: WHEN_ORDER } },
      spec: {
        width: 260,
        height: 160,
        mark: { type: 'bar' },
        encoding: {
          x: {
            field: 'turnCount',
            type: 'ordinal',
            title: 'turns in conversation',
            axis: { labelAngle: 0, labelOverlap: 'parity' },
          },
          y: { field: 'count', type: 'quantitative', title: 'samples' },
          color: {
            field: 'bucket',
            type: 'nominal',
            title: 'bucket',
            sort: bucketNames,
            scale: { scheme: 'tableau10' },
          },
          description: { field: 'description', type: 'nominal' },
        },
      },
      resolve: { scale: { y: 'independent' } },
    },
  };
}

function profileChart(
  m: ReportManifest,
  id: ChartId,
  title: string,
  caption: string,
  pick: (p: Profile) => Record<string, LabelCounts>,
  keyTitle: string,
  order: string[],
): ChartResult {
  const ps = profiles(m);
  if (ps.length === 0) return { id, title, caption, spec: null, absent: 'no profile in manifest' };
  const rows = ps.flatMap(({ when, p }) =>
    Object.entries(pick(p)).flatMap(([k, c]) => labelRows(when, k, c)),
  );
  const keys = [...new Set(rows.map((r) => r.key))];
  const sortBy = [
    ...order.filter((k) => keys.includes(k)),
    ...keys.filter((k) => !order.includes(k)),
  ];
  return { id, title, caption, spec: labelBars(title, rows, keyTitle, sortBy) };
}

/** Early / mid / late turns per label (conversation-aware pipeline). */
export function positionChart(m: ReportManifest): ChartResult {
  const title = 'Turn position, before and after';
  if (m.pipeline && m.pipeline.name !== 'conversation') {
    return {
      id: 'turn-position',
      title,
      caption: '',
      spec: null,
      absent: `the ${m.pipeline.name} pipeline takes first turns only; positions apply to the conversation pipeline`,
    };
  }
  return profileChart(
    m,
    'turn-position',
    title,
    'Where each sample sits in its conversation (thirds of the turn count), per label.',
    (p) => p.position,
    'position',
    ['early', 'mid', 'late'],
  );
}

/** Samples per chosen model, the largest MAX_MODELS models and the rest together. */
export function modelMixChart(m: ReportManifest): ChartResult {
  const title = 'Model mix, before and after';
  const ps = profiles(m);
  const totals = new Map<string, number>();
  for (const { p } of ps)
    for (const [k, c] of Object.entries(p.model))
      totals.set(k, (totals.get(k) ?? 0) + c['0'] + c['1']);
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const kept = new Set(ranked.slice(0, MAX_MODELS).map(([k]) => k));
  const other = `(${ranked.length - kept.size} other models)`;
  const fold = (p: Profile) => {
    const out: Record<string, LabelCounts> = {};
    for (const [k, c] of Object.entries(p.model)) {
      const key = kept.has(k) ? k : other;
      const o = (out[key] ??= { '0': 0, '1': 0 });
      o['0'] += c['0'];
      o['1'] += c['1'];
    }
    return out;
  };
  const r = profileChart(
    m,
    'model-mix',
    title,
    'Samples by the model the user chose (Strategy 3: a free complexity signal), per label.',
    fold,
    'model',
    [...ranked.slice(0, MAX_MODELS).map(([k]) => k), other],
  );
  if (r.spec) {
    const inner = r.spec.spec as { encoding: Record<string, Record<string, unknown>> };
    inner.encoding.x!.axis = { labelAngle: -40, labelLimit: 140 };
  }
  return r;
}

/**
 * The complexity tier thresholds a build used, in words ("complexity thresholds 0.25 /
 * 0.6 (fitted: terciles of 1,234 first turns of the input)"), or null when the manifest
 * has none.
 */
export function complexityThresholdsNote(m: ReportManifest): string | null {
  const c = (m.config as { complexity?: unknown }).complexity as
    { tiers?: unknown; fitted?: { method?: string; rows?: number; source?: string } } | undefined;
  if (!c || !Array.isArray(c.tiers) || c.tiers.length !== 2) return null;
  const [lo, hi] = c.tiers as [number, number];
  const fit = c.fitted
    ? ` (fitted: ${c.fitted.method ?? 'quantiles'} of ${(c.fitted.rows ?? 0).toLocaleString('en-US')} ${c.fitted.source ?? 'rows'})`
    : '';
  return `complexity thresholds ${lo} / ${hi}${fit}`;
}

export function complexityChart(m: ReportManifest): ChartResult {
  const note = complexityThresholdsNote(m);
  return profileChart(
    m,
    'complexity',
    'Complexity tier, before and after',
    'Tier of the capped complexity score (Strategy 2: requests, duration, tool diversity, prompt growth)' +
      (note ? `; low below the first threshold, high from the second: ${note}.` : '.'),
    (p) => p.complexity,
    'tier',
    ['low', 'medium', 'high'],
  );
}

export function confidenceChart(m: ReportManifest): ChartResult {
  const title = 'Judge confidence, before and after';
  const ps = profiles(m);
  const any = ps.some(({ p }) => Object.keys(p.confidence).some((k) => k !== 'none'));
  if (ps.length > 0 && !any) {
    return {
      id: 'confidence',
      title,
      caption: '',
      spec: null,
      absent: 'the judge reported no confidence (no logprobs)',
    };
  }
  const bins = Array.from({ length: 10 }, (_, i) => (i / 10).toFixed(1));
  return profileChart(
    m,
    'confidence',
    title,
    'Probability of the chosen label, in bins of 0.1 ("0.9" holds 0.9 to 1.0); "none": no confidence given.',
    (p) => p.confidence,
    'confidence bin',
    [...bins, 'none'],
  );
}

/** How far a stratum fell below its nominal (fractional) quota, to two decimals. */
export const shortfallOf = (s: { nominal: number; selected: number }) =>
  Math.max(0, Math.round((s.nominal - s.selected) * 100) / 100);

/**
 * Per (label, stratum): distinct supply, rows selected, and the shortfall against the nominal quota.
 * In a waves build the supply is the judged samples only, and the caption says so.
 */
export function shortfallChart(m: ReportManifest): ChartResult {
  const title = 'Supply, selection and shortfall per stratum';
  const short = new Map(m.shortfalls.strata.map((s) => [`${s.label}|${s.stratum}`, s]));
  const rows = [];
  for (const l of ['0', '1'] as const) {
    const input = m.input.byLabelStratum[l] ?? {};
    const sel = m.selected.byLabelStratum[l] ?? {};
    const strata = [...new Set([...Object.keys(input), ...Object.keys(sel)])].sort();
    for (const s of strata) {
      const cell = `${LABEL_TITLES[l]} / ${s}`;
      const sf = short.get(`${l}|${s}`);
      // A stratum that fell short: its supply as the selection saw it (near-duplicates
      // of selected samples taken out); otherwise the distinct rows labelled into it.
      const values: [string, number][] = [
        ['available', sf ? sf.available : (input[s]?.unique ?? 0)],
        ['selected', sel[s] ?? 0],
        ['shortfall', sf ? shortfallOf(sf) : 0],
      ];
      const removed = m.nearDuplicates?.byLabelStratum[l]?.[s];
      if (removed) values.push(['near-duplicates removed', removed]);
      for (const [measure, n] of values)
        rows.push({ cell, measure, count: n, description: `${cell} · ${measure}: ${n}` });
    }
  }
  const n = m.shortfalls.strata.length;
  // With waves the balancer sees only judged rows (the planner's selection): "available" is what was judged.
  const among = m.waves ? ' among the judged samples' : '';
  const caption =
    n === 0
      ? `No stratum fell short of its nominal quota${among}.`
      : `${n} stratum cell(s) held fewer distinct samples than their nominal quota${among}; the difference was redistributed to the others.` +
        (m.nearDuplicates
          ? ' Available in a short cell: its supply less the near-duplicates of selected samples.'
          : '');
  return {
    id: 'shortfalls',
    title,
    caption: m.waves
      ? `${caption} Available: the judged samples the wave planner offered the balancer, not all that exist ` +
        `(waves judge only what the quotas need; see the waves charts).`
      : caption,
    spec: groupedBars(title, rows, CELL_Y, {
      available: '#bab0ac',
      selected: '#54a24b',
      shortfall: '#e45756',
      ...(m.nearDuplicates ? { 'near-duplicates removed': '#f58518' } : {}),
    }),
  };
}

/**
 * Horizontal bars, one group per `y` value (a class × stratum cell, a wave), one bar
 * per measure side by side (rows: `{[y], measure, count, description}`), measures in
 * the order and colours given.
 */
function groupedBars(
  title: string,
  rows: readonly Record<string, unknown>[],
  y: { field: string } & Record<string, unknown>,
  colors: Record<string, string>,
): VegaLiteSpec {
  const measures = Object.keys(colors);
  const { field, ...yRest } = y;
  return {
    ...base(title),
    width: 460,
    data: { values: rows },
    mark: { type: 'bar' },
    encoding: {
      y: { field, type: 'nominal', title: null, ...yRest },
      yOffset: { field: 'measure', type: 'nominal', sort: measures },
      x: { field: 'count', type: 'quantitative', title: 'samples' },
      color: {
        field: 'measure',
        type: 'nominal',
        title: null,
        scale: { domain: measures, range: Object.values(colors) },
      },
      description: { field: 'description', type: 'nominal' },
    },
    height: { step: 10 },
  };
}

/** A class × stratum cell as the y of grouped bars. */
const CELL_Y = { field: 'cell', axis: { labelLimit: 260 } };

/** Judge work: samples and calls, cache hits, and tokens when the judge reported them. */
export function judgeChart(m: ReportManifest): ChartResult {
  const title = 'Judge cost and cache hits';
  const j = m.judge;
  if (!j)
    return {
      id: 'judge',
      title,
      caption: '',
      spec: null,
      absent: 'no judge section (balance of pre-labelled rows)',
    };
  const s = j.stats;
  const rows: { group: string; measure: string; count: number; description: string }[] = [];
  const add = (group: string, measure: string, n: number) =>
    rows.push({ group, measure, count: n, description: `${measure}: ${n}` });
  add('samples', 'labelled', j.labelled);
  add('samples', 'unlabeled', j.unlabeled);
  add('samples', 'cache hits', s?.cacheHits ?? 0);
  add('requests', 'calls', j.calls);
  if (s) {
    add('requests', 'retries', s.retries);
    add('requests', 're-asks', s.reasked);
    add('tokens', 'prompt (uncached)', Math.max(0, s.promptTokens - s.cachedTokens));
    add('tokens', 'prompt (cached)', s.cachedTokens);
    add('tokens', 'completion', s.completionTokens);
  }
  const cost = s
    ? `Estimated cost ${s.estimatedCost.toFixed(4)}.`
    : 'The judge reported no token usage.';
  return {
    id: 'judge',
    title,
    caption: `Judge ${j.name}. ${cost}`,
    spec: {
      ...base(title),
      data: { values: rows },
      facet: {
        row: {
          field: 'group',
          type: 'nominal',
          title: null,
          sort: ['samples', 'requests', 'tokens'],
        },
      },
      spec: {
        width: 380,
        mark: { type: 'bar', color: '#72b7b2' },
        encoding: {
          y: { field: 'measure', type: 'nominal', title: null, sort: null },
          x: { field: 'count', type: 'quantitative', title: null },
          description: { field: 'description', type: 'nominal' },
        },
      },
      resolve: { scale: { x: 'independent', y: 'independent' } },
    },
  };
}

/** Why the wave charts are absent from a build that judged every sample. */
export const NO_WAVES = 'no waves (every sample judged)';

/** Per wave of yield-aware judging: samples judged and labels found per class. */
export function wavesChart(m: ReportManifest): ChartResult {
  const title = 'Judging in waves: samples judged and labels found';
  const w = m.waves;
  if (!w) return { id: 'waves', title, caption: '', spec: null, absent: NO_WAVES };
  if (w.waves.length === 0)
    return { id: 'waves', title, caption: '', spec: null, absent: 'no wave was judged' };
  const measures = ['judged', LABEL_TITLES['0'], LABEL_TITLES['1']];
  const rows = [];
  for (const x of w.waves) {
    const wave = `wave ${x.wave} (${x.kind})`;
    const requests = x.requests !== undefined ? ` in ${x.requests} request(s)` : '';
    rows.push({
      wave,
      measure: 'judged',
      count: x.judged,
      description: `${wave} · judged: ${x.judged}${requests}`,
    });
    for (const l of ['0', '1'] as const)
      rows.push({
        wave,
        measure: LABEL_TITLES[l],
        count: x.found[l],
        description: `${wave} · ${LABEL_TITLES[l]} found: ${x.found[l]}`,
      });
  }
  const reported = w.waves.filter((x) => x.requests !== undefined);
  const requests = reported.reduce((s, x) => s + (x.requests ?? 0), 0);
  const requestText =
    reported.length === w.waves.length
      ? `${requests} judge request(s)`
      : reported.length === 0
        ? 'judge requests not recorded'
        : `${requests} judge request(s) in the ${reported.length} wave(s) that recorded them`;
  const delivered = m.selected.total;
  const perDelivered =
    delivered > 0
      ? `${(w.judged / delivered).toFixed(3)} samples judged per delivered sample (${delivered} delivered)`
      : 'no sample delivered';
  const of = w.samples !== undefined ? ` of ${w.samples}` : '';
  return {
    id: 'waves',
    title,
    caption:
      `Outcome: ${w.outcome}. ${w.judged}${of} samples judged in ${w.waves.length} wave(s), ` +
      `${requestText}; ${perDelivered}. Wave 1 is a stratified pilot; later waves judge ` +
      `where the quotas still open are most likely to be filled.`,
    spec: groupedBars(
      title,
      rows,
      { field: 'wave', sort: null },
      Object.fromEntries(measures.map((m, i) => [m, ['#bab0ac', ...LABEL_COLORS][i]!])),
    ),
  };
}

/** Per (label, stratum) of a wave-judged build: the full-judging target, the planner's quota, delivered rows. */
export function wavesStrataChart(m: ReportManifest): ChartResult {
  const title = 'Judging in waves: delivered strata beside the target';
  const w = m.waves;
  if (!w) return { id: 'waves-strata', title, caption: '', spec: null, absent: NO_WAVES };
  const strata = w.strata ?? [];
  if (strata.length === 0)
    return {
      id: 'waves-strata',
      title,
      caption: '',
      spec: null,
      absent: 'the waves section holds no per-stratum delivery',
    };
  const rows = [];
  let met = 0;
  let worst: { cell: string; gap: number; target: number; delivered: number } | null = null;
  for (const s of strata) {
    const cell = `${LABEL_TITLES[s.label === 0 ? '0' : '1']} / ${s.stratum}`;
    const values: [string, number][] = [
      ['target', s.target],
      ['quota', s.quota],
      ['delivered', s.delivered],
    ];
    for (const [measure, n] of values)
      rows.push({ cell, measure, count: n, description: `${cell} · ${measure}: ${n}` });
    if (s.delivered >= s.quota) met++;
    if (s.target > 0) {
      const gap = Math.abs(s.delivered - s.target) / s.target;
      if (!worst || gap > worst.gap)
        worst = { cell, gap, target: s.target, delivered: s.delivered };
    }
  }
  const gap = worst
    ? `The largest gap to the target is ${pct(Math.abs(worst.delivered - worst.target), worst.target)} ` +
      `(${worst.cell}: ${worst.delivered} delivered, target ${worst.target}).`
    : 'No cell has a target above zero.';
  return {
    id: 'waves-strata',
    title,
    caption:
      `${met} of ${strata.length} class × stratum cell(s) delivered their quota. ${gap} ` +
      `Target: what judging every sample would give (estimated); quota: what the wave planner set.`,
    spec: groupedBars(title, rows, CELL_Y, {
      target: '#bab0ac',
      quota: '#72b7b2',
      delivered: '#54a24b',
    }),
  };
}

export function quarantineChart(m: ReportManifest): ChartResult {
  const title = 'Quarantined rows by reason';
  const entries = Object.entries(m.quarantine.byReason).filter(([, n]) => n > 0);
  if (entries.length === 0)
    return { id: 'quarantine', title, caption: '', spec: null, absent: 'no row was quarantined' };
  const rows = entries.map(([reason, n]) => ({ reason, count: n, description: `${reason}: ${n}` }));
  return {
    id: 'quarantine',
    title,
    caption: `${m.quarantine.total} row(s) set aside with their reason in quarantine.jsonl.`,
    spec: {
      ...base(title),
      width: 380,
      data: { values: rows },
      mark: { type: 'bar', color: '#e45756' },
      encoding: {
        y: { field: 'reason', type: 'nominal', title: null, sort: '-x' },
        x: {
          field: 'count',
          type: 'quantitative',
          title: 'rows',
          axis: { tickMinStep: 1, format: 'd' },
        },
        description: { field: 'description', type: 'nominal' },
      },
    },
  };
}

/** Every chart of the report, in page order. */
export function reportCharts(m: ReportManifest): ChartResult[] {
  return [
    classRatioChart(m),
    turnCountChart(m),
    positionChart(m),
    modelMixChart(m),
    complexityChart(m),
    confidenceChart(m),
    shortfallChart(m),
    judgeChart(m),
    wavesChart(m),
    wavesStrataChart(m),
    quarantineChart(m),
  ];
}
