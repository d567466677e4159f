import { describe, expect, it } from 'vitest';
import {
  ComplexitySchema,
  DEFAULT_BUCKETS,
  DEFAULT_REASONING_MODELS,
  parseBalanceConfig,
  STRATIFIERS,
} from '../../shared/contracts/config';
import {
  compileStrata,
  complexityScore,
  complexityTier,
  modelFamily,
  strataKey,
  strataOf,
  toolDiversity,
  turnBucket,
  turnPosition,
} from '../../shared/strata/strata';
import { turn } from '../support/rows';

const C = ComplexitySchema.parse({});

describe('turn-count buckets (Strategy 1)', () => {
  it.each([
    [1, null],
    [2, null],
    [3, 'A'],
    [5, 'A'],
    [6, 'B'],
    [10, 'B'],
    [11, 'C'],
    [20, 'C'],
    [21, null],
  ])('turnCount %i → %s', (n, bucket) => {
    expect(turnBucket(n, DEFAULT_BUCKETS)).toBe(bucket);
  });

  it('uses configured bounds', () => {
    expect(turnBucket(2, [{ name: 'short', min: 1, max: 2 }])).toBe('short');
  });
});

describe('complexity (Strategy 2)', () => {
  const quiet = { ...turn(), numRequests: 0, turnDurationMs: 0, promptTokenDelta: 0, tools: [] };

  it('scores a quiet turn 0 and a busy one 1', () => {
    expect(complexityScore(quiet, C)).toBe(0);
    const busy = {
      ...quiet,
      numRequests: 30,
      turnDurationMs: 120_000,
      promptTokenDelta: 20_000,
      tools: ['a', 'b', 'c', 'd', 'e'],
    };
    expect(complexityScore(busy, C)).toBe(1);
  });

  it('caps every single signal at a quarter, so a flood of tool calls alone stays low', () => {
    const floods = [
      { ...quiet, numRequests: 500 },
      { ...quiet, turnDurationMs: 10_000_000 },
      { ...quiet, promptTokenDelta: 1_000_000 },
      { ...quiet, tools: Array.from({ length: 50 }, (_, i) => `tool${i}`) },
    ];
    for (const t of floods) {
      expect(complexityScore(t, C)).toBe(0.25);
      expect(complexityTier(complexityScore(t, C), C)).toBe('medium');
    }
  });

  it('follows the seed thresholds: 1-2 requests count nothing, 10+ count fully', () => {
    expect(complexityScore({ ...quiet, numRequests: 2 }, C)).toBe(0);
    expect(complexityScore({ ...quiet, numRequests: 10 }, C)).toBe(0.25);
    expect(complexityScore({ ...quiet, numRequests: 6 }, C)).toBeCloseTo(0.125);
  });

  it('counts distinct tools, not calls', () => {
    expect(toolDiversity(['a', 'a', 'a'])).toBe(1);
    expect(toolDiversity(['a', 'b', 'a'])).toBe(2);
    expect(toolDiversity([])).toBe(0);
  });

  it.each([
    [0, 'low'],
    [0.2499, 'low'],
    [0.25, 'medium'],
    [0.5999, 'medium'],
    [0.6, 'high'],
    [1, 'high'],
  ])('score %f is tier %s', (score, tier) => {
    expect(complexityTier(score, C)).toBe(tier);
  });
});

describe('model family (Strategy 3)', () => {
  it.each([
    ['o3', 'reasoning'],
    ['o4-mini', 'reasoning'],
    ['GPT-5', 'reasoning'],
    ['claude-opus-4', 'reasoning'],
    ['gpt-4o-mini', 'fast'],
    ['claude-3.5-haiku', 'fast'],
    ['gemini-2.0-flash', 'fast'],
  ])('%s is %s', (model, family) => {
    expect(modelFamily(model, DEFAULT_REASONING_MODELS)).toBe(family);
  });

  it('uses a configured list', () => {
    expect(modelFamily('my-thinker', ['my-'])).toBe('reasoning');
    expect(modelFamily('o3', ['my-'])).toBe('fast');
  });
});

describe('turn position', () => {
  it.each([
    [1, 3, 'early'],
    [2, 3, 'mid'],
    [3, 3, 'late'],
    [1, 1, 'late'],
    [3, 10, 'early'],
    [4, 10, 'mid'],
    [7, 10, 'late'],
  ])('turn %i of %i is %s', (i, n, pos) => {
    expect(turnPosition(i, n)).toBe(pos);
  });
});

describe('compiled strata', () => {
  const cfg = parseBalanceConfig({});
  it('give the same values as strataOf for every combination of stratifiers', () => {
    const rows = [
      turn({ turnCount: 4, turnIndex: 1 }),
      turn({ turnCount: 8, turnIndex: 8, model: 'o3', numRequests: 40, turnDurationMs: 90_000 }),
      turn({ turnCount: 15, turnIndex: 7, tools: ['a', 'b', 'c'], promptTokenDelta: 5000 }),
      turn({ turnCount: 30, turnIndex: 2 }),
    ];
    const subsets = [
      [],
      ['turnBucket'],
      ['complexity', 'position'],
      [...STRATIFIERS],
      ['position', 'modelFamily'],
    ] as const;
    for (const stratify of subsets) {
      const compiled = compileStrata(stratify, cfg);
      for (const r of rows) {
        const code = compiled.code(r);
        const direct = strataOf(r, stratify, cfg);
        if (direct === null) {
          expect(code).toBe(-1);
          continue;
        }
        expect(code).toBeGreaterThanOrEqual(0);
        expect(code).toBeLessThan(compiled.size);
        expect(compiled.strata(code)).toEqual(direct);
        expect(compiled.key(code)).toBe(strataKey(direct, stratify));
      }
    }
  });
});
