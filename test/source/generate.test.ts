import { describe, expect, it } from 'vitest';
import { checkAnnotated, checkTurn } from '../../shared/contracts/rows';
import { generateTelemetry, TURN_COUNT_WEIGHTS } from '../../shared/source/generate';
import { modelFamily } from '../../shared/strata/strata';
import { DEFAULT_REASONING_MODELS } from '../../shared/contracts/config';

const convs = (n: number, seed = 1) => [
  ...generateTelemetry({ conversations: n, seed, annotated: true }),
];

describe('generateTelemetry', () => {
  it('is deterministic by seed', () => {
    expect(JSON.stringify(convs(200, 4))).toBe(JSON.stringify(convs(200, 4)));
    expect(JSON.stringify(convs(200, 4))).not.toBe(JSON.stringify(convs(200, 5)));
  });

  it('writes only valid telemetry turns (annotated ones with a label)', () => {
    for (const t of convs(300)) {
      expect(checkTurn(t)).toBeNull();
      expect(checkAnnotated(t)).toBeNull();
    }
    const plain = [...generateTelemetry({ conversations: 10, seed: 1 })];
    expect(plain.every((t) => !('label' in t))).toBe(true);
  });

  it('has the seed document turn-count skew: P(3) ≈ 0.30, P(15) ≈ 0.01, a tail past 20', () => {
    expect(TURN_COUNT_WEIGHTS.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    const counts = new Map<string, number>();
    for (const t of convs(20_000)) counts.set(t.conversationId, t.turnCount);
    const n = counts.size;
    const share = (k: number) => [...counts.values()].filter((c) => c === k).length / n;
    // Tolerances: ~4 standard errors at n = 20,000.
    expect(share(3)).toBeGreaterThan(0.29);
    expect(share(3)).toBeLessThan(0.31);
    expect(share(15)).toBeGreaterThan(0.0072);
    expect(share(15)).toBeLessThan(0.0128);
    expect([...counts.values()].some((c) => c > 20)).toBe(true);
  });

  it('makes reasoning the minority and ties signals to it, noisily', () => {
    const rows = convs(3000);
    const reasoning = rows.filter((r) => r.label === 0);
    const share = reasoning.length / rows.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.45);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const fast = rows.filter((r) => r.label === 1);
    expect(mean(reasoning.map((r) => r.numRequests))).toBeGreaterThan(
      2 * mean(fast.map((r) => r.numRequests)),
    );
    expect(mean(reasoning.map((r) => r.turnDurationMs))).toBeGreaterThan(
      2 * mean(fast.map((r) => r.turnDurationMs)),
    );
    // Noisy: some reasoning turns are quick, some fast ones are slow.
    expect(reasoning.some((r) => r.numRequests <= 2)).toBe(true);
    expect(fast.some((r) => r.numRequests >= 6)).toBe(true);
    const families = new Set(rows.map((r) => modelFamily(r.model, DEFAULT_REASONING_MODELS)));
    expect(families).toEqual(new Set(['reasoning', 'fast']));
  });

  it('leaves some conversations incomplete and varies messages', () => {
    const rows = convs(2000);
    const byConv = new Map<string, number[]>();
    for (const r of rows)
      byConv.set(r.conversationId, [...(byConv.get(r.conversationId) ?? []), r.turnIndex]);
    const incomplete = [...byConv.entries()].filter(([id, idx]) => {
      const count = rows.find((r) => r.conversationId === id)!.turnCount;
      return idx.length !== count;
    }).length;
    expect(incomplete / byConv.size).toBeGreaterThan(0.02);
    expect(incomplete / byConv.size).toBeLessThan(0.09);
    expect(new Set(rows.map((r) => r.userMessage)).size / rows.length).toBeGreaterThan(0.6);
  });

  it('stops at --rows', () => {
    expect([...generateTelemetry({ rows: 1234, seed: 2 })]).toHaveLength(1234);
  });
});
