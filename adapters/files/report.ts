/**
 * The build report's rendering: Vega-Lite specs (shared/report/specs.ts) compiled
 * and rendered to SVG in Node at build time, set into the page (shared/report/page.ts),
 * written as report.html beside the manifest. No browser, canvas or network.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';
import { ReportManifestSchema } from '../../shared/report/manifest';
import { renderPage, reportModel } from '../../shared/report/page';
import type { VegaLiteSpec } from '../../shared/report/specs';

export const REPORT_FILE = 'report.html';

let libs: { vega: typeof Vega; vegaLite: typeof VegaLite } | undefined;

/**
 * vega and vega-lite, loaded on the first chart (~0.15 s): a command that draws none never
 * loads them. require, not import(): the ESM loader would scan these CommonJS bundles for
 * their export names first (~80 ms more).
 */
function charting(): { vega: typeof Vega; vegaLite: typeof VegaLite } {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return (libs ??= {
    vega: require('vega') as typeof Vega,
    vegaLite: require('vega-lite') as typeof VegaLite,
  });
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** One chart as SVG markup. Deterministic: clip and gradient ids restart per chart. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const { vega, vegaLite } = charting();
  const compiled = vegaLite.compile(spec as unknown as VegaLite.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    // Exported by vega 5 at run time, missing from its typings.
    (vega as unknown as { resetSVGDefIds: () => void }).resetSVGDefIds();
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The report page for a manifest (as written to manifest.json). */
export async function renderReport(manifest: unknown): Promise<string> {
  const m = ReportManifestSchema.parse(manifest);
  const model = reportModel(m);
  const svgs: Record<string, string> = {};
  for (const c of model.charts) if (c.spec) svgs[c.id] = await renderSvg(c.spec);
  return renderPage(model, svgs);
}

/** Writes DIR/report.html; returns its path. */
export async function writeReport(dir: string, manifest: unknown): Promise<string> {
  const path = join(dir, REPORT_FILE);
  await writeFile(path, await renderReport(manifest), 'utf8');
  return path;
}
