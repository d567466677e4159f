/**
 * Worker thread: the report's charts off the main thread (see startReportRenderer in
 * report.ts). It loads vega and vega-lite and draws a throwaway chart at once, while the
 * main thread is still writing the dataset; then it draws the one list of specs it is sent.
 * It loads report-svg.ts alone: the manifest is checked and the page set on the main thread.
 */
import { parentPort } from 'node:worker_threads';
import type { VegaLiteSpec } from '../../shared/report/specs';
import { renderSvgs, warmCharts } from './report-svg';

/** What the worker answers: the charts' SVG, or that drawing failed (the caller draws then). */
export type ChartsReply = { svgs: string[] } | { error: string };

const port = parentPort!;
// A failed warm-up is not the report's failure: drawing the charts meets it again.
const warm = warmCharts().catch(() => undefined);
port.once('message', (specs: VegaLiteSpec[]) => {
  void warm
    .then(() => renderSvgs(specs))
    .then(
      (svgs): ChartsReply => ({ svgs }),
      (err): ChartsReply => ({ error: err instanceof Error ? err.message : String(err) }),
    )
    .then((reply) => port.postMessage(reply));
});
