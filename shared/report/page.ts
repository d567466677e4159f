/**
 * The report page: a model of what it shows (facts and charts) from the manifest,
 * and the HTML around the rendered charts. Self-contained: inline CSS and inline
 * SVG, no script, no external reference, so it opens from a blob URL or a disk.
 * Every string that came from telemetry or settings is escaped here.
 */
import type { ReportManifest } from './manifest';
import { complexityThresholdsNote, reportCharts, type ChartResult } from './specs';
import { probeCharts, probeVerdictOf, type ProbeVerdictView } from './probe-charts';

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

/**
 * A number shown on the page, with the manifest path it comes from (`data-key`), or,
 * when `derived`, the formula over manifest paths that computes it (`data-derived`).
 */
export interface Fact {
  key: string;
  label: string;
  value: number | string;
  derived?: boolean;
}

export interface ReportModel {
  title: string;
  subtitle: string;
  /** Shown in the header: the data was labelled by the offline signals heuristic. */
  warning?: string;
  facts: Fact[];
  charts: ChartResult[];
  /** The router probe's verdict (manifest.probe), shown above the charts. */
  probe?: ProbeVerdictView;
}

const num = (n: number) => n.toLocaleString('en-US');

/** The header's warning on a build labelled by the signals judge. */
export const SIGNALS_WARNING =
  'Labelled by the offline signals heuristic — not for training a production router (use --judge openai|azure, SFT_JUDGE=openai).';

/** Near-duplicates removed, in all and per class × stratum (docs/dedup.md). */
function nearDuplicateFacts(m: ReportManifest): Fact[] {
  const n = m.nearDuplicates;
  if (!n) return [];
  const facts: Fact[] = [
    {
      key: 'nearDuplicates.removed',
      label: `near-duplicates removed (Jaccard ≥ ${n.threshold})`,
      value: n.removed,
    },
  ];
  for (const [label, byStratum] of Object.entries(n.byLabelStratum))
    for (const [stratum, v] of Object.entries(byStratum))
      facts.push({
        key: `nearDuplicates.byLabelStratum.${label}.${stratum}`,
        label: `near-duplicates ${label === '0' ? 'reasoning' : 'non_reasoning'} / ${stratum}`,
        value: v,
      });
  return facts;
}

/** What the page shows, from the manifest alone. */
export function reportModel(m: ReportManifest): ReportModel {
  const id = m.build?.id;
  const source = typeof m.source === 'string' ? m.source : undefined;
  const facts: Fact[] = [
    { key: 'input.rows', label: 'input rows', value: m.input.rows },
    { key: 'input.valid', label: 'valid distinct', value: m.input.valid },
    { key: 'input.quarantined', label: 'quarantined', value: m.input.quarantined },
    {
      key: 'input.duplicatesRemoved',
      label: 'duplicates removed',
      value: m.input.duplicatesRemoved,
    },
    { key: 'input.outOfStrata', label: 'outside strata', value: m.input.outOfStrata },
    ...nearDuplicateFacts(m),
    { key: 'targets.total', label: 'target', value: m.targets.total },
    { key: 'selected.total', label: 'selected', value: m.selected.total },
    { key: 'selected.byLabel.0', label: 'selected reasoning', value: m.selected.byLabel['0'] ?? 0 },
    {
      key: 'selected.byLabel.1',
      label: 'selected non_reasoning',
      value: m.selected.byLabel['1'] ?? 0,
    },
    { key: 'selected.upsampled', label: 'upsampled copies', value: m.selected.upsampled },
    { key: 'split.train', label: 'train', value: m.split.train },
    { key: 'split.validation', label: 'validation', value: m.split.validation },
  ];
  if (m.judge) {
    facts.push(
      { key: 'judge.samplesJudged', label: 'samples judged', value: m.judge.samplesJudged },
      { key: 'judge.unlabeled', label: 'unlabeled', value: m.judge.unlabeled },
      { key: 'judge.calls', label: 'judge calls', value: m.judge.calls },
    );
    const s = m.judge.stats;
    if (s && m.judge.cost)
      facts.push({ key: 'judge.stats.cacheHits', label: 'cache hits', value: s.cacheHits });
    else if (s) {
      facts.push(
        { key: 'judge.stats.cacheHits', label: 'cache hits', value: s.cacheHits },
        { key: 'judge.stats.promptTokens', label: 'prompt tokens', value: s.promptTokens },
        {
          key: 'judge.stats.completionTokens',
          label: 'completion tokens',
          value: s.completionTokens,
        },
        { key: 'judge.stats.estimatedCost', label: 'estimated cost', value: s.estimatedCost },
      );
    }
  }
  const c = m.judge?.cost;
  if (c) {
    facts.push(
      { key: 'judge.cost.promptTokens', label: 'prompt tokens', value: c.promptTokens },
      { key: 'judge.cost.cachedTokens', label: 'cached prompt tokens', value: c.cachedTokens },
      { key: 'judge.cost.completionTokens', label: 'completion tokens', value: c.completionTokens },
      {
        key: 'judge.cost.estimatedCost',
        label: `estimated cost (${c.currency})`,
        value: c.estimatedCost,
      },
    );
    if (c.pricing)
      facts.push({ key: 'judge.cost.pricing.note', label: 'prices', value: c.pricing.note });
  }
  const w = m.waves;
  if (w) {
    facts.push(
      { key: 'waves.outcome', label: 'wave outcome', value: w.outcome },
      { key: 'waves.judged', label: 'judged in waves', value: w.judged },
      { key: 'waves.waves.length', label: 'waves', value: w.waves.length },
    );
    // As the waves chart's caption: none when nothing was delivered.
    if (m.selected.total > 0)
      facts.push({
        key: 'waves.judged / selected.total',
        label: 'judged per delivered sample',
        value: (w.judged / m.selected.total).toFixed(3),
        derived: true,
      });
  }
  const probe = probeVerdictOf(m);
  if (probe && probe.textAuc !== null) {
    facts.push({ key: 'probe.verdict.textAuc', label: 'probe text AUC', value: probe.textAuc });
    if (probe.signalsAuc !== null)
      facts.push({
        key: 'probe.verdict.signalsAuc',
        label: 'probe signals AUC',
        value: probe.signalsAuc,
      });
  }
  const parts = [
    m.pipeline ? `${m.pipeline.name} pipeline` : (m.command ?? 'balance'),
    m.judge ? `judge ${m.judge.labelledBy?.name ?? m.judge.name}` : null,
    m.judge?.labelledBy?.rubricVersion ? `rubric ${m.judge.labelledBy.rubricVersion}` : null,
    `ratio ${m.config.ratio}`,
    `stratify ${m.config.stratify.join(', ') || '(none)'}`,
    m.config.allocation ? `allocation ${m.config.allocation}` : null,
    `seed ${String(m.seed)}`,
    m.config.stratify.includes('complexity') ||
    (m.config as { complexity?: { fitted?: unknown } }).complexity?.fitted
      ? complexityThresholdsNote(m)
      : null,
    source ? `source ${source}` : null,
  ].filter((x): x is string => x !== null);
  const heuristic = m.judge
    ? m.judge.labelledBy
      ? m.judge.labelledBy.kind === 'heuristic'
      : m.judge.name.startsWith('signals')
    : false;
  return {
    title: id ? `Build ${id}` : 'Build report',
    subtitle: parts.join(' · '),
    ...(heuristic ? { warning: SIGNALS_WARNING } : {}),
    facts,
    charts: [...reportCharts(m), ...probeCharts(m)],
    ...(probe ? { probe } : {}),
  };
}

