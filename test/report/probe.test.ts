/**
 * The router probe in the report (shared/report/probe-charts.ts): the verdict with both
 * AUCs, the ROC curve, AUC per stratum and position and the routing curve drawn from
 * manifest.probe; absent with the reason when the probe was skipped, off or missing.
 */
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../adapters/files/report';
import {
  ProbeSplitReader,
  probeManifestSection,
  probeReadSplits,
  type ProbeLine,
} from '../../shared/probe';
import { reportModel } from '../../shared/report/page';
import { ReportManifestSchema } from '../../shared/report/manifest';
import { syntheticLines } from '../probe/helpers';
import { conversationRows, manifestOf } from './fixture';

const base = manifestOf(conversationRows(200), { total: 150, ratio: 0.5, seed: 4 });

function probeOf(lines: ProbeLine[], minAuc?: number) {
  const train = new ProbeSplitReader();
  for (const l of lines) train.addValue(l);
  return probeManifestSection(probeReadSplits({ train }), {
    enabled: true,
    ...(minAuc !== undefined ? { minAuc } : {}),
  });
}

const PROBE_CHARTS = ['probe-roc', 'probe-strata', 'probe-routing'];

describe('the probe section of the report', () => {
  it('draws the verdict, the ROC curve, AUC per stratum and position and the routing curve', async () => {
    const { section } = probeOf(syntheticLines({ n: 400, seed: 5, source: 'signals' }));
    const manifest = { ...base, probe: section };
    const verdict = section.verdict as { kind: string; textAuc: number; signalsAuc: number };
    expect(verdict.kind).toBe('signals');
    const html = await renderReport(manifest);
    for (const id of PROBE_CHARTS)
      expect(html).toMatch(new RegExp(`data-chart="${id}" id="chart-${id}"><div class="svg"><svg`));
    // Text and signals AUC side by side with the plain reading.
    expect(html).toContain('<section class="probe" data-probe-verdict="signals">');
    expect(html).toContain(`<strong data-probe-auc="text">${verdict.textAuc.toFixed(3)}</strong>`);
    expect(html).toContain(
      `<strong data-probe-auc="signals">${verdict.signalsAuc.toFixed(3)}</strong>`,
    );
    expect(html).toContain('the labels follow the pre-stratification signals more than the text');
    // The marks state the figures: per stratum, per position, per routing threshold.
    const strata = (
      section.text as { evaluations: { cv: { byStratum: Record<string, { auc: number }> } } }
    ).evaluations.cv.byStratum;
    for (const [name, f] of Object.entries(strata))
      expect(html).toContain(`stratum ${name} · text AUC ${f.auc.toFixed(3)}`);
    expect(html).toMatch(/aria-label="position (early|mid|late|single)[^"]* · signals AUC /);
    expect(html).toMatch(/aria-label="threshold 0\.5 · [\d.]+% to the reasoning model · recall /);
    const model = reportModel(ReportManifestSchema.parse(manifest));
    expect(model.facts.map((f) => f.key)).toEqual(
      expect.arrayContaining(['probe.verdict.textAuc', 'probe.verdict.signalsAuc']),
    );
    expect(await renderReport(manifest)).toBe(html);
  });

  it('says why the charts are absent: a skipped probe, a probe turned off, no probe section', async () => {
    const oneClass = syntheticLines({ n: 100, seed: 1, source: 'text' }).map((l) => ({
      ...l,
      label: 1 as const,
    }));
    const skipped = probeOf(oneClass, 0.7);
    expect(skipped.section.status).toBe('skipped');
    expect(skipped.failure).toMatch(/no text AUC .* a minimum of 0\.7/);
    const cases: [unknown, string | null, RegExp | null][] = [
      [skipped.section, 'skipped', /the probe did not run: train has one class/],
      [probeManifestSection(null, { enabled: false }).section, 'off', /the probe was turned off/],
      [undefined, null, /the manifest has no probe section/],
    ];
    for (const [probe, kind, absent] of cases) {
      const html = await renderReport(probe === undefined ? base : { ...base, probe });
      for (const id of PROBE_CHARTS)
        expect(html).toContain(`<figure class="absent" data-chart="${id}" data-absent="true">`);
      expect(html).toMatch(absent!);
      if (kind) expect(html).toContain(`data-probe-verdict="${kind}"`);
      else expect(html).not.toContain('class="probe"');
    }
  });
});
