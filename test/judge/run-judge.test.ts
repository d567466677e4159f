/**
 * `run` with the LLM judge, end to end on the local OpenAI wire server: the same judge
 * flags on the runner and in-process give the same bytes, every sample goes through
 * the LLM, the manifest's cost is tokens × the price table, and refused or missing
 * credentials end in one line, exit 1, nothing written.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildRequestSchema, waveSettingsOf } from '../../shared/build/spec';
import { createJudge } from '../../adapters/judge/factory';
import { generateTelemetry } from '../../shared/source/generate';
import { JudgeConfigError } from '../../shared/judge/llm';
import { judgeSettingsFromEnv } from '../../shared/judge/settings';
import { loadSettings } from '../../shared/build/settings';
import { PRICE_TABLE, PRICES_AS_OF } from '../../shared/judge/prices';
import { oracleLabel, samplesOf, startFakeOpenAI, type FakeOpenAI } from './fake-openai';

const BIN = join(__dirname, '..', '..', 'bin', 'sft-balancer.js');
let dir: string;
let telemetry: string;
let messages: number;

/** An environment with no judge settings, no keys and no Azure credential of any kind. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(SFT_|JUDGE_|AZURE_|OPENAI_|IDENTITY_|MSI_|AzureWebJobs)/.test(k)) env[k] = v;
  // No Azure CLI or PowerShell on the PATH: DefaultAzureCredential has nothing to use.
  env.PATH = '/usr/bin:/bin';
  env.HOME = dir;
  return { ...env, ...extra };
}

function cli(args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number; stdout: string; stderr: string; ms: number }>((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [BIN, ...args], { env, cwd: dir });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - t0 }));
  });
}

const readJson = async (p: string) => JSON.parse(await readFile(p, 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'run-judge-'));
  telemetry = join(dir, 'telemetry.jsonl');
  const rows = [...generateTelemetry({ conversations: 300, seed: 5, incompleteShare: 0 })];
  await writeFile(telemetry, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  messages = new Set(rows.filter((r) => r.turnIndex === 0).map((r) => r.userMessage)).size;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every sample id the fake was asked about. */
const judgedIds = (fake: FakeOpenAI) =>
  new Set(fake.chats().flatMap((c) => samplesOf(c.body).samples.map((s) => s.id)));

/** Cost of the manifest's tokens at the table's gpt-4o-mini row. */
function tableCost(c: { promptTokens: number; cachedTokens: number; completionTokens: number }) {
  const p = PRICE_TABLE['gpt-4o-mini']!;
  return (
    ((c.promptTokens - c.cachedTokens) * p.inputPerMTok +
      c.cachedTokens * p.cachedInputPerMTok +
      c.completionTokens * p.outputPerMTok) /
    1e6
  );
}

