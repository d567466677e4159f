/**
 * Strata that fit the data (issue 15): the complexity tier thresholds set by flag,
 * setting and request body, or fitted to the input's score terciles with a fixed-size
 * histogram; the manifest and the report say which thresholds were used.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { fitComplexityToFile, signalRowOf } from '../../cli/complexity-fit';
import { main } from '../../cli/main';
import { ParquetTableWriter } from '../../adapters/files/parquet';
import type { TableColumn } from '../../shared/dataset/index';
import { BuildRequestSchema, buildSpecOf } from '../../shared/build/spec';
import { parseBalanceConfig } from '../../shared/contracts/config';
import { generateTelemetry } from '../../shared/source/generate';
import { complexityThresholdsNote } from '../../shared/report/specs';
import { loadSettings, SettingsError } from '../../shared/build/settings';
import { ScoreHistogram, complexityScore, complexityTier } from '../../shared/strata/strata';

const dir = mkdtempSync(join(tmpdir(), 'sftb-complexity-'));
const annotated = join(dir, 'annotated.jsonl');
const telemetry = join(dir, 'telemetry.jsonl');
let rows: Record<string, unknown>[] = [];

beforeAll(() => {
  rows = [...generateTelemetry({ conversations: 3000, seed: 7, annotated: true })] as never;
  writeFileSync(annotated, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const plain = [...generateTelemetry({ conversations: 3000, seed: 7 })];
  writeFileSync(telemetry, plain.map((r) => JSON.stringify(r)).join('\n') + '\n');
});

afterEach(() => vi.restoreAllMocks());

/** The builds here are about strata: the router probe at their end is left out. */
const NO_PROBE = '--no-probe';

async function cli(...argv: string[]): Promise<number> {
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const code = await main(argv);
  vi.restoreAllMocks();
  return code;
}

interface Manifest {
  config: { complexity: { tiers: [number, number]; fitted?: { rows: number } } };
  input: { byLabelStratum: Record<string, Record<string, { rows: number }>> };
}
const manifestOf = (out: string) =>
  JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;

/** Rows per tier, over both labels. */
const perTier = (m: Manifest) => {
  const out: Record<string, number> = { low: 0, medium: 0, high: 0 };
  for (const byStratum of Object.values(m.input.byLabelStratum))
    for (const [k, c] of Object.entries(byStratum)) out[k] = (out[k] ?? 0) + c.rows;
  return out;
};

/** Rows per tier as computed here from the rows themselves. */
function expectedPerTier(tiers: [number, number]) {
  const c = parseBalanceConfig({ complexity: { tiers } }).complexity;
  const out: Record<string, number> = { low: 0, medium: 0, high: 0 };
  for (const r of rows) out[complexityTier(complexityScore(signalRowOf(r)!, c), c)]!++;
  return out;
}

describe('--complexity-thresholds', () => {
  it.each([
    [[0.25, 0.6] as [number, number]],
    [[0.1, 0.2] as [number, number]],
    [[0, 0] as [number, number]],
  ])('%j: the strata follow the thresholds, and the manifest names them', async (tiers) => {
    const out = join(dir, `balance-${tiers.join('-')}`);
    const code = await cli(
      'balance',
      '--input',
      annotated,
      '--out',
      out,
      '--stratify',
      'complexity',
      '--total',
      '500',
      '--complexity-thresholds',
      tiers.join(','),
      NO_PROBE,
    );
    expect(code).toBe(0);
    const m = manifestOf(out);
    expect(m.config.complexity.tiers).toEqual(tiers);
    expect(m.config.complexity.fitted).toBeUndefined();
    const got = perTier(m);
    expect(got).toEqual(expectedPerTier(tiers));
    if (tiers[1] === 0) expect(got).toEqual({ low: 0, medium: 0, high: rows.length });
  });

  it.each(['0.5', '0.6,0.2', 'a,b', '0.2,1.5'])('"%s" is a usage error (exit 2)', async (bad) => {
    expect(
      await cli(
        'balance',
        '--input',
        annotated,
        '--out',
        join(dir, 'x'),
        '--complexity-thresholds',
        bad,
      ),
    ).toBe(2);
  });
});

