/**
 * The report's wave charts (yield-aware judging): drawn from real manifests written by
 * `run --in-process` with waves (replay judge over generated annotated telemetry), and
 * absent, with the reason, from a build that judged every sample.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readReplayLabels } from '../../adapters/judge/factory';
import { renderReport } from '../../adapters/files/report';
import { runPipeline } from '../../cli/jobs';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { generateTelemetry } from '../../shared/source/generate';
import { createReplayJudge, lookupBySampleId } from '../../shared/judge/replay';
import { ReportManifestSchema, type ReportManifest } from '../../shared/report/manifest';
import { reportCharts, wavesChart, wavesStrataChart } from '../../shared/report/specs';
import { DEFAULT_HISTORY } from '../../shared/samples/assemble';
import type { WaveSettingsInput } from '../../shared/waves/planner';
import { conversationRows, manifestOf } from './fixture';

type Datum = Record<string, unknown> & { count: number; description: string };
const valuesOf = (spec: Record<string, unknown> | null): Datum[] =>
  (spec!.data as { values: Datum[] }).values;

const NAMES = { 0: 'reasoning', 1: 'non_reasoning' } as const;

let dir: string;
let telemetry: string;

/** manifest.json of a wave-judged `run --in-process` over the generated telemetry. */
async function wavesManifest(name: string, waves: WaveSettingsInput): Promise<unknown> {
  const out = join(dir, name);
  const labels = await readReplayLabels(telemetry);
  const job = await runPipeline(
    telemetry,
    out,
    // The waves planner's quotas assume exact dedup only: near-dedup off, as the captions'
    // counts are the point here (near-dedup's removals are not planned for by the waves).
    parseBalanceConfig({
      total: 600,
      ratio: 0.7,
      stratify: ['turnBucket'],
      seed: 5,
      nearDedup: false,
    }),
    {
      pipeline: 'session',
      history: DEFAULT_HISTORY,
      judge: createReplayJudge('replay:test', lookupBySampleId(labels)),
      batchSize: 20,
      quiet: true,
      waves,
    },
  );
  return JSON.parse(await readFile(job.manifestPath, 'utf8')) as unknown;
}

let met: { raw: unknown; m: ReportManifest };
let budget: { raw: unknown; m: ReportManifest };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'report-waves-'));
  telemetry = join(dir, 'telemetry.jsonl');
  const lines = [...generateTelemetry({ conversations: 3000, seed: 3, annotated: true })].map((t) =>
    JSON.stringify(t),
  );
  await writeFile(telemetry, lines.join('\n') + '\n');
  const a = await wavesManifest('met', {});
  const b = await wavesManifest('budget', { maxJudged: 300 });
  met = { raw: a, m: ReportManifestSchema.parse(a) };
  budget = { raw: b, m: ReportManifestSchema.parse(b) };
}, 120_000);

describe('waves chart', () => {
  it('draws, per wave, exactly the samples judged and labels found by class', () => {
    for (const { m } of [met, budget]) {
      const w = m.waves!;
      expect(w.waves.length).toBeGreaterThan(0);
      const v = valuesOf(wavesChart(m).spec);
      expect(v).toHaveLength(3 * w.waves.length);
      for (const x of w.waves) {
        const at = (measure: string) =>
          v.filter((d) => d.wave === `wave ${x.wave} (${x.kind})` && d.measure === measure);
        expect(at('judged').map((d) => d.count)).toEqual([x.judged]);
        expect(at('reasoning').map((d) => d.count)).toEqual([x.found['0']]);
        expect(at('non_reasoning').map((d) => d.count)).toEqual([x.found['1']]);
        expect(at('judged')[0]!.description).toBe(
          `wave ${x.wave} (${x.kind}) · judged: ${x.judged} in ${x.requests} request(s)`,
        );
        expect(at('reasoning')[0]!.description).toContain(`reasoning found: ${x.found['0']}`);
      }
      // The bars add up to the section's total.
      const judged = v.filter((d) => d.measure === 'judged').reduce((s, d) => s + d.count, 0);
      expect(judged).toBe(w.judged);
    }
  });

  it('captions the outcome, samples judged, requests and samples judged per delivered sample', () => {
    for (const { m } of [met, budget]) {
      const w = m.waves!;
      const caption = wavesChart(m).caption;
      const requests = w.waves.reduce((s, x) => s + x.requests!, 0);
      const ratio = (w.judged / m.selected.total).toFixed(3);
      expect(caption).toContain(`Outcome: ${w.outcome}.`);
      expect(caption).toContain(`${w.judged} of ${w.samples} samples judged`);
      expect(caption).toContain(`${requests} judge request(s)`);
      expect(caption).toContain(`${ratio} samples judged per delivered sample`);
      // The judge's own count of calls agrees with the waves' requests.
      expect(requests).toBe(m.judge!.calls);
    }
    expect(met.m.waves!.outcome).toBe('quotas-met');
    expect(budget.m.waves!.outcome).toBe('budget-exhausted');
    expect(budget.m.waves!.judged).toBe(300);
    expect(wavesChart(budget.m).caption).not.toBe(wavesChart(met.m).caption);
  });
});

