/**
 * The build report in a real browser: headless Chromium (Debian's, driven by
 * playwright-core) opens report.html from a build, from disk and from a blob: URL.
 * No console errors, no request beyond the page itself, every chart drawn with
 * marks of non-zero size, and the numbers on the page equal the manifest's. A build
 * judged in waves (replay judge over annotated telemetry) also draws the wave charts.
 *
 * Run with `npm run test:browser` (needs /usr/bin/chromium: `apt-get install -y chromium`).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJudge } from '../../adapters/judge/factory';
import { runPipeline } from '../../cli/jobs';
import { runLocal } from '../../cli/local-runner';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { generateTelemetry } from '../../shared/source/generate';
import { JudgeSettingsSchema } from '../../shared/judge/settings';
import { createSignalsJudge } from '../../shared/judge/signals';
import { DEFAULT_HISTORY } from '../../shared/samples/assemble';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** A model name from telemetry that would run script if the page did not escape it. */
const HOSTILE_MODEL = `<img src=x onerror="console.error('xss')">gpt-4o`;
const BAD_LINES = ['{"conversationId": "broken"', '{"conversationId":"x","turnIndex":"one"}'];
const ALL_CHARTS = [
  'class-ratio',
  'turn-count',
  'turn-position',
  'model-mix',
  'complexity',
  'confidence',
  'shortfalls',
  'judge',
  'quarantine',
];
/** Drawn in a build judged in waves; absent, with the reason, from the others. */
const WAVE_CHARTS = ['waves', 'waves-strata'];
const NO_WAVES = 'Not shown: no waves (every sample judged).';
const LABEL_NAMES = { '0': 'reasoning', '1': 'non_reasoning' } as const;

let dir: string;
let context: BrowserContext;

/**
 * Generated telemetry with hostile model names and bad lines. `annotated`: each turn also
 * carries its label and a confidence, so the file serves as its own replay source.
 */
async function telemetry(path: string, annotated = false): Promise<void> {
  const lines: string[] = [];
  let i = 0;
  for (const t of generateTelemetry({ conversations: 1500, seed: 3, annotated })) {
    const turn = t.conversationId.endsWith('0') ? { ...t, model: HOSTILE_MODEL } : t;
    lines.push(
      JSON.stringify(annotated ? { ...turn, confidence: 0.5 + ((i++ * 37) % 50) / 100 } : turn),
    );
  }
  lines.splice(100, 0, ...BAD_LINES);
  await writeFile(path, lines.join('\n') + '\n');
}

const at = (m: unknown, key: string): unknown =>
  key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], m);

type Counts = Record<string, number>;
/** What the page functions use of a DOM element (tsconfig has no DOM lib). */
type El = { getAttribute(name: string): string | null };
interface Manifest {
  input: { byLabel: Counts };
  selected: { total: number; byLabel: Counts };
  quarantine: { byReason: Counts };
  judge: { calls: number; labelled: number; samplesJudged: number };
  waves?: {
    outcome: string;
    judged: number;
    waves: {
      wave: number;
      kind: string;
      judged: number;
      found: Record<'0' | '1', number>;
      requests?: number;
    }[];
    strata: { label: 0 | 1; stratum: string; target: number; quota: number; delivered: number }[];
  };
  probe: {
    status: string;
    verdict: { kind: string; on: string; textAuc: number; signalsAuc: number; message: string };
    text: { evaluations: Record<string, { byStratum: Record<string, { auc: number | null }> }> };
  };
}

/** The router probe's section: the verdict with both AUCs, and its three charts drawn. */
async function checkProbe(page: Page, manifest: Manifest): Promise<void> {
  const p = manifest.probe;
  expect(p.status).toBe('ok');
  const section = page.locator('section.probe');
  expect(await section.getAttribute('data-probe-verdict')).toBe(p.verdict.kind);
  expect(await section.locator('[data-probe-auc="text"]').textContent()).toBe(
    p.verdict.textAuc.toFixed(3),
  );
  expect(await section.locator('[data-probe-auc="signals"]').textContent()).toBe(
    p.verdict.signalsAuc.toFixed(3),
  );
  expect(await section.locator('[data-probe-message]').textContent()).toBe(p.verdict.message);
  for (const [id, role] of [
    ['probe-roc', 'point'],
    ['probe-strata', 'bar'],
    ['probe-routing', 'point'],
  ] as const) {
    const fig = page.locator(`figure[data-chart="${id}"]`);
    expect(await fig.getAttribute('data-absent'), `${id} absent`).toBeNull();
    const sizes = await fig
      .locator(`svg [aria-roledescription="${role}"]`)
      .evaluateAll((els): number[] =>
        els
          .map((e) => (e as unknown as { getBBox(): { width: number; height: number } }).getBBox())
          .map((b) => b.width * b.height),
      );
    expect(sizes.length, `${id} marks`).toBeGreaterThan(0);
    expect(
      sizes.some((x) => x > 0),
      `${id} has a visible mark`,
    ).toBe(true);
  }
  const strata = await page
    .locator('figure[data-chart="probe-strata"] svg [aria-roledescription="bar"]')
    .evaluateAll((els: El[]) => els.map((e) => e.getAttribute('aria-label') ?? ''));
  for (const [name, f] of Object.entries(p.text.evaluations[p.verdict.on]!.byStratum))
    if (f.auc !== null)
      expect(
        strata.some((t) => t.startsWith(`stratum ${name} · text AUC ${f.auc!.toFixed(3)}`)),
      ).toBe(true);
}

