/**
 * The build report's rendering: Vega-Lite specs (shared/report/specs.ts) compiled
 * and rendered to SVG in Node at build time, set into the page (shared/report/page.ts),
 * written as report.html beside the manifest. No browser, canvas or network.
 * The CLI draws it on a worker thread started while the dataset is still being written
 * (startReportRenderer; the worker is report-worker.ts).
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
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

/** Writes DIR/report.html (drawn by `renderer`, or here); returns its path. */
export async function writeReport(
  dir: string,
  manifest: unknown,
  renderer?: ReportRenderer,
): Promise<string> {
  const path = join(dir, REPORT_FILE);
  const html = await (renderer ? renderer.render(manifest) : renderReport(manifest));
  await writeFile(path, html, 'utf8');
  return path;
}

/**
 * A throwaway chart like the report's (a faceted grouped bar with axes and a legend): drawn
 * once, it loads vega and vega-lite and warms their code, so the report's charts that follow
 * draw in about a third of their cold time.
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

/** What the report worker answers: the page, or that it failed (the caller draws it then). */
export type ReportReply = { html: string } | { error: string };

/** The compiled report worker, or null when running from the TS sources (not built). */
export function reportWorkerScript(): string | null {
  const candidates = [
    join(__dirname, 'report-worker.js'),
    join(__dirname, '..', '..', 'dist', 'adapters', 'files', 'report-worker.js'),
  ];
  return candidates.find((p) => existsSync(p)) ?? null;
}

export interface ReportRenderer {
  /** The page of `manifest`, byte for byte what renderReport draws; its errors are renderReport's. */
  render(manifest: unknown): Promise<string>;
  /** Ends the worker (again: nothing); render ends it too. */
  close(): void;
}

/**
 * A report renderer on a worker thread that starts loading and warming the charting
 * libraries now (on the idle core while the dataset is written): render() then only
 * draws. The worker never keeps the process alive (unref'd but while a render waits on
 * it). If it cannot start, fails or dies, the page is drawn in this thread: the same page,
 * and a failure (an invalid manifest) surfaces as renderReport's own error. Without a
 * compiled worker (`script` null: the TS sources under vitest) it draws in this thread.
 */
export function startReportRenderer(script = reportWorkerScript()): ReportRenderer {
  let worker: Worker | null = null;
  try {
    if (script !== null) worker = new Worker(script);
  } catch {
    worker = null;
  }
  if (worker === null) return { render: renderReport, close: () => undefined };
  const w = worker;
  w.unref();
  w.on('error', () => undefined); // seen by render as the exit that follows
  let closed = false;
  const close = () => {
    if (!closed) void w.terminate();
    closed = true;
  };
  return {
    async render(manifest) {
      const html = closed ? null : await renderOn(w, manifest).catch(() => null);
      close();
      return html ?? renderReport(manifest);
    },
    close,
  };
}

/** One page drawn by the worker; rejects when it fails or exits first. */
function renderOn(w: Worker, manifest: unknown): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const done = () => {
      w.off('message', onMessage);
      w.off('exit', onExit);
      w.unref();
    };
    const onMessage = (m: ReportReply) => {
      done();
      if ('html' in m) resolve(m.html);
      else reject(new Error(m.error));
    };
    const onExit = (code: number) => {
      done();
      reject(new Error(`report worker exited with code ${code}`));
    };
    w.on('message', onMessage);
    w.on('exit', onExit);
    w.ref();
    try {
      w.postMessage(manifest);
    } catch (err) {
      done();
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
