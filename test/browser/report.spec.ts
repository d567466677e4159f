/**
 * The build report in a real browser: headless Chromium (Debian's, driven by
 * playwright-core) opens report.html from a build, from disk and from a blob: URL.
 * No console errors, no request beyond the page itself, every chart drawn with
 * marks of non-zero size, and the numbers on the page equal the manifest's.
 *
 * Run with `npm run test:browser` (needs /usr/bin/chromium: `apt-get install -y chromium`).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPipeline } from '../../cli/jobs';
import { runLocal } from '../../cli/local-runner';
import { parseBalanceConfig } from '../../shared/config';
import { generateTelemetry } from '../../shared/generate';
import { createSignalsJudge } from '../../shared/judge/signals';
import { DEFAULT_HISTORY } from '../../shared/samples';

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

let dir: string;
let context: BrowserContext;

async function telemetry(path: string): Promise<void> {
  const lines: string[] = [];
  for (const t of generateTelemetry({ conversations: 1500, seed: 3 })) {
    const turn = t.conversationId.endsWith('0') ? { ...t, model: HOSTILE_MODEL } : t;
    lines.push(JSON.stringify(turn));
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
  judge: { calls: number; labelled: number };
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

async function checkReport(reportPath: string, manifestPath: string, fromBlob: boolean) {
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  const url = pathToFileURL(reportPath).href;
  const { page, seen } = await open(url, fromBlob);
  try {
    // Every chart present, with marks that have a size.
    for (const id of ALL_CHARTS) {
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