describe('waves strata chart', () => {
  it('draws target, quota and delivered of every class × stratum cell', () => {
    for (const { m } of [met, budget]) {
      const strata = m.waves!.strata!;
      expect(strata.length).toBeGreaterThan(0);
      const v = valuesOf(wavesStrataChart(m).spec);
      expect(v).toHaveLength(3 * strata.length);
      for (const s of strata) {
        const cell = `${NAMES[s.label]} / ${s.stratum}`;
        const at = (measure: string) =>
          v.filter((d) => d.cell === cell && d.measure === measure).map((d) => d.count);
        expect(at('target'), cell).toEqual([s.target]);
        expect(at('quota'), cell).toEqual([s.quota]);
        expect(at('delivered'), cell).toEqual([s.delivered]);
        // Delivered is what the selection holds in that cell.
        expect(m.selected.byLabelStratum[String(s.label)]?.[s.stratum] ?? 0).toBe(s.delivered);
      }
    }
  });

  it('captions the cells that delivered their quota and the largest gap to the target', () => {
    for (const { m } of [met, budget]) {
      const strata = m.waves!.strata!;
      const caption = wavesStrataChart(m).caption;
      const ok = strata.filter((s) => s.delivered >= s.quota).length;
      expect(caption).toContain(`${ok} of ${strata.length} class × stratum cell(s)`);
      const worst = strata
        .filter((s) => s.target > 0)
        .map((s) => Math.abs(s.delivered - s.target) / s.target)
        .reduce((a, b) => Math.max(a, b), 0);
      expect(caption).toContain(`largest gap to the target is ${(100 * worst).toFixed(1)}%`);
    }
    // With every quota met every cell delivered it; a tight budget leaves cells short.
    const all = met.m.waves!.strata!.length;
    expect(wavesStrataChart(met.m).caption).toContain(`${all} of ${all} `);
    expect(budget.m.waves!.strata!.some((s) => s.delivered < s.quota)).toBe(true);
  });

  it('every drawn chart of a waves build names its count on each datum', () => {
    const charts = reportCharts(met.m);
    expect(charts.map((c) => c.id).slice(7, 10)).toEqual(['judge', 'waves', 'waves-strata']);
    for (const c of charts.filter((x) => x.spec))
      for (const d of valuesOf(c.spec)) expect(d.description, c.id).toContain(`: ${d.count}`);
    expect(charts.find((c) => c.id === 'waves')!.spec).not.toBeNull();
    expect(charts.find((c) => c.id === 'waves-strata')!.spec).not.toBeNull();
  });
});

