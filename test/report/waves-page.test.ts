/**
 * What a waves build adds to the report page beyond the wave charts: the waves' key
 * facts beside the page's other facts, and the shortfall chart's caption saying that
 * "available" counts judged samples only.
 */
import { describe, expect, it } from 'vitest';
import type { BalanceConfigInput } from '../../shared/contracts/config';
import { ReportManifestSchema, type ReportManifest } from '../../shared/report/manifest';
import { renderPage, reportModel } from '../../shared/report/page';
import { shortfallChart } from '../../shared/report/specs';
import { conversationRows, manifestOf } from './fixture';

const WAVES = {
  outcome: 'quotas-met',
  samples: 5000,
  judged: 1234,
  waves: [
    { wave: 1, kind: 'pilot', judged: 400, found: { '0': 150, '1': 240 }, requests: 20 },
    { wave: 2, kind: 'yield', judged: 500, found: { '0': 260, '1': 230 }, requests: 25 },
    { wave: 3, kind: 'yield', judged: 334, found: { '0': 200, '1': 130 }, requests: 17 },
  ],
};

const CONFIG: BalanceConfigInput = { total: 100, ratio: 0.5, stratify: ['turnBucket'], seed: 1 };

function parsed(extra: Record<string, unknown> = {}, config = CONFIG, rows = 300): ReportManifest {
  return ReportManifestSchema.parse(manifestOf(conversationRows(rows), config, extra));
}

const at = (m: unknown, key: string): unknown =>
  key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], m);

/** The page's facts as rendered: [attribute, key, data-value, shown text]. */
function renderedFacts(html: string): [string, string, string, string][] {
  return [
    ...html.matchAll(/<dd data-(key|derived)="([^"]*)" data-value="([^"]*)">([^<]*)<\/dd>/g),
  ].map((x) => [x[1]!, x[2]!, x[3]!, x[4]!] as [string, string, string, string]);
}

describe('waves facts on the page', () => {
  it('shows outcome, samples judged, waves and samples judged per delivered sample', () => {
    const m = parsed({ waves: WAVES });
    expect(m.selected.total).toBeGreaterThan(0);
    const perDelivered = (WAVES.judged / m.selected.total).toFixed(3);
    const facts = reportModel(m).facts;
    expect(facts.filter((f) => f.key.startsWith('waves'))).toEqual([
      { key: 'waves.outcome', label: 'wave outcome', value: 'quotas-met' },
      { key: 'waves.judged', label: 'judged in waves', value: 1234 },
      { key: 'waves.waves.length', label: 'waves', value: 3 },
      {
        key: 'waves.judged / selected.total',
        label: 'judged per delivered sample',
        value: perDelivered,
        derived: true,
      },
    ]);
    // Listed with the other facts, after the judge's.
    const keys = facts.map((f) => f.key);
    expect(keys.indexOf('waves.outcome')).toBeGreaterThan(keys.indexOf('split.validation'));

    const html = renderPage(reportModel(m), {});
    const shown = renderedFacts(html);
    expect(shown).toContainEqual(['key', 'waves.outcome', 'quotas-met', 'quotas-met']);
    expect(shown).toContainEqual(['key', 'waves.judged', '1234', '1,234']);
    expect(shown).toContainEqual(['key', 'waves.waves.length', '3', '3']);
    expect(shown).toContainEqual([
      'derived',
      'waves.judged / selected.total',
      perDelivered,
      perDelivered,
    ]);
    expect(perDelivered).toMatch(/^\d+\.\d{3}$/);
    expect(html).toContain('<dt>judged per delivered sample</dt>');
    // Every keyed fact equals the manifest at its path (as the browser test checks).
    for (const [kind, key, value] of shown)
      if (kind === 'key') expect(value, key).toBe(String(at(m, key)));
  });

  it('keeps three decimals, and leaves out the ratio when nothing was delivered', () => {
    const m = parsed({ waves: { ...WAVES, judged: 200 } });
    const ratio = (f: ReportManifest) =>
      reportModel(f).facts.find((x) => x.label === 'judged per delivered sample')?.value;
    expect(ratio(m)).toBe((200 / m.selected.total).toFixed(3));
    const none = { ...m, selected: { ...m.selected, total: 0 } };
    expect(ratio(none)).toBeUndefined();
    expect(reportModel(none).facts.map((f) => f.key)).toContain('waves.judged');
  });

  it('escapes the outcome', () => {
    const evil = `"><img src=x onerror=alert(1)><script>alert(2)</script>`;
    const html = renderPage(reportModel(parsed({ waves: { ...WAVES, outcome: evil } })), {});
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script');
    expect(html).toContain(
      'data-key="waves.outcome" data-value="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;',
    );
  });

  it('are absent without waves', () => {
    const m = parsed();
    expect(m.waves).toBeUndefined();
    const facts = reportModel(m).facts;
    expect(facts.length).toBeGreaterThanOrEqual(12);
    expect(facts.filter((f) => f.key.includes('waves') || f.derived)).toEqual([]);
    const html = renderPage(reportModel(m), {});
    expect(html).not.toContain('data-derived');
    expect(html).not.toContain('data-key="waves');
    expect(html).not.toContain('wave outcome');
    expect(html).not.toContain('judged per delivered sample');
  });
});

describe('shortfall caption in a waves build', () => {
  const NOTE = '(waves judge only what the quotas need; see the waves charts)';
  // Supply below the quotas (cells fall short) and above them (none does).
  const short = { ...CONFIG, total: 3000, seed: 2 };

  it('says that available counts the judged samples only', () => {
    for (const config of [short, CONFIG]) {
      const plain = parsed({}, config, 600);
      const waved = parsed({ waves: WAVES }, config, 600);
      const n = plain.shortfalls.strata.length;
      const before = shortfallChart(plain).caption;
      const after = shortfallChart(waved).caption;
      expect(before).not.toContain('judged');
      expect(after).toContain(NOTE);
      expect(after).toContain('Available: the judged samples the wave planner offered');
      if (n > 0) {
        expect(before).toBe(
          `${n} stratum cell(s) held fewer distinct samples than their nominal quota; the difference was redistributed to the others.` +
            (plain.nearDuplicates
              ? ' Available in a short cell: its supply less the near-duplicates of selected samples.'
              : ''),
        );
        expect(after).toContain(
          `${n} stratum cell(s) held fewer distinct samples than their nominal quota among the judged samples;`,
        );
      } else {
        expect(before).toBe('No stratum fell short of its nominal quota.');
        expect(after).toContain(
          'No stratum fell short of its nominal quota among the judged samples.',
        );
      }
      // Only the words change: the bars are the same.
      expect(shortfallChart(waved).spec).toEqual(shortfallChart(plain).spec);
    }
    expect(parsed({}, short, 600).shortfalls.strata.length).toBeGreaterThan(0);
    expect(parsed({}, CONFIG, 600).shortfalls.strata.length).toBe(0);
  });
});