interface Seen {
  errors: string[];
  requests: string[];
}

async function open(url: string, fromBlob = false): Promise<{ page: Page; seen: Seen }> {
  const page = await context.newPage();
  const seen: Seen = { errors: [], requests: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') seen.errors.push(msg.text());
  });
  page.on('pageerror', (err) => seen.errors.push(err.message));
  page.on('request', (r) => seen.requests.push(r.url()));
  if (!fromBlob) {
    await page.goto(url);
    return { page, seen };
  }
  // The report as a blob (what a storage browser or a download preview hands over).
  const html = await readFile(new URL(url), 'utf8');
  await page.goto('about:blank');
  const blobUrl = await page.evaluate(
    (text) => URL.createObjectURL(new Blob([text], { type: 'text/html' })),
    html,
  );
  seen.requests.length = 0;
  await page.goto(blobUrl);
  return { page, seen };
}

/** A mark as drawn: its aria-label, the area of its box and how it is painted. */
interface Mark {
  label: string;
  area: number;
  visible: boolean;
}

async function marksOf(page: Page, id: string): Promise<Mark[]> {
  return page
    .locator(`figure[data-chart="${id}"] svg [aria-roledescription="bar"]`)
    .evaluateAll((els): Mark[] =>
      els.map((e) => {
        const el = e as unknown as {
          getAttribute(name: string): string | null;
          getBBox(): { width: number; height: number };
        };
        const style = (
          globalThis as unknown as {
            getComputedStyle(e: unknown): {
              visibility: string;
              display: string;
              opacity: string;
              fill: string;
            };
          }
        ).getComputedStyle(e);
        const b = el.getBBox();
        return {
          label: el.getAttribute('aria-label') ?? '',
          area: b.width * b.height,
          visible:
            style.visibility === 'visible' &&
            style.display !== 'none' &&
            Number(style.opacity) > 0 &&
            style.fill !== 'none' &&
            style.fill !== 'transparent',
        };
      }),
    );
}