describe('without waves', () => {
  const plain = ReportManifestSchema.parse(
    manifestOf(conversationRows(300), {
      total: 100,
      ratio: 0.5,
      stratify: ['turnBucket'],
      seed: 1,
    }),
  );

  it('both wave charts are absent with the reason', () => {
    expect(plain.waves).toBeUndefined();
    for (const c of [wavesChart(plain), wavesStrataChart(plain)])
      expect(c).toMatchObject({ spec: null, absent: 'no waves (every sample judged)' });
  });

  it('an older waves section without strata or requests still parses and draws the waves', () => {
    const raw = manifestOf(
      conversationRows(300),
      { total: 100, ratio: 0.5, stratify: ['turnBucket'], seed: 1 },
      {
        waves: {
          outcome: 'wave-limit',
          judged: 90,
          waves: [
            { wave: 1, kind: 'pilot', judged: 60, found: { '0': 25, '1': 33 } },
            { wave: 2, kind: 'yield', judged: 30, found: { '0': 20, '1': 9 } },
          ],
        },
      },
    );
    const m = ReportManifestSchema.parse(raw);
    const v = valuesOf(wavesChart(m).spec);
    expect(v.filter((d) => d.measure === 'reasoning').map((d) => d.count)).toEqual([25, 20]);
    expect(v.filter((d) => d.measure === 'judged').map((d) => d.description)).toEqual([
      'wave 1 (pilot) · judged: 60',
      'wave 2 (yield) · judged: 30',
    ]);
    const caption = wavesChart(m).caption;
    expect(caption).toContain('Outcome: wave-limit.');
    expect(caption).toContain('judge requests not recorded');
    expect(caption).toContain(`${(90 / m.selected.total).toFixed(3)} samples judged per`);
    expect(wavesStrataChart(m)).toMatchObject({ spec: null });
    expect(wavesStrataChart(m).absent).toContain('no per-stratum delivery');
  });

  it('rejects a waves section with negative or fractional counts', () => {
    const base = manifestOf(conversationRows(100), {
      total: 50,
      ratio: 0.5,
      stratify: ['turnBucket'],
      seed: 1,
    });
    const wave = { wave: 1, kind: 'pilot', judged: 10, found: { '0': 4, '1': 6 } };
    const bad = (w: unknown) =>
      ReportManifestSchema.safeParse({
        ...base,
        waves: { outcome: 'quotas-met', judged: 10, waves: [w] },
      }).success;
    expect(bad(wave)).toBe(true);
    expect(bad({ ...wave, judged: -1 })).toBe(false);
    expect(bad({ ...wave, found: { '0': 1.5, '1': 6 } })).toBe(false);
  });
});

describe('rendered report of a waves build', () => {
  it('holds both wave charts as SVG with the manifest numbers in their marks', async () => {
    const html = await renderReport(met.raw);
    const w = met.m.waves!;
    for (const id of ['waves', 'waves-strata'])
      expect(html).toMatch(new RegExp(`data-chart="${id}" id="chart-${id}"><div class="svg"><svg`));
    expect(html).toContain(wavesChart(met.m).title);
    expect(html).toContain(wavesStrataChart(met.m).title);
    const figure = (id: string) =>
      new RegExp(`<figure data-chart="${id}"[\\s\\S]*?</figure>`).exec(html)![0];
    const labels = (id: string) =>
      [...figure(id).matchAll(/<path aria-label="([^"]*)"[^>]*aria-roledescription="bar"/g)].map(
        (x) => x[1],
      );
    const waveBars = labels('waves');
    expect(waveBars).toHaveLength(3 * w.waves.length);
    for (const x of w.waves) {
      const name = `wave ${x.wave} (${x.kind})`;
      expect(waveBars).toContain(`${name} · judged: ${x.judged} in ${x.requests} request(s)`);
      expect(waveBars).toContain(`${name} · reasoning found: ${x.found['0']}`);
      expect(waveBars).toContain(`${name} · non_reasoning found: ${x.found['1']}`);
    }
    const strataBars = labels('waves-strata');
    expect(strataBars).toHaveLength(3 * w.strata!.length);
    for (const s of w.strata!) {
      const cell = `${NAMES[s.label]} / ${s.stratum}`;
      expect(strataBars).toContain(`${cell} · target: ${s.target}`);
      expect(strataBars).toContain(`${cell} · quota: ${s.quota}`);
      expect(strataBars).toContain(`${cell} · delivered: ${s.delivered}`);
    }
    expect(figure('waves')).toContain(`Outcome: ${w.outcome}.`);
  });

  it('says why the wave charts are missing from a build that judged every sample', async () => {
    const raw = manifestOf(conversationRows(200), {
      total: 100,
      ratio: 0.5,
      stratify: ['turnBucket'],
      seed: 1,
    });
    const m = ReportManifestSchema.parse(raw);
    const html = await renderReport(raw);
    for (const c of [wavesChart(m), wavesStrataChart(m)])
      expect(html).toContain(
        `data-chart="${c.id}" data-absent="true"><h2>${c.title}</h2><p>Not shown: no waves (every sample judged).</p>`,
      );
  });
});