const CSS = `
body{font:14px/1.45 Helvetica,Arial,sans-serif;color:#222;margin:0;background:#f6f6f4}
header{background:#23395b;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;opacity:.85}
header p.warning{margin-top:8px;opacity:1;background:#ffe08a;color:#3a2a00;padding:6px 10px;border-radius:4px;font-weight:600}
main{padding:20px 28px;max-width:1200px}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin:0 0 20px;padding:0}
.facts div{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 10px}
.facts dt{font-size:11px;color:#666;text-transform:uppercase;letter-spacing:.03em}
.facts dd{margin:2px 0 0;font-size:18px;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0;padding:12px;max-width:100%;overflow-x:auto}
figure.absent{color:#777;min-width:260px}
figure h2{font-size:14px;margin:0 0 6px}
figcaption{font-size:12px;color:#555;max-width:520px;margin-top:6px}
section.probe{background:#fff;border:1px solid #ddd;border-left:4px solid #4c78a8;border-radius:6px;padding:10px 14px;margin:0 0 20px}
section.probe[data-probe-verdict=signals],section.probe[data-probe-verdict=weak]{border-left-color:#e45756}
section.probe h2{font-size:14px;margin:0 0 4px}
section.probe p{margin:0}
footer{font-size:11px;color:#777;padding:0 28px 24px}
`;

/** The probe's verdict: text and signals AUC side by side, and the plain reading. */
function probeSection(p: ProbeVerdictView): string {
  const e = escapeHtml;
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
  const aucs =
    p.textAuc !== null
      ? `<p>Text probe AUC <strong data-probe-auc="text">${f(p.textAuc)}</strong> · signals probe AUC <strong data-probe-auc="signals">${f(p.signalsAuc)}</strong></p>`
      : '';
  return `<section class="probe" data-probe-verdict="${e(p.kind)}"><h2>Router probe: ${e(p.kind)}</h2>${aucs}<p data-probe-message="true">${e(p.message)}</p></section>
`;
}

/**
 * The whole page. `svgs` maps chart ids to SVG markup rendered by the charting
 * library from the same specs (the library escapes the text it draws).
 */
export function renderPage(model: ReportModel, svgs: Readonly<Record<string, string>>): string {
  const e = escapeHtml;
  const facts = model.facts
    .map(
      (f) =>
        `<div><dt>${e(f.label)}</dt><dd data-${f.derived ? 'derived' : 'key'}="${e(f.key)}" data-value="${e(String(f.value))}">${e(
          typeof f.value === 'number' ? num(f.value) : f.value,
        )}</dd></div>`,
    )
    .join('\n');
  const charts = model.charts
    .map((c) => {
      const svg = svgs[c.id];
      if (!c.spec || svg === undefined) {
        return `<figure class="absent" data-chart="${e(c.id)}" data-absent="true"><h2>${e(c.title)}</h2><p>Not shown: ${e(
          c.absent ?? 'nothing to draw',
        )}.</p></figure>`;
      }
      return `<figure data-chart="${e(c.id)}" id="chart-${e(c.id)}"><div class="svg">${svg}</div><figcaption>${e(
        c.caption,
      )}</figcaption></figure>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${e(model.title)} · sft-balancer</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${e(model.title)}</h1><p>${e(model.subtitle)}</p>${
    model.warning
      ? `<p class="warning" role="alert" data-warning="signals">${e(model.warning)}</p>`
      : ''
  }</header>
<main>
<dl class="facts">
${facts}
</dl>
${model.probe ? probeSection(model.probe) : ''}<section class="charts">
${charts}
</section>
</main>
<footer>Written by sft-balancer from manifest.json; charts rendered at build time with Vega-Lite.</footer>
</body>
</html>
`;
}
