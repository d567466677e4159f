/**
 * Worker thread: report.html off the main thread (see startReportRenderer in report.ts).
 * It loads vega and vega-lite and draws a throwaway chart at once, while the main thread
 * is still writing the dataset; then it draws the page of the one manifest it is sent.
 */
import { parentPort } from 'node:worker_threads';
import { renderReport, warmCharts, type ReportReply } from './report';

const port = parentPort!;
// A failed warm-up is not the page's failure: the render below meets it again and says so.
const warm = warmCharts().catch(() => undefined);
port.once('message', (manifest: unknown) => {
  void warm
    .then(() => renderReport(manifest))
    .then(
      (html): ReportReply => ({ html }),
      (err): ReportReply => ({ error: err instanceof Error ? err.message : String(err) }),
    )
    .then((reply) => port.postMessage(reply));
});
