// Screenshot of a build report for the README:
//   node docs/screenshot.mjs out/demo/dataset/report.html docs/build-report.png
// Debian's Chromium, driven by playwright-core (no browser download).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [report, png] = process.argv.slice(2);
if (!report || !png) {
  process.stderr.write('usage: node docs/screenshot.mjs REPORT.html OUT.png\n');
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), 'report-shot-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const page = await context.newPage();
  await page.goto(pathToFileURL(resolve(report)).href);
  await page.screenshot({ path: png, fullPage: true });
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