/** The wave charts of a build judged in waves: drawn, visible, with the manifest's numbers. */
async function checkWaves(page: Page, manifest: Manifest): Promise<void> {
  const w = manifest.waves!;
  expect(w.waves.length).toBeGreaterThan(0);
  expect(w.strata.length).toBeGreaterThan(0);
  for (const id of WAVE_CHARTS) {
    const fig = page.locator(`figure[data-chart="${id}"]`);
    expect(await fig.isVisible(), `${id} visible`).toBe(true);
    const marks = await marksOf(page, id);
    expect(marks.length, `${id} marks`).toBeGreaterThan(0);
    for (const mk of marks) {
      // Every mark painted; a bar with a count above zero has a size.
      expect(mk.visible, mk.label).toBe(true);
      const n = Number(/: (\d+)(?: in \d+ request\(s\))?$/.exec(mk.label)![1]);
      if (n > 0) expect(mk.area, mk.label).toBeGreaterThan(0);
    }
  }
  // Per wave: samples judged and labels found by class, exactly the manifest's.
  const waveLabels = (await marksOf(page, 'waves')).map((mk) => mk.label);
  const expected = w.waves.flatMap((x) => {
    const name = `wave ${x.wave} (${x.kind})`;
    const requests = x.requests !== undefined ? ` in ${x.requests} request(s)` : '';
    return [
      `${name} · judged: ${x.judged}${requests}`,
      `${name} · reasoning found: ${x.found['0']}`,
      `${name} · non_reasoning found: ${x.found['1']}`,
    ];
  });
  expect([...waveLabels].sort()).toEqual([...expected].sort());
  const judged = waveLabels
    .filter((t) => t.includes(' · judged: '))
    .reduce((s, t) => s + Number(/ · judged: (\d+)/.exec(t)![1]), 0);
  expect(judged).toBe(w.judged);
  expect(judged).toBe(manifest.judge.samplesJudged);
  // Per class × stratum: target, quota and delivered, exactly the manifest's.
  const strataLabels = (await marksOf(page, 'waves-strata')).map((mk) => mk.label);
  expect([...strataLabels].sort()).toEqual(
    w.strata
      .flatMap((s) => {
        const cell = `${LABEL_NAMES[s.label === 0 ? '0' : '1']} / ${s.stratum}`;
        return [
          `${cell} · target: ${s.target}`,
          `${cell} · quota: ${s.quota}`,
          `${cell} · delivered: ${s.delivered}`,
        ];
      })
      .sort(),
  );
  const delivered = strataLabels
    .filter((t) => t.includes(' · delivered: '))
    .reduce((s, t) => s + Number(/: (\d+)$/.exec(t)![1]), 0);
  expect(delivered).toBe(manifest.selected.total);
  // The captions and facts say the same; the shortfall caption says what "available" is.
  expect(await page.locator('figure[data-chart="waves"] figcaption').textContent()).toContain(
    `Outcome: ${w.outcome}.`,
  );
  expect(await page.locator('figure[data-chart="shortfalls"] figcaption').textContent()).toContain(
    'among the judged samples',
  );
  const derived = await page
    .locator('[data-derived]')
    .evaluateAll((els: El[]): [string, string][] =>
      els.map((e) => [e.getAttribute('data-derived') ?? '', e.getAttribute('data-value') ?? '']),
    );
  expect(derived).toEqual([
    ['waves.judged / selected.total', (w.judged / manifest.selected.total).toFixed(3)],
  ]);
  for (const key of ['waves.outcome', 'waves.judged', 'waves.waves.length'])
    expect(await page.locator(`[data-key="${key}"]`).count(), key).toBe(1);
}