describe('--complexity-fit quantiles', () => {
  it('puts about a third of the first turns in each tier (±3 points), deterministically', async () => {
    const base = parseBalanceConfig({ stratify: ['complexity'] });
    const fitted = await fitComplexityToFile(base, telemetry, true);
    const again = await fitComplexityToFile(base, telemetry, true);
    expect(again.complexity).toEqual(fitted.complexity);
    const firsts = rows.filter((r) => r.turnIndex === 1);
    expect(fitted.complexity.fitted).toEqual({
      method: 'quantiles',
      rows: firsts.length,
      source: 'first turns of the input',
    });
    const counts = { low: 0, medium: 0, high: 0 };
    for (const r of firsts)
      counts[
        complexityTier(complexityScore(signalRowOf(r)!, fitted.complexity), fitted.complexity)
      ]++;
    for (const n of Object.values(counts))
      expect(Math.abs(n / firsts.length - 1 / 3)).toBeLessThan(0.03);
    // The defaults do not: the fit changed something.
    expect(fitted.complexity.tiers).not.toEqual(base.complexity.tiers);
    // Row order does not matter (a histogram, not a sample).
    const shuffled = join(dir, 'shuffled.jsonl');
    const lines = readFileSync(telemetry, 'utf8').trim().split('\n').reverse();
    writeFileSync(shuffled, lines.join('\n') + '\n');
    expect((await fitComplexityToFile(base, shuffled, true)).complexity.tiers).toEqual(
      fitted.complexity.tiers,
    );
  });

  it('balance --complexity-fit: thirds per tier in the input, fitted thresholds in manifest and report', async () => {
    const out = join(dir, 'fit-balance');
    expect(
      await cli(
        'balance',
        '--input',
        annotated,
        '--out',
        out,
        '--stratify',
        'complexity',
        '--total',
        '600',
        '--complexity-fit',
        'quantiles',
        NO_PROBE,
      ),
    ).toBe(0);
    const m = manifestOf(out);
    expect(m.config.complexity.fitted?.rows).toBe(rows.length);
    const got = perTier(m);
    for (const n of Object.values(got))
      expect(Math.abs(n / rows.length - 1 / 3)).toBeLessThan(0.03);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain(
      `complexity thresholds ${m.config.complexity.tiers[0]} / ${m.config.complexity.tiers[1]} (fitted`,
    );
  });

  it('reads CSV, Parquet and a folder of parts, with the column mapping, as it reads JSONL', async () => {
    const plain = readFileSync(telemetry, 'utf8').trim().split('\n');
    const objs = plain.map((l) => JSON.parse(l) as Record<string, unknown>);
    const cols = Object.keys(objs[0]!);
    const cell = (v: unknown) => {
      const t = typeof v === 'string' ? v : JSON.stringify(v);
      return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
    };
    // numRequests comes from a column named otherwise, mapped back.
    const header = cols.map((c) => (c === 'numRequests' ? 'requests' : c));
    const csv = (rs: Record<string, unknown>[]) =>
      [header.join(','), ...rs.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\r\n');
    writeFileSync(join(dir, 'fit.csv'), csv(objs));
    const parts = join(dir, 'fit-parts');
    mkdirSync(parts);
    const half = Math.floor(objs.length / 2);
    writeFileSync(join(parts, 'a.csv'), csv(objs.slice(0, half)));
    const types: Record<string, TableColumn['type']> = {
      turnIndex: 'int32',
      turnCount: 'int32',
      numRequests: 'int32',
      promptTokenDelta: 'int32',
      turnDurationMs: 'double',
      tools: 'string_list',
    };
    const w = new ParquetTableWriter(
      join(parts, 'b.parquet'),
      cols.map((c) => ({
        name: c === 'numRequests' ? 'requests' : c,
        type: types[c] ?? 'string',
        nullable: true,
      })),
      { rowGroupRows: 500 },
    );
    for (const r of objs.slice(half))
      w.write(
        Object.fromEntries(cols.map((c) => [c === 'numRequests' ? 'requests' : c, r[c]])) as never,
      );
    w.close();
    const base = parseBalanceConfig({ stratify: ['complexity'] });
    const want = await fitComplexityToFile(base, telemetry, true);
    const opts = { columns: { numRequests: 'requests' } };
    for (const input of [join(dir, 'fit.csv'), parts]) {
      const got = await fitComplexityToFile(base, input, true, opts);
      expect(got.complexity, input).toEqual(want.complexity);
    }
    // And `balance --complexity-fit` on a CSV copy of the annotated rows fits what it fits on the JSONL.
    const acols = Object.keys(rows[0]!);
    const acsv = [acols.join(','), ...rows.map((r) => acols.map((c) => cell(r[c])).join(','))].join(
      '\r\n',
    );
    writeFileSync(join(dir, 'annotated.csv'), acsv);
    const tiers: unknown[] = [];
    for (const input of [annotated, join(dir, 'annotated.csv')]) {
      const out = join(dir, `fit-${tiers.length}`);
      const argv = ['balance', '--input', input, '--out', out, '--stratify', 'complexity'];
      expect(await cli(...argv, '--total', '600', '--complexity-fit', 'quantiles')).toBe(0);
      const m = manifestOf(out);
      expect(m.config.complexity.fitted?.rows).toBe(rows.length);
      tiers.push(m.config.complexity.tiers);
    }
    expect(tiers[1]).toEqual(tiers[0]);
  });

  it('with --complexity-thresholds too is a usage error', async () => {
    expect(
      await cli(
        'balance',
        '--input',
        annotated,
        '--out',
        join(dir, 'y'),
        '--complexity-fit',
        'quantiles',
        '--complexity-thresholds',
        '0.1,0.2',
      ),
    ).toBe(2);
    expect(
      await cli(
        'balance',
        '--input',
        annotated,
        '--out',
        join(dir, 'y'),
        '--complexity-fit',
        'median',
      ),
    ).toBe(2);
  });
});

describe('ScoreHistogram', () => {
  it('finds terciles of evenly spread scores within one bin', () => {
    const h = new ScoreHistogram();
    for (let i = 0; i < 30_000; i++) h.add(i / 30_000);
    const [lo, hi] = h.thresholds();
    expect(Math.abs(lo - 1 / 3)).toBeLessThanOrEqual(1 / ScoreHistogram.BINS);
    expect(Math.abs(hi - 2 / 3)).toBeLessThanOrEqual(1 / ScoreHistogram.BINS);
    expect(h.rows).toBe(30_000);
  });
});

describe('setting and request body', () => {
  const env = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
  const specOf = (request: unknown, e: Record<string, string> = {}) => {
    const s = loadSettings({ ...env, ...e });
    return buildSpecOf({
      id: 'b-test',
      createdAt: new Date(0).toISOString(),
      createdBy: 'http',
      request: BuildRequestSchema.parse(request),
      defaults: s.defaults,
      source: s.source,
      judge: { name: 'signals', batchSize: 20 },
      minJudgedShare: 0.95,
      shardBytes: 1 << 20,
      maxShards: 10,
    });
  };

  it('SFT_COMPLEXITY_THRESHOLDS sets the default; the body field overrides it', () => {
    expect(specOf({}).config.complexity.tiers).toEqual([0.25, 0.6]);
    expect(specOf({}, { SFT_COMPLEXITY_THRESHOLDS: '0.1,0.3' }).config.complexity.tiers).toEqual([
      0.1, 0.3,
    ]);
    expect(
      specOf({ complexityThresholds: [0.2, 0.7] }, { SFT_COMPLEXITY_THRESHOLDS: '0.1,0.3' }).config
        .complexity.tiers,
    ).toEqual([0.2, 0.7]);
  });

  it('bad values name the setting or the field', () => {
    expect(() => loadSettings({ ...env, SFT_COMPLEXITY_THRESHOLDS: '0.5' })).toThrow(SettingsError);
    expect(() => loadSettings({ ...env, SFT_COMPLEXITY_THRESHOLDS: '0.5,0.2' })).toThrow(
      /SFT_COMPLEXITY_THRESHOLDS/,
    );
    const bad = BuildRequestSchema.safeParse({ complexityThresholds: [0.7, 0.2] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path[0]).toBe('complexityThresholds');
  });

  it('the report note names given and fitted thresholds', () => {
    const m = { config: { complexity: { tiers: [0.2, 0.5] } } } as never;
    expect(complexityThresholdsNote(m)).toBe('complexity thresholds 0.2 / 0.5');
    const f = {
      config: {
        complexity: {
          tiers: [0.2, 0.5],
          fitted: { method: 'quantiles', rows: 1200, source: 'rows of the input' },
        },
      },
    } as never;
    expect(complexityThresholdsNote(f)).toBe(
      'complexity thresholds 0.2 / 0.5 (fitted: quantiles of 1,200 rows of the input)',
    );
  });
});
