/** `annotate` and `calibrate` end to end: files in, files out, the LLM judge on the fake server. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { cmdAnnotate } from '../../cli/annotate';
import { cmdCalibrate } from '../../cli/calibrate';
import { generateTelemetry } from '../../shared/source/generate';
import { oracleLabel, startFakeOpenAI, type FakeOpenAI } from './fake-openai';

let dir: string;
let telemetry: string;
let fake: FakeOpenAI;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'judge-cli-'));
  telemetry = join(dir, 'telemetry.jsonl');
  const rows = [...generateTelemetry({ conversations: 30, seed: 3, incompleteShare: 0 })];
  await writeFile(telemetry, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  fake = await startFakeOpenAI();
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.stubEnv('JUDGE_API_KEY', 'sk-test');
});
afterEach(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  await fake.close();
});

const readJsonl = async (p: string) =>
  (await readFile(p, 'utf8'))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const readJson = async (p: string) => JSON.parse(await readFile(p, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('sft-balancer annotate', () => {
  it('labels every session sample with the LLM judge and a rebuild is served from the cache', async () => {
    const out = join(dir, 'a1', 'annotated.jsonl');
    const args = ['--input', telemetry, '--out', out, '--judge', 'openai', '--model', 'gpt-test'];
    const more = [
      '--base-url',
      `${fake.url}/v1`,
      '--batch-size',
      '8',
      '--cache-dir',
      join(dir, 'cache'),
      '-q',
    ];
    expect(await cmdAnnotate([...args, ...more])).toBe(0);
    const rows = await readJsonl(out);
    expect(rows).toHaveLength(30);
    for (const r of rows) {
      expect(r.label).toBe(oracleLabel(r.userMessage as string));
      expect(r.judge).toBe('openai:gpt-test');
      expect(r.confidence).toBe(0.9);
    }
    const summary = await readJson(join(dir, 'a1', 'annotated.judge.json'));
    const calls = summary.judge.usage.calls as number;
    expect(calls).toBe(fake.chats().length);
    expect(calls).toBeGreaterThanOrEqual(Math.ceil(30 / 8) - 1); // identical messages are judged once
    expect(summary.judge.usage.promptTokens).toBeGreaterThan(0);
    expect(JSON.stringify(summary)).not.toContain('sk-test');

    const out2 = join(dir, 'a2', 'annotated.jsonl');
    expect(await cmdAnnotate([...args.slice(0, 3), out2, ...args.slice(4), ...more])).toBe(0);
    const again = await readJson(join(dir, 'a2', 'annotated.judge.json'));
    expect(again.judge.usage).toMatchObject({ calls: 0, cacheHits: 30 });
    expect(await readFile(out2, 'utf8')).toBe(await readFile(out, 'utf8'));
  });

  it('annotates through the Batch API with a --judge-config', async () => {
    const config = join(dir, 'batch.json');
    await writeFile(
      config,
      JSON.stringify({
        kind: 'openai',
        model: 'gpt-test',
        baseURL: `${fake.url}/v1`,
        apiKey: 'k',
        mode: 'batch',
        batchSize: 8,
        batch: { pollIntervalMs: 5 },
      }),
    );
    const out = join(dir, 'b1', 'annotated.jsonl');
    expect(
      await cmdAnnotate([
        '--input',
        telemetry,
        '--out',
        out,
        '--judge-config',
        config,
        '--no-cache',
        '-q',
      ]),
    ).toBe(0);
    expect(await readJsonl(out)).toHaveLength(30);
    expect(fake.batchesCreated).toBe(1); // the whole run is one job
    const summary = await readJson(join(dir, 'b1', 'annotated.judge.json'));
    expect(summary.judge.name).toBe('openai:gpt-test:batch');
    expect(summary.judge.usage.batchCalls).toBe(summary.judge.usage.calls);
    expect(JSON.stringify(summary)).not.toContain('"apiKey"');
  });

  it('exits 1 with the reason when the endpoint refuses the credentials', async () => {
    fake.chat = () => ({ status: 401, json: { error: { message: 'bad key' } } });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await cmdAnnotate([
      '--input', telemetry, '--out', join(dir, 'a3', 'x.jsonl'),
      '--judge', 'openai', '--model', 'm', '--base-url', `${fake.url}/v1`, '--no-cache', '-q',
    ]); // prettier-ignore
    expect(code).toBe(1);
    expect(String(stderr.mock.calls[0]?.[0])).toMatch(/HTTP 401/);
  });
});

describe('sft-balancer calibrate', () => {
  it('reports perfect agreement for a replay of the gold file, and panel agreement', async () => {
    const gold = join(dir, 'gold.jsonl');
    await cmdAnnotate(['--input', telemetry, '--out', gold, '-q']); // signals labels as "gold"
    const report = join(dir, 'cal.json');
    expect(
      await cmdCalibrate([
        '--gold',
        gold,
        '--judge',
        'replay',
        '--replay',
        gold,
        '--json',
        report,
        '-q',
      ]),
    ).toBe(0);
    const r = await readJson(report);
    expect(r.report).toMatchObject({ n: 30, labelled: 30, accuracy: 1, coverage: 1 });
    expect(Object.keys(r.report.byStratum as object).length).toBeGreaterThan(0);

    const panelConfig = join(dir, 'panel.json');
    await writeFile(
      panelConfig,
      JSON.stringify({
        kind: 'panel',
        judges: [
          { kind: 'replay', source: gold },
          { kind: 'openai', model: 'gpt-test', baseURL: `${fake.url}/v1`, apiKey: 'k' },
          { kind: 'signals' },
        ],
      }),
    );
    const report2 = join(dir, 'cal2.json');
    expect(
      await cmdCalibrate([
        '--gold',
        gold,
        '--judge-config',
        panelConfig,
        '--no-cache',
        '--json',
        report2,
        '-q',
      ]),
    ).toBe(0);
    const p = await readJson(report2);
    // Replay and signals are the same labels, so they always form the majority.
    expect(p.report.accuracy).toBe(1);
    expect(p.panel.judges).toHaveLength(3);
    expect(p.panel.pairwise[0][2]).toBe(1);
    expect(p.panel.samples).toBe(30);
  });
});
