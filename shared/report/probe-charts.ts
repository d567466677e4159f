/**
 * The router probe in the build report (manifest.probe, docs/probe.md): the ROC curves of
 * the text and signals probes, their AUC per stratum and per turn position, the routing
 * curve, and the verdict (text and signals AUC side by side, with the plain reading).
 * Pure, like specs.ts: each chart builder returns a Vega-Lite spec or why it is absent.
 */
import { z } from 'zod';
import type { ChartResult, VegaLiteSpec } from './specs';

const auc = z.number().nullable();
const FiguresSchema = z.looseObject({
  n: z.number(),
  auc,
  aucCi: z.tuple([z.number(), z.number()]).nullable(),
});
const EvaluationSchema = FiguresSchema.extend({
  roc: z.array(z.object({ fpr: z.number(), tpr: z.number() })),
  routing: z.array(
    z.looseObject({ threshold: z.number(), share: z.number(), recall: z.number().nullable() }),
  ),
  byStratum: z.record(z.string(), FiguresSchema),
  byPosition: z.record(z.string(), FiguresSchema),
});
const ReportSchema = z.looseObject({ evaluations: z.record(z.string(), EvaluationSchema) });

/** What the report reads of manifest.probe (a loose view: other fields are kept, not checked). */
export const ProbeSectionSchema = z.looseObject({
  status: z.string(),
  message: z.string(),
  text: ReportSchema.nullable().optional(),
  signals: ReportSchema.nullable().optional(),
  verdict: z
    .looseObject({
      kind: z.string(),
      on: z.string(),
      textAuc: auc,
      signalsAuc: auc,
      message: z.string(),
    })
    .nullable()
    .optional(),
});
export type ProbeSection = z.infer<typeof ProbeSectionSchema>;
type Evaluation = z.infer<typeof EvaluationSchema>;

/** The probe section of a manifest, or null when it has none (or one the report cannot read). */
export function probeSectionOf(manifest: unknown): ProbeSection | null {
  const probe = (manifest as { probe?: unknown } | null)?.probe;
  if (probe === undefined) return null;
  const parsed = ProbeSectionSchema.safeParse(probe);
  return parsed.success ? parsed.data : null;
}

const PROBE_COLORS = { text: '#4c78a8', signals: '#e45756' };
const probeColor = {
  field: 'probe',
  type: 'nominal',
  title: 'probe',
  scale: { domain: ['text', 'signals'], range: [PROBE_COLORS.text, PROBE_COLORS.signals] },
};
const fmt = (x: number | null | undefined) =>
  x === null || x === undefined ? 'n/a' : x.toFixed(3);

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

/** Why the probe charts are absent, or null with the evaluation the verdict reads. */
function evaluations(
  p: ProbeSection | null,
): { absent: string } | { on: string; text: Evaluation; signals: Evaluation | undefined } {
  if (!p) return { absent: 'the manifest has no probe section' };
  if (p.status === 'off') return { absent: 'the probe was turned off' };
  if (p.status !== 'ok' || !p.verdict) return { absent: `the probe did not run: ${p.message}` };
  const on = p.verdict.on;
  const text = p.text?.evaluations[on];
  if (!text) return { absent: `the probe has no ${on} evaluation` };
  return { on, text, signals: p.signals?.evaluations[on] };
}

const where = (on: string) => (on === 'cv' ? 'out-of-fold (cross-validation)' : `on ${on}`);

/** ROC curves of both probes with the chance diagonal. */
export function probeRocChart(p: ProbeSection | null): ChartResult {
  const title = 'Router probe: ROC curve';
  const e = evaluations(p);
  if ('absent' in e) return { id: 'probe-roc', title, caption: '', spec: null, absent: e.absent };
  const rows: Record<string, unknown>[] = [];
  const add = (probe: 'text' | 'signals', ev: Evaluation | undefined) => {
    if (!ev) return;
    ev.roc.forEach((pt, i) =>
      rows.push({
        probe,
        i,
        fpr: pt.fpr,
        tpr: pt.tpr,
        description: `${probe} probe · false positive rate ${fmt(pt.fpr)} · true positive rate ${fmt(pt.tpr)}`,
      }),
    );
  };
  add('text', e.text);
  add('signals', e.signals);
  const axis = { type: 'quantitative', scale: { domain: [0, 1] } } as const;
  return {
    id: 'probe-roc',
    title,
    caption:
      `Scored ${where(e.on)}, ${e.text.n} samples; positive class reasoning. ` +
      `Text AUC ${fmt(e.text.auc)}${e.text.aucCi ? ` [${fmt(e.text.aucCi[0])}, ${fmt(e.text.aucCi[1])}]` : ''}, ` +
      `signals AUC ${fmt(e.signals?.auc)}. The dashed diagonal is chance (AUC 0.5).`,
    spec: {
      ...base(title),
      width: 300,
      height: 300,
      layer: [
        {
          data: {
            values: [
              { x: 0, y: 0 },
              { x: 1, y: 1 },
            ],
          },
          mark: { type: 'line', strokeDash: [4, 4], color: '#999' },
          encoding: { x: { field: 'x', ...axis }, y: { field: 'y', ...axis } },
        },
        {
          data: { values: rows },
          mark: { type: 'line', point: { size: 12 } },
          encoding: {
            x: { field: 'fpr', ...axis, title: 'false positive rate' },
            y: { field: 'tpr', ...axis, title: 'true positive rate (recall of reasoning)' },
            color: probeColor,
            order: { field: 'i' },
            description: { field: 'description', type: 'nominal' },
          },
        },
      ],
    },
  };
}

