/**
 * A build that names the LLM judge (SFT_JUDGE=openai) judges its batches through the
 * real openai SDK with the JUDGE_* settings: here against the local OpenAI wire server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeps, LLM_JUDGE } from '../../functions/lib/deps';
import { buildPaths } from '../../shared/build/spec';
import { oracleLabel, startFakeOpenAI, type FakeOpenAI } from '../judge/fake-openai';
import { runBuild, specFor, telemetryFile, uniqueSettings } from './harness';

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(() => fake.close());

describe('a Functions build with the LLM judge', () => {
  it('sends every batch to the configured endpoint and labels with its verdicts', async () => {
    const t = await telemetryFile(150, 8);
    const settings = uniqueSettings({ SFT_JUDGE: LLM_JUDGE });
    const env = {
      JUDGE_BASE_URL: `${fake.url}/v1`,
      JUDGE_API_KEY: 'sk-test',
      JUDGE_MODEL: 'gpt-test',
      JUDGE_BATCH_SIZE: '10',
    };
    const deps = createDeps(settings, {}, env);
    const spec = specFor(deps, 'llm-build', { total: 40 }, { kind: 'file', path: t.path });
    expect(spec.judge.name).toBe('openai');
    const outcome = await runBuild(deps, spec, { timeoutMs: 90_000 });
    expect(outcome.state).toBe('succeeded');
    expect(fake.chats().length).toBeGreaterThan(0);
    expect(fake.chats().every((r) => r.headers.authorization === 'Bearer sk-test')).toBe(true);
    const train = (await deps.store.get(buildPaths(spec.id).train))!
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { label: number; messages: { content: string }[] });
    expect(train.length).toBeGreaterThan(0);
    for (const line of train) expect(line.label).toBe(oracleLabel(line.messages.at(-1)!.content));
  });
});
