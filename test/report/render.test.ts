import { describe, expect, it } from 'vitest';
import { renderReport } from '../../adapters/report';
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

  it('renders every chart with data as inline SVG, byte-identical on a second run', async () => {
    const a = await renderReport(manifest);
    const b = await renderReport(manifest);
    expect(b).toBe(a);
    for (const id of ['class-ratio', 'turn-count', 'turn-position', 'model-mix', 'quarantine'])
      expect(a).toMatch(new RegExp(`data-chart="${id}" id="chart-${id}"><div class="svg"><svg`));
    expect(a).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // no CDN, no remote reference
  });

  it('escapes a model name from telemetry inside the SVG', async () => {
    const html = await renderReport(manifest);
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;');
  });

  it('rejects a manifest without the balancer sections', async () => {
    await expect(renderReport({ selected: { total: 1 } })).rejects.toThrow();
  });
});
