/** Test data builders: valid telemetry turns and annotated rows with overrides. */
import type { AnnotatedRow, TelemetryTurn } from '../../shared/contracts/rows';
import { generateTelemetry } from '../../shared/source/generate';

export function turn(
  overrides: Partial<TelemetryTurn> & Record<string, unknown> = {},
): TelemetryTurn {
  return {
    conversationId: 'c1',
    turnIndex: 1,
    turnCount: 4,
    userMessage: 'Rename foo to bar in src/a.ts',
    model: 'gpt-4o-mini',
    numRequests: 1,
    turnDurationMs: 4000,
    promptTokenDelta: 300,
    tools: ['edit_file'],
    timestamp: '2026-10-01T12:00:00Z',
    ...overrides,
  };
}

export function row(overrides: Partial<AnnotatedRow> & Record<string, unknown> = {}): AnnotatedRow {
  return { ...turn(), label: 1, ...overrides };
}

/** Generated annotated rows (known labels), deterministic by seed. */
export function annotatedRows(opts: {
  conversations?: number;
  rows?: number;
  seed?: number;
}): AnnotatedRow[] {
  return [
    ...generateTelemetry({
      seed: opts.seed ?? 7,
      annotated: true,
      ...(opts.conversations !== undefined ? { conversations: opts.conversations } : {}),
      ...(opts.rows !== undefined ? { rows: opts.rows } : {}),
    }),
  ] as AnnotatedRow[];
}

/** A deterministic shuffle (Fisher-Yates with a seeded LCG). */
export function shuffled<T>(items: readonly T[], seed = 1): T[] {
  const out = items.slice();
  let s = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
