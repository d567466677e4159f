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
import { ReportManifestSchema } from '../../shared/report/manifest';
import { renderPage, reportModel } from '../../shared/report/page';
import type { VegaLiteSpec } from '../../shared/report/specs';
import type { ChartsReply } from './report-worker';
import { renderSvgs } from './report-svg';

export { renderSvg } from './report-svg';

export const REPORT_FILE = 'report.html';

/** Draws the charts' specs as SVG, in order (here, or on the report worker). */
export type DrawCharts = (specs: readonly VegaLiteSpec[]) => Promise<string[]>;

/** The report page for a manifest (as written to manifest.json). */
export async function renderReport(
  manifest: unknown,
  draw: DrawCharts = renderSvgs,
): Promise<string> {
  const m = ReportManifestSchema.parse(manifest);
  const model = reportModel(m);
  const drawn = model.charts.filter((c) => c.spec);
  const svgs = await draw(drawn.map((c) => c.spec!));
  return renderPage(model, Object.fromEntries(drawn.map((c, i) => [c.id, svgs[i]!])));
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
 * A report renderer whose charts are drawn on a worker thread that starts loading and
 * warming vega now (on the idle core while the dataset is written): render() then checks
 * the manifest and sets the page here, and the worker only draws. The worker never keeps
 * the process alive (unref'd but while a render waits on it). If it cannot start, fails or
 * dies, the charts are drawn in this thread: the same page, and a failure surfaces as
 * renderReport's own error. Without a compiled worker (`script` null: the TS sources under
 * vitest) all is drawn in this thread.
 */
export function startReportRenderer(script = reportWorkerScript()): ReportRenderer {
  let worker: Worker | null = null;
  try {
    if (script !== null) worker = new Worker(script, { resourceLimits: WORKER_LIMITS });
  } catch {
    worker = null;
  }
  if (worker === null) return { render: (m) => renderReport(m), close: () => undefined };
  const w = worker;
  w.unref();
  w.on('error', () => undefined); // seen by drawOn as the exit that follows
  let closed = false;
  const close = () => {
    if (!closed) void w.terminate();
    closed = true;
  };
  const draw: DrawCharts = async (specs) => {
    const svgs = closed ? null : await drawOn(w, specs).catch(() => null);
    close();
    return svgs ?? renderSvgs(specs);
  };
  return {
    async render(manifest) {
      try {
        return await renderReport(manifest, draw);
      } finally {
        close();
      }
    },
    close,
  };
}

/**
 * The worker's heap: a small young generation (the default lets it grow to 16 MiB semi-spaces)
 * keeps what the worker adds to the process's memory at ~40 MiB instead of ~60.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2 };

/** The charts drawn by the worker; rejects when it fails or exits first. */
function drawOn(w: Worker, specs: readonly VegaLiteSpec[]): Promise<string[]> {
  return new Promise<string[]>((resolve, reject) => {
    const done = () => {
      w.off('message', onMessage);
      w.off('exit', onExit);
      w.unref();
    };
    const onMessage = (m: ChartsReply) => {
      done();
      if ('svgs' in m) resolve(m.svgs);
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
      w.postMessage(specs);
    } catch (err) {
      done();
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
