import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../adapters/files/report';
import { balanceFile } from '../../cli/jobs';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { conversationRows, manifestOf } from './fixture';

describe('renderReport (vega → SVG)', () => {
  const rows = conversationRows(300).map((r, i) =>
    i % 7 === 0 ? { ...r, model: '<script>alert("m")</script>' } : r,
  );
  const manifest = manifestOf(
    rows,
    { total: 200, ratio: 0.5, stratify: ['turnBucket', 'position'], seed: 4 },
    { pipeline: { name: 'conversation' } },
    { invalid_json: 1 },
  );

  /** The first rendering, computed once for the tests that read it. */
  let first: Promise<string> | undefined;
  const rendered = () => (first ??= renderReport(manifest));

  it('renders every chart with data as inline SVG, byte-identical on a second run', async () => {
    const a = await rendered();
    const b = await renderReport(manifest);
    expect(b).toBe(a);
    for (const id of ['class-ratio', 'turn-count', 'turn-position', 'model-mix', 'quarantine'])
      expect(a).toMatch(new RegExp(`data-chart="${id}" id="chart-${id}"><div class="svg"><svg`));
    expect(a).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // no CDN, no remote reference
  });

  it('escapes a model name from telemetry inside the SVG', async () => {
    const html = await rendered();
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;');
  });

  it('rejects a manifest without the balancer sections', async () => {
    await expect(renderReport({ selected: { total: 1 } })).rejects.toThrow();
  });
});

describe('balance writes report.html', () => {
  it('beside manifest.json, drawn from exactly what manifest.json holds, the same on a rerun', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'report-balance-'));
    const input = join(dir, 'annotated.jsonl');
    await writeFile(
      input,
      conversationRows(300)
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n{"broken"\n',
    );
    const config = parseBalanceConfig({
      total: 200,
      ratio: 0.5,
      stratify: ['turnBucket'],
      seed: 1,
    });
    const read = async (out: string) => {
      await balanceFile(input, out, config, { quiet: true, threads: 1 });
      return {
        manifest: JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')),
        html: await readFile(join(out, 'report.html'), 'utf8'),
      };
    };
    const a = await read(join(dir, 'a'));
    const b = await read(join(dir, 'b'));
    expect(a.manifest.profile.after.rows).toBe(a.manifest.selected.total);
    expect(a.html).toBe(await renderReport(a.manifest));
    expect(b.html).toBe(a.html);
    expect(a.html).toContain('data-key="input.quarantined" data-value="1"');
  });
});
