/** Shared bits of the judge tests: inputs and settings pointed at a fake server. */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { OpenAIJudgeSettingsSchema, type OpenAIJudgeSettings } from '../../shared/judge/settings';
import type { JudgeInput } from '../../shared/judge/types';
import type { Clock } from '../../adapters/openai/judge';

export function input(sampleId: string, userMessage: string, history: string[] = []): JudgeInput {
  return {
    sampleId,
    userMessage,
    history,
    model: 'gpt-4o',
    numRequests: 1,
    turnDurationMs: 1000,
    promptTokenDelta: 100,
    tools: [],
    turnIndex: history.length + 1,
    turnCount: 5,
  };
}

/** `n` inputs alternating a reasoning and a fast request, with distinct text. */
export function inputs(n: number, prefix = 'c'): JudgeInput[] {
  return Array.from({ length: n }, (_, i) =>
    input(
      `${prefix}${i}:1`,
      i % 2 === 0
        ? `design a sharded job queue for tenant ${prefix}${i}`
        : `rename variable x to y in file ${prefix}${i}.ts`,
    ),
  );
}

export function openaiSettings(
  baseURL: string,
  over: Record<string, unknown> = {},
): OpenAIJudgeSettings {
  return OpenAIJudgeSettingsSchema.parse({
    kind: 'openai',
    model: 'gpt-test',
    apiKey: 'sk-test',
    baseURL: `${baseURL}/v1`,
    backoffBaseMs: 5,
    backoffMaxMs: 20,
    timeoutMs: 2_000,
    maxRetries: 2,
    ...over,
  });
}

/** A TokenCredential that hands out a fixed token and counts the scopes asked for. */
export function staticCredential(token: string): TokenCredential & { scopes: string[] } {
  const scopes: string[] = [];
  return {
    scopes,
    getToken(scope: string | string[]): Promise<AccessToken> {
      scopes.push(...(Array.isArray(scope) ? scope : [scope]));
      return Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3_600_000 });
    },
  };
}

/** A virtual clock: sleeping advances time at once and is recorded. */
export function virtualClock(start = 1_000_000): Clock & { sleeps: number[] } {
  let t = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: (ms) => {
      sleeps.push(ms);
      t += ms;
      return Promise.resolve();
    },
    random: () => 0.5,
  };
}
