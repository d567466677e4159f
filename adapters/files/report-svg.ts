/**
 * Vega-Lite specs drawn as SVG in Node (vega's headless renderer): the report's charts.
 * vega and vega-lite load on the first chart, so a command that draws none never loads
 * them; the report worker (report-worker.ts) loads this module alone (no zod, no page).
 */
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';
import type { VegaLiteSpec } from '../../shared/report/specs';

let libs: { vega: typeof Vega; vegaLite: typeof VegaLite } | undefined;

/**
 * vega and vega-lite (~0.15 s to load). require, not import(): the ESM loader would scan
 * these CommonJS bundles for their export names first (~80 ms more).
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

/** The charts as SVG, drawn one after another in their order. */
export async function renderSvgs(specs: readonly VegaLiteSpec[]): Promise<string[]> {
  const svgs: string[] = [];
  for (const spec of specs) svgs.push(await renderSvg(spec));
  return svgs;
}

/**
 * A throwaway chart like the report's (a faceted grouped bar with axes and a legend): drawn
 * once, it loads vega and vega-lite and pays their first-use cost (the first chart drawn
 * costs ~3x the next ones), so that the report's charts drawn next do not.
 */
export async function warmCharts(): Promise<void> {
  const values = ['before', 'after'].flatMap((when) =>
    ['a', 'b'].flatMap((key) =>
      ['x', 'y'].map((label, i) => ({ when, key, label, count: i + 1, description: key })),
    ),
  );
  await renderSvg({
    title: 'warm-up',
    data: { values },
    facet: { column: { field: 'when', type: 'nominal' } },
    spec: {
      width: 60,
      height: 40,
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'key', type: 'nominal', axis: { labelAngle: 0 } },
        xOffset: { field: 'label', type: 'nominal' },
        y: { field: 'count', type: 'quantitative', axis: { format: '%' } },
        color: { field: 'label', type: 'nominal' },
        description: { field: 'description', type: 'nominal' },
      },
    },
  });
}
