/**
 * report.html's charts drawn on a worker thread (startReportRenderer, report-worker.ts):
 * the same page byte for byte as renderReport in this thread; any failure of the worker
 * falls back to this thread (so a bad manifest fails as it did); the worker never keeps
 * the process alive, and keeps it alive while a page is waited for.
 * The worker is the compiled one (dist/): `npm run build` first.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderReport, reportWorkerScript, startReportRenderer } from '../../adapters/files/report';
import { probeManifestSection, probeReadSplits, ProbeSplitReader } from '../../shared/probe';
import { syntheticLines } from '../probe/helpers';
import { conversationRows, manifestOf } from './fixture';

const dir = mkdtempSync(join(tmpdir(), 'sftb-report-worker-'));
const root = join(__dirname, '..', '..');

/** A worker script of the test's own (plain JS), standing in for report-worker.js. */
function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `const { parentPort } = require('node:worker_threads');\n${body}\n`);
  return p;
}

const escaped = manifestOf(
  conversationRows(300).map((r, i) => (i % 7 === 0 ? { ...r, model: '<b>"m"</b>' } : r)),
  { total: 200, ratio: 0.5, stratify: ['turnBucket', 'position'], seed: 4 },
  { pipeline: { name: 'conversation' } },
  { invalid_json: 1 },
);
const base = manifestOf(conversationRows(200), { total: 150, ratio: 0.5, seed: 4 });
const train = new ProbeSplitReader();
for (const l of syntheticLines({ n: 300, seed: 5, source: 'signals' })) train.addValue(l);
const withProbe = {
  ...base,
  probe: probeManifestSection(probeReadSplits({ train }), { enabled: true }),
};

describe('the report drawn on a worker thread', () => {
  it('is the compiled worker, and its page is byte-identical to renderReport in this thread', async () => {
    const compiled = reportWorkerScript();
    expect(compiled).toBe(join(root, 'dist', 'adapters', 'files', 'report-worker.js'));
    for (const manifest of [escaped, withProbe]) {
      const here = await renderReport(manifest);
      const renderer = startReportRenderer(compiled);
      expect(await renderer.render(manifest)).toBe(here);
      expect(here).toMatch(/<svg/);
    }
  }, 60_000);

  it("uses the worker's charts (a stand-in worker's SVG lands in the page)", async () => {
    const fake = script(
      'fake.js',
      "parentPort.once('message', (specs) => parentPort.postMessage({ svgs: specs.map((_, i) => `<svg>fake ${i}</svg>`) }));",
    );
    const html = await startReportRenderer(fake).render(escaped);
    expect(html).toContain('<svg>fake 0</svg>');
    expect(html).toContain('<svg>fake 4</svg>');
  });

  it('a worker that dies, fails or cannot start: the page is drawn here, the same', async () => {
    const here = await renderReport(escaped);
    const broken = [
      script('throws.js', "throw new Error('boom at load');"),
      script('exits.js', "parentPort.once('message', () => process.exit(3));"),
      script(
        'fails.js',
        "parentPort.once('message', () => parentPort.postMessage({ error: 'x' }));",
      ),
      join(dir, 'missing.js'),
    ];
    for (const s of broken) expect(await startReportRenderer(s).render(escaped)).toBe(here);
  }, 60_000);

  it("a manifest the report cannot read fails with renderReport's own error", async () => {
    const bad = { selected: { total: 1 } };
    const own = await renderReport(bad).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(own).toBeTruthy();
    await expect(startReportRenderer().render(bad)).rejects.toThrow(own!);
  });

  it('never keeps the process alive, and keeps it alive while a page is drawn', () => {
    const report = JSON.stringify(join(root, 'dist', 'adapters', 'files', 'report.js'));
    // Started and left (a build that failed before its report): the process ends at once.
    const left = spawnSync(
      process.execPath,
      ['-e', `require(${report}).startReportRenderer(); console.log('started');`],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(left.status).toBe(0);
    expect(left.stdout).toBe('started\n');
    // Nothing else pending while the worker draws: the page still arrives.
    const waited = spawnSync(
      process.execPath,
      [
        '-e',
        `require(${report}).startReportRenderer().render(JSON.parse(process.argv[1]))
           .then((h) => console.log(h.includes('<svg') ? 'drawn' : 'empty'));`,
        JSON.stringify(escaped),
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(waited.stderr).toBe('');
    expect(waited.stdout).toBe('drawn\n');
  }, 60_000);
});
