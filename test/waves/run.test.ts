import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { main } from '../../cli/main';
import { generateTelemetry } from '../../shared/source/generate';

const dir = mkdtempSync(join(tmpdir(), 'sftb-waves-'));
const telemetry = join(dir, 'telemetry.jsonl');

interface Manifest {
  judge: { calls: number; samplesJudged: number };
  selected: {
    total: number;
    byLabel: Record<string, number>;
    byLabelStratum: Record<string, Record<string, number>>;
  };
  shortfalls: { classes: { action: string }[] };
  waves: {
    outcome: string;
    judged: number;
    waves: { wave: number; judged: number; requests: number }[];
    strata: { label: number; stratum: string; target: number; quota: number; delivered: number }[];
    binMix: { label: number; tv: number }[];
  };
}

const manifest = (out: string) =>
  JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Manifest;

function quietly() {
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
}

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

beforeAll(() => {
  // Known labels: the generated file is its own replay source (the judge reads `label`).
  const rows = [...generateTelemetry({ conversations: 6_000, seed: 11, annotated: true })];
  writeFileSync(telemetry, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
});

const run = (out: string, ...extra: string[]) =>
  main([
    'run',
    '--in-process',
    '--quiet',
    '--input',
    telemetry,
    '--out',
    out,
    '--replay',
    telemetry,
    '--total',
    '1000',
    // The wave planner's quotas assume exact dedup only: near-dedup off, the counts are the point.
    '--no-near-dedup',
    ...extra,
  ]);

describe('run --in-process --waves', () => {
  it('meets every quota with fewer judge calls than judging every sample', async () => {
    quietly();
    const all = join(dir, 'all');
    const waves = join(dir, 'waves');
    expect(await run(all, '--ratio', '70:30')).toBe(0);
    expect(await run(waves, '--ratio', '70:30', '--waves')).toBe(0);
    const a = manifest(all);
    const w = manifest(waves);
    expect((a as Partial<Manifest>).waves).toBeUndefined();
    expect(w.waves.outcome).toBe('quotas-met');
    expect(w.selected.total).toBe(1_000);
    expect(w.selected.byLabel).toEqual({ '0': 700, '1': 300 });
    expect(w.judge.samplesJudged).toBe(w.waves.judged);
    expect(w.judge.samplesJudged).toBeLessThan(a.judge.samplesJudged / 2);
    // Calls per wave add up to the judge's requests.
    expect(w.waves.waves.reduce((s, x) => s + x.requests, 0)).toBe(w.judge.calls);
    // Achieved strata beside the target: each quota delivered, and near the full run's.
    for (const s of w.waves.strata) {
      expect(w.selected.byLabelStratum[s.label]![s.stratum]).toBe(s.delivered);
      expect(s.delivered).toBe(s.quota);
      const full = a.selected.byLabelStratum[s.label]![s.stratum]!;
      expect(Math.abs(s.delivered - full)).toBeLessThanOrEqual(15);
    }
    expect(w.waves.binMix.map((m) => m.label)).toEqual([0, 1]);
  });

  it('--json reports the waves: outcome, samples judged, calls per delivered sample', async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const dirOut = join(dir, 'json');
    expect(await run(dirOut, '--waves', '--json')).toBe(0);
    const summary = JSON.parse(out.join('')) as {
      waves: { outcome: string; judged: number; waves: number; callsPerDelivered: number };
    };
    const m = manifest(dirOut);
    expect(summary.waves).toEqual({
      outcome: 'quotas-met',
      judged: m.waves.judged,
      waves: m.waves.waves.length,
      callsPerDelivered: Math.round((m.waves.judged / 1_000) * 1000) / 1000,
    });
  });

  it('gives the same bytes on a second run', async () => {
    quietly();
    const a = join(dir, 'det-a');
    const b = join(dir, 'det-b');
    expect(await run(a, '--waves')).toBe(0);
    expect(await run(b, '--waves')).toBe(0);
    expect(readFileSync(join(b, 'train.jsonl'))).toEqual(readFileSync(join(a, 'train.jsonl')));
  });

  it('stops at the judge budget and balances what was judged (shrink)', async () => {
    quietly();
    const out = join(dir, 'budget');
    expect(await run(out, '--waves', '--judge-budget', '400')).toBe(0);
    const m = manifest(out);
    expect(m.waves.outcome).toBe('budget-exhausted');
    expect(m.judge.samplesJudged).toBe(400);
    expect(m.selected.total).toBeLessThan(1_000);
    expect(m.selected.byLabel['0']).toBe(m.selected.byLabel['1']);
    expect(m.shortfalls.classes.map((c) => c.action)).toContain('shrunk');
  });

  it('a budget with --on-shortfall fail fails the run', async () => {
    quietly();
    const code = await run(
      join(dir, 'fail'),
      '--waves',
      '--judge-budget',
      '400',
      '--on-shortfall',
      'fail',
    );
    expect(code).toBe(1);
  });

  /** [flags, message] */
  const USAGE: [string[], RegExp][] = [
    [['--judge-budget', '10'], /--judge-budget needs --waves/],
    [['--waves', '--explore', '2'], /--explore/],
    [['--waves', '--max-waves', '101'], /--max-waves: .*100/],
  ];
  it.each(USAGE)('%j is a usage error', async (flags, message) => {
    const err: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    expect(await run(join(dir, 'usage'), ...flags)).toBe(2);
    expect(err.join('')).toMatch(message);
  });

  it('--waves --replay on the runner (Azurite, queues) gives the in-process bytes', async () => {
    quietly();
    const tag = randomUUID().slice(0, 8);
    for (const [k, v] of Object.entries({
      SFT_CONTAINER: `rw-${tag}`,
      SFT_PLAN_QUEUE: `rwp-${tag}`,
      SFT_SHARD_QUEUE: `rws-${tag}`,
      SFT_FANIN_QUEUE: `rwf-${tag}`,
      SFT_SHARD_BYTES: String(1 << 20),
    }))
      vi.stubEnv(k, v);
    // Both judge with the recorded labels (--replay: SFT_JUDGE=replay on the runner).
    const args = (out: string) => [
      'run',
      '--quiet',
      '--input',
      telemetry,
      '--out',
      out,
      '--replay',
      telemetry,
      '--no-near-dedup',
    ];
    const inproc = join(dir, 'signals-inproc');
    const runner = join(dir, 'signals-runner');
    const storage = inject('azurite').connectionString;
    expect(await main([...args(inproc), '--in-process', '--waves', '--total', '600'])).toBe(0);
    expect(await main([...args(runner), '--storage', storage, '--waves', '--total', '600'])).toBe(
      0,
    );
    expect(readFileSync(join(runner, 'train.jsonl'))).toEqual(
      readFileSync(join(inproc, 'train.jsonl')),
    );
    const w = manifest(runner).waves;
    expect(w.outcome).toBe('quotas-met');
    expect(w.waves.map((x) => x.judged)).toEqual(manifest(inproc).waves.waves.map((x) => x.judged));
  }, 120_000);
});