async function checkReport(reportPath: string, manifestPath: string, fromBlob: boolean) {
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  const url = pathToFileURL(reportPath).href;
  const { page, seen } = await open(url, fromBlob);
  try {
    // Every chart present, with marks that have a size (the wave charts in a waves build).
    for (const id of manifest.waves ? [...ALL_CHARTS, ...WAVE_CHARTS] : ALL_CHARTS) {
      const fig = page.locator(`figure[data-chart="${id}"]`);
      expect(await fig.count(), id).toBe(1);
      expect(await fig.getAttribute('data-absent'), `${id} absent`).toBeNull();
      const sizes = await fig
        .locator('svg [aria-roledescription="bar"]')
        .evaluateAll((els): number[] =>
          els
            .map((e) =>
              (e as unknown as { getBBox(): { width: number; height: number } }).getBBox(),
            )
            .map((b) => b.width * b.height),
        );
      expect(sizes.length, `${id} marks`).toBeGreaterThan(0);
      expect(
        sizes.some((s) => s > 0),
        `${id} has a visible mark`,
      ).toBe(true);
    }
    // The facts equal the manifest at their keys.
    const facts = await page
      .locator('[data-key]')
      .evaluateAll((els: El[]): [string, string][] =>
        els.map((e) => [e.getAttribute('data-key') ?? '', e.getAttribute('data-value') ?? '']),
      );
    expect(facts.length).toBeGreaterThanOrEqual(12);
    for (const [key, value] of facts) expect(value, key).toBe(String(at(manifest, key)));
    // The marks state the manifest's numbers.
    const labels = async (id: string) =>
      page
        .locator(`figure[data-chart="${id}"] svg [aria-roledescription="bar"]`)
        .evaluateAll((els: El[]) => els.map((e) => e.getAttribute('aria-label') ?? ''));
    const ratio = await labels('class-ratio');
    const sides: [string, Counts][] = [
      ['before', manifest.input.byLabel],
      ['after', manifest.selected.byLabel],
    ];
    for (const [when, by] of sides)
      for (const [l, name] of [
        ['0', 'reasoning'],
        ['1', 'non_reasoning'],
      ] as const)
        expect(ratio.some((t) => t.startsWith(`${when} · ${name}: ${by[l]!} (`))).toBe(true);
    const quarantine = await labels('quarantine');
    expect(quarantine.sort()).toEqual(
      Object.entries(manifest.quarantine.byReason)
        .map(([r, n]) => `${r}: ${n}`)
        .sort(),
    );
    const judge = await labels('judge');
    expect(judge).toContain(`calls: ${manifest.judge.calls}`);
    expect(judge).toContain(`labelled: ${manifest.judge.labelled}`);
    const turnCounts = await labels('turn-count');
    const afterTotal = turnCounts
      .filter((t) => t.startsWith('after'))
      .reduce((s, t) => s + Number(/: (\d+)$/.exec(t)![1]), 0);
    expect(afterTotal).toBe(manifest.selected.total);
    // Telemetry text stayed text.
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(0);
    const models = await labels('model-mix');
    expect(models.some((t) => t.includes(` · ${HOSTILE_MODEL} · `))).toBe(true);
    await checkProbe(page, manifest);
    if (manifest.waves) await checkWaves(page, manifest);
    else {
      for (const id of WAVE_CHARTS) {
        const fig = page.locator(`figure[data-chart="${id}"]`);
        expect(await fig.getAttribute('data-absent'), `${id} absent`).toBe('true');
        expect(await fig.locator('p').textContent()).toBe(NO_WAVES);
      }
      expect(await page.locator('[data-derived]').count()).toBe(0);
    }
    // Self-contained: nothing loaded but the page itself.
    expect(seen.requests.filter((r) => !r.startsWith('blob:') && r !== url)).toEqual([]);
    expect(seen.errors).toEqual([]);
  } finally {
    await page.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'report-browser-'));
  await telemetry(join(dir, 'telemetry.jsonl'));
  await telemetry(join(dir, 'annotated.jsonl'), true);
  context = await chromium.launchPersistentContext(await mkdtemp(join(dir, 'profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
}, 60_000);

afterAll(async () => {
  await context?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('report.html in Chromium', () => {
  it('from run --in-process (conversation pipeline), opened from disk and from a blob', async () => {
    const config = parseBalanceConfig({
      total: 600,
      ratio: 0.7,
      stratify: ['turnBucket', 'position'],
      seed: 9,
    });
    const out = join(dir, 'in-process');
    const job = await runPipeline(join(dir, 'telemetry.jsonl'), out, config, {
      pipeline: 'conversation',
      history: DEFAULT_HISTORY,
      judge: createSignalsJudge({
        complexity: config.complexity,
        reasoningModels: config.reasoningModels,
      }),
      batchSize: 20,
      quiet: true,
    });
    await checkReport(join(out, 'report.html'), job.manifestPath, false);
    await checkReport(join(out, 'report.html'), job.manifestPath, true);
  }, 120_000);

  it('from run --in-process --waves --replay (judged in waves), opened from disk and from a blob', async () => {
    const annotated = join(dir, 'annotated.jsonl');
    // Past what the pilot wave alone delivers, so later waves judge where quotas are open.
    const config = parseBalanceConfig({
      total: 1000,
      ratio: 0.7,
      stratify: ['turnBucket', 'position'],
      seed: 9,
    });
    const out = join(dir, 'waves');
    // As `run --in-process --waves --replay FILE` builds it (cli/main.ts cmdRun).
    const job = await runPipeline(annotated, out, config, {
      pipeline: 'conversation',
      history: DEFAULT_HISTORY,
      judge: createJudge(JudgeSettingsSchema.parse({ kind: 'replay', source: annotated })),
      waves: {},
      batchSize: 20,
      quiet: true,
    });
    const manifest = JSON.parse(await readFile(job.manifestPath, 'utf8')) as Manifest;
    // Judged in waves: fewer samples than exist, and the judge-side numbers agree.
    expect(manifest.waves?.waves.length).toBeGreaterThan(1);
    expect(manifest.waves!.judged).toBe(manifest.judge.samplesJudged);
    expect(manifest.waves!.waves.reduce((s, x) => s + (x.requests ?? 0), 0)).toBe(
      manifest.judge.calls,
    );
    await checkReport(join(out, 'report.html'), job.manifestPath, false);
    await checkReport(join(out, 'report.html'), job.manifestPath, true);
  }, 120_000);

  it('from the Functions fan-in on the local runner (Azurite), downloaded with the dataset', async () => {
    const out = join(dir, 'runner');
    const run = await runLocal({
      input: join(dir, 'telemetry.jsonl'),
      out,
      pipeline: 'conversation',
      history: DEFAULT_HISTORY,
      config: parseBalanceConfig({
        total: 600,
        ratio: 0.5,
        stratify: ['turnBucket', 'position'],
        seed: 9,
      }),
      quiet: true,
      env: { SFT_SHARD_BYTES: '400000' },
    });
    await checkReport(join(out, 'report.html'), run.manifestPath, false);
  }, 180_000);
});