describe('run --judge openai: runner and in-process alike', () => {
  it('labels every sample through the LLM, gives the same train.jsonl, and prices the tokens', async () => {
    const outs: Record<string, string> = {};
    for (const mode of ['runner', 'in-process'] as const) {
      const fake = await startFakeOpenAI();
      try {
        const out = join(dir, `llm-${mode}`);
        const r = await cli(
          [
            'run',
            '--input',
            telemetry,
            '--out',
            out,
            '--total',
            '60',
            '--judge',
            'openai',
            '--model',
            'gpt-4o-mini',
            '--base-url',
            `${fake.url}/v1`,
            '--no-cache',
            '-q',
            ...(mode === 'in-process' ? ['--in-process'] : []),
          ],
          cleanEnv({ JUDGE_API_KEY: 'sk-test' }),
        );
        expect(r.stderr, mode).toBe('');
        expect(r.code, mode).toBe(0);
        outs[mode] = await readFile(join(out, 'train.jsonl'), 'utf8');
        const m = await readJson(join(out, 'manifest.json'));
        // Every sample went to the LLM and came back labelled.
        expect(m.judge.samplesJudged, mode).toBe(m.judge.labelled);
        expect(judgedIds(fake).size, mode).toBeGreaterThanOrEqual(messages);
        expect(m.judge.labelledBy, mode).toMatchObject({
          name: 'openai:gpt-4o-mini',
          kind: 'llm',
          model: 'gpt-4o-mini',
          rubricVersion: expect.any(String),
        });
        const c = m.judge.cost;
        expect(c.promptTokens, mode).toBeGreaterThan(0);
        expect(c.completionTokens, mode).toBeGreaterThan(0);
        expect(c.estimatedCost, mode).toBeCloseTo(tableCost(c), 6);
        expect(c.pricing, mode).toMatchObject({ source: 'gpt-4o-mini', asOf: PRICES_AS_OF });
        expect(c.pricing.note).toContain(`prices as of ${PRICES_AS_OF}, check the provider's page`);
        for (const line of outs[mode].trim().split('\n')) {
          const row = JSON.parse(line) as {
            label: number;
            messages: { content: string }[];
            metadata: { judge: string };
          };
          // Labelled by the LLM (the fake's oracle), and recorded so on the row.
          expect(row.metadata.judge).toBe('openai:gpt-4o-mini');
          expect(row.label).toBe(oracleLabel(row.messages[0]!.content));
        }
        if (mode === 'runner') {
          // What GET /api/builds/{id} serves: the same tokens and cost.
          const status = await readJson(join(out, 'status.json'));
          expect(status.cost).toMatchObject({
            promptTokens: c.promptTokens,
            cachedTokens: c.cachedTokens,
            completionTokens: c.completionTokens,
            estimatedCost: c.estimatedCost,
          });
        }
        expect(r.stdout).toContain('labelled by openai:gpt-4o-mini');
        expect(r.stdout).toContain('est. cost');
        const report = await readFile(join(out, 'report.html'), 'utf8');
        expect(report).not.toContain('data-warning="signals"');
        expect(report).toContain('data-key="judge.cost.estimatedCost"');
      } finally {
        await fake.close();
      }
    }
    expect(outs['in-process']).toBe(outs.runner);
  }, 240_000);

  it('--judge azure (a key, the Azure wire paths): the same bytes on the runner and in-process', async () => {
    const outs: Record<string, string> = {};
    for (const mode of ['runner', 'in-process'] as const) {
      const fake = await startFakeOpenAI();
      try {
        const out = join(dir, `azure-${mode}`);
        const r = await cli(
          [
            'run',
            '--input',
            telemetry,
            '--out',
            out,
            '--total',
            '60',
            '--judge',
            'azure',
            '--deployment',
            'judge-dep',
            '--endpoint',
            fake.url,
            '--no-cache',
            '-q',
            ...(mode === 'in-process' ? ['--in-process'] : []),
          ],
          cleanEnv({
            AZURE_OPENAI_API_KEY: 'azure-key',
            JUDGE_CACHE_MODEL: 'gpt-4o-mini-2024-07-18',
          }),
        );
        expect(r.stderr, mode).toBe('');
        expect(r.code, mode).toBe(0);
        expect(
          fake.chats().every((c) => c.path === '/openai/deployments/judge-dep/chat/completions'),
        ).toBe(true);
        expect(judgedIds(fake).size, mode).toBeGreaterThanOrEqual(messages);
        outs[mode] = await readFile(join(out, 'train.jsonl'), 'utf8');
        const m = await readJson(join(out, 'manifest.json'));
        expect(m.judge.labelledBy).toMatchObject({ name: 'azure:judge-dep', provider: 'azure' });
        // The deployment is priced by its model (JUDGE_CACHE_MODEL, as the Bicep sets it).
        expect(m.judge.cost.pricing.source).toBe('gpt-4o-mini');
        expect(m.judge.cost.estimatedCost).toBeCloseTo(tableCost(m.judge.cost), 6);
      } finally {
        await fake.close();
      }
    }
    expect(outs['in-process']).toBe(outs.runner);
  }, 240_000);

  it('with --waves: tokens and cost per wave, summing to the build total, on both paths', async () => {
    for (const mode of ['runner', 'in-process'] as const) {
      const fake = await startFakeOpenAI();
      try {
        const out = join(dir, `waves-${mode}`);
        const r = await cli(
          [
            'run',
            '--input',
            telemetry,
            '--out',
            out,
            '--total',
            '40',
            '--waves',
            '--judge',
            'openai',
            '--model',
            'gpt-4o-mini',
            '--base-url',
            `${fake.url}/v1`,
            '--no-cache',
            '-q',
            ...(mode === 'in-process' ? ['--in-process'] : []),
          ],
          cleanEnv({ JUDGE_API_KEY: 'sk-test' }),
        );
        expect(r.stderr, mode).toBe('');
        expect(r.code, mode).toBe(0);
        const c = (await readJson(join(out, 'manifest.json'))).judge.cost;
        expect(c.byWave.length, mode).toBeGreaterThan(0);
        const sum = (k: string) =>
          (c.byWave as Record<string, number>[]).reduce((a, w) => a + w[k]!, 0);
        expect(sum('promptTokens'), mode).toBe(c.promptTokens);
        expect(sum('completionTokens'), mode).toBe(c.completionTokens);
        expect(sum('estimatedCost'), mode).toBeCloseTo(c.estimatedCost, 5);
        expect(c.estimatedCost, mode).toBeCloseTo(tableCost(c), 6);
      } finally {
        await fake.close();
      }
    }
  }, 240_000);

  it('a judge budget in USD stops the waves once spent (flag, setting and body field alike)', async () => {
    const big = join(dir, 'big.jsonl');
    const rows = [...generateTelemetry({ conversations: 3000, seed: 6, incompleteShare: 0 })];
    await writeFile(big, rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
    const fake = await startFakeOpenAI();
    try {
      const args = (out: string, extra: string[]) => [
        'run',
        '--input',
        big,
        '--out',
        out,
        '--total',
        '600',
        '--waves',
        '--judge',
        'openai',
        '--model',
        'gpt-4o-mini',
        '--base-url',
        `${fake.url}/v1`,
        '--no-cache',
        '--in-process',
        '-q',
        ...extra,
      ];
      const env = cleanEnv({ JUDGE_API_KEY: 'sk-test' });
      expect((await cli(args(join(dir, 'usd-free'), []), env)).code).toBe(0);
      const free = await readJson(join(dir, 'usd-free', 'manifest.json'));
      expect(free.waves.waves.length).toBeGreaterThan(1);
      // A budget the pilot wave alone spends.
      const pilot = free.judge.cost.byWave[0].estimatedCost as number;
      const r = await cli(
        args(join(dir, 'usd-capped'), ['--judge-budget-usd', String(pilot)]),
        env,
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const capped = await readJson(join(dir, 'usd-capped', 'manifest.json'));
      expect(capped.waves.outcome).toBe('budget-exhausted');
      expect(capped.waves.waves).toHaveLength(1);
      expect(capped.judge.cost.estimatedCost).toBeLessThan(free.judge.cost.estimatedCost);
      // The runner (the app's wave-ops) stops on the same budget.
      const runner = args(join(dir, 'usd-runner'), ['--judge-budget-usd', String(pilot)]).filter(
        (a) => a !== '--in-process',
      );
      const rr = await cli(runner, env);
      expect(rr.stderr).toBe('');
      expect(rr.code).toBe(0);
      const onRunner = await readJson(join(dir, 'usd-runner', 'manifest.json'));
      expect(onRunner.waves.outcome).toBe('budget-exhausted');
      expect(onRunner.judge.cost.estimatedCost).toBeLessThan(free.judge.cost.estimatedCost);
    } finally {
      await fake.close();
    }
    // The setting and the request body mean the same.
    expect(
      loadSettings({ AzureWebJobsStorage: 'x', SFT_WAVES: 'true', SFT_JUDGE_BUDGET_USD: '12.5' })
        .defaults.waves,
    ).toEqual({ maxCost: 12.5 });
    expect(waveSettingsOf({ judgeBudgetUsd: 3 }, undefined)?.maxCost).toBe(3);
    expect(BuildRequestSchema.safeParse({ waves: { judgeBudgetUsd: -1 } }).success).toBe(false);
  }, 120_000);

  it('in-process honours SFT_JUDGE=openai and the JUDGE_* settings without flags', async () => {
    const fake = await startFakeOpenAI();
    try {
      const out = join(dir, 'env-in-process');
      const r = await cli(
        ['run', '--input', telemetry, '--out', out, '--total', '60', '--in-process', '-q'],
        cleanEnv({
          SFT_JUDGE: 'openai',
          JUDGE_MODEL: 'gpt-4o-mini',
          JUDGE_BASE_URL: `${fake.url}/v1`,
          JUDGE_API_KEY: 'sk-test',
          JUDGE_CACHE: 'false',
        }),
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(fake.chats().length).toBeGreaterThan(0);
      const m = await readJson(join(out, 'manifest.json'));
      expect(m.judge.labelledBy.name).toBe('openai:gpt-4o-mini');
    } finally {
      await fake.close();
    }
  }, 120_000);

  it('demo takes the same judge options (and refuses a bad one before generating)', async () => {
    const bad = await cli(
      ['demo', '--judge', 'openai', '--out', join(dir, 'demo-bad')],
      cleanEnv(),
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--judge openai needs --model');
    expect(existsSync(join(dir, 'demo-bad'))).toBe(false);
    const fake = await startFakeOpenAI();
    try {
      const out = join(dir, 'demo-llm');
      const r = await cli(
        [
          'demo',
          '--conversations',
          '200',
          '--total',
          '40',
          '--in-process',
          '--out',
          out,
          '--judge',
          'openai',
          '--model',
          'gpt-4o-mini',
          '--base-url',
          `${fake.url}/v1`,
          '--no-cache',
          '-q',
        ],
        cleanEnv({ JUDGE_API_KEY: 'sk-test' }),
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(fake.chats().length).toBeGreaterThan(0);
      const m = await readJson(join(out, 'dataset', 'manifest.json'));
      expect(m.judge.labelledBy.name).toBe('openai:gpt-4o-mini');
    } finally {
      await fake.close();
    }
  }, 120_000);

  it('a build labelled by the signals judge says so in the summary and the report header', async () => {
    const out = join(dir, 'signals');
    const r = await cli(
      ['run', '--input', telemetry, '--out', out, '--total', '60', '--in-process', '-q'],
      cleanEnv(),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('labelled by the offline signals heuristic');
    const report = await readFile(join(out, 'report.html'), 'utf8');
    expect(report).toContain('data-warning="signals"');
    expect(report).toContain('not for training a production router');
  }, 60_000);
});

describe('credentials fail politely', () => {
  for (const status of [401, 403]) {
    for (const mode of ['runner', 'in-process'] as const) {
      it(`a ${status} from the endpoint: one line, exit 1, nothing written (${mode})`, async () => {
        const fake = await startFakeOpenAI(() => ({
          status,
          json: {
            error: {
              message: 'Access denied due to invalid subscription key',
              code: String(status),
            },
          },
        }));
        try {
          const out = join(dir, `refused-${status}-${mode}`);
          const r = await cli(
            [
              'run',
              '--input',
              telemetry,
              '--out',
              out,
              '--total',
              '60',
              '--judge',
              'openai',
              '--model',
              'gpt-4o-mini',
              '--base-url',
              `${fake.url}/v1`,
              '-q',
              ...(mode === 'in-process' ? ['--in-process'] : []),
            ],
            cleanEnv({ JUDGE_API_KEY: 'sk-test' }),
          );
          expect(r.code).toBe(1);
          const lines = r.stderr.trim().split('\n');
          expect(lines, r.stderr).toHaveLength(1);
          expect(lines[0]).toContain(`HTTP ${status}`);
          expect(lines[0]).toContain('JUDGE_API_KEY');
          expect(r.stderr).not.toContain('    at ');
          expect(existsSync(out)).toBe(false);
        } finally {
          await fake.close();
        }
      }, 120_000);
    }
  }

  it("a 403 on the identity's token names the role to grant", async () => {
    const fake = await startFakeOpenAI(() => ({
      status: 403,
      json: {
        error: {
          code: 'PermissionDenied',
          message: 'The principal lacks the required data action',
        },
      },
    }));
    try {
      const settings = judgeSettingsFromEnv({
        JUDGE_KIND: 'openai',
        JUDGE_PROVIDER: 'azure',
        JUDGE_MODEL: 'judge',
        AZURE_OPENAI_ENDPOINT: fake.url,
      });
      const judge = createJudge(settings, {
        credential: {
          getToken: () => Promise.resolve({ token: 't', expiresOnTimestamp: Date.now() + 3.6e6 }),
        },
      });
      const err = await judge
        .judge([
          {
            sampleId: 's1',
            userMessage: 'why',
            history: [],
            model: 'm',
            numRequests: 1,
            turnDurationMs: 1,
            promptTokenDelta: 1,
            tools: [],
            turnIndex: 0,
            turnCount: 3,
          },
        ])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JudgeConfigError);
      expect((err as Error).message).toContain('HTTP 403');
      expect((err as Error).message).toContain('Cognitive Services OpenAI User');
      expect(fake.chats()[0]!.headers.authorization).toBe('Bearer t');
    } finally {
      await fake.close();
    }
  });

  it('Azure OpenAI with no credential at all: one line naming az login and the role, fast', async () => {
    const out = join(dir, 'no-credential');
    const r = await cli(
      [
        'run',
        '--input',
        telemetry,
        '--out',
        out,
        '--judge',
        'azure',
        '--deployment',
        'judge',
        '--endpoint',
        'https://example-resource.openai.azure.com',
        '--in-process',
        '-q',
      ],
      cleanEnv(),
    );
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain('no Azure credential');
    expect(lines[0]).toContain('az login');
    expect(lines[0]).toContain('Cognitive Services OpenAI User');
    expect(existsSync(out)).toBe(false);
    expect(r.ms).toBeLessThan(30_000);
  }, 60_000);
});