/** AUC of both probes per stratum and per turn position. */
export function probeStrataChart(p: ProbeSection | null): ChartResult {
  const title = 'Router probe: AUC per stratum and turn position';
  const e = evaluations(p);
  if ('absent' in e)
    return { id: 'probe-strata', title, caption: '', spec: null, absent: e.absent };
  const rows: Record<string, unknown>[] = [];
  const groups: [string, 'byStratum' | 'byPosition'][] = [
    ['stratum', 'byStratum'],
    ['position', 'byPosition'],
  ];
  for (const [kind, key] of groups)
    for (const [probe, ev] of [
      ['text', e.text],
      ['signals', e.signals],
    ] as const) {
      if (!ev) continue;
      for (const [name, f] of Object.entries(ev[key])) {
        if (f.auc === null) continue;
        const cell = `${kind} ${name}`;
        rows.push({
          cell,
          probe,
          auc: f.auc,
          description: `${cell} · ${probe} AUC ${fmt(f.auc)} (n ${f.n})`,
        });
      }
    }
  if (rows.length === 0)
    return {
      id: 'probe-strata',
      title,
      caption: '',
      spec: null,
      absent: 'no stratum or position has both classes',
    };
  return {
    id: 'probe-strata',
    title,
    caption:
      `AUC ${where(e.on)} per stratum and per turn position (a cell with one class has none). ` +
      `Where the signals bar stands well above the text bar, the labels of that cell follow the signals.`,
    spec: {
      ...base(title),
      width: 380,
      data: { values: rows },
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'cell', type: 'nominal', title: null, sort: null, axis: { labelLimit: 260 } },
        yOffset: { field: 'probe', sort: ['text', 'signals'] },
        x: { field: 'auc', type: 'quantitative', title: 'ROC AUC', scale: { domain: [0, 1] } },
        color: probeColor,
        description: { field: 'description', type: 'nominal' },
      },
    },
  };
}

/** Share of requests sent to the reasoning model against the recall of reasoning-needed ones. */
export function probeRoutingChart(p: ProbeSection | null): ChartResult {
  const title = 'Router probe: routing curve';
  const e = evaluations(p);
  if ('absent' in e)
    return { id: 'probe-routing', title, caption: '', spec: null, absent: e.absent };
  const rows = e.text.routing
    .filter((r) => r.recall !== null)
    .map((r) => ({
      threshold: r.threshold,
      share: r.share,
      recall: r.recall,
      description: `threshold ${r.threshold} · ${(100 * r.share).toFixed(1)}% to the reasoning model · recall ${(100 * r.recall!).toFixed(1)}%`,
    }));
  if (rows.length === 0)
    return {
      id: 'probe-routing',
      title,
      caption: '',
      spec: null,
      absent: 'no reasoning-needed sample was scored',
    };
  const half = rows.find((r) => r.threshold === 0.5);
  const axis = { type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '%' } } as const;
  return {
    id: 'probe-routing',
    title,
    caption:
      `The text probe as a router, ${where(e.on)}: at each probability threshold, the share of ` +
      `requests it sends to the reasoning model and the share of reasoning-needed requests that reach it.` +
      (half
        ? ` At 0.5: ${(100 * half.share).toFixed(0)}% sent, ${(100 * half.recall!).toFixed(0)}% recall.`
        : '') +
      ` On a balanced dataset the share is of the balanced mix, not of production traffic.`,
    spec: {
      ...base(title),
      width: 300,
      height: 260,
      data: { values: rows },
      mark: { type: 'line', point: true, color: PROBE_COLORS.text },
      encoding: {
        x: { field: 'share', ...axis, title: 'share sent to the reasoning model' },
        y: { field: 'recall', ...axis, title: 'recall of reasoning-needed requests' },
        order: { field: 'threshold' },
        description: { field: 'description', type: 'nominal' },
      },
    },
  };
}

export function probeCharts(manifest: unknown): ChartResult[] {
  const p = probeSectionOf(manifest);
  return [probeRocChart(p), probeStrataChart(p), probeRoutingChart(p)];
}

/** The verdict line of the page: the plain reading, with both AUCs. */
export interface ProbeVerdictView {
  kind: string;
  message: string;
  textAuc: number | null;
  signalsAuc: number | null;
}

export function probeVerdictOf(manifest: unknown): ProbeVerdictView | null {
  const p = probeSectionOf(manifest);
  if (!p) return null;
  if (p.status === 'ok' && p.verdict)
    return {
      kind: p.verdict.kind,
      message: p.verdict.message,
      textAuc: p.verdict.textAuc,
      signalsAuc: p.verdict.signalsAuc,
    };
  return { kind: p.status, message: p.message, textAuc: null, signalsAuc: null };
}
