import { describe, expect, it } from 'vitest';
import {
  AnnotatedRowSchema,
  TelemetryTurnSchema,
  checkAnnotated,
  checkTurn,
  isIsoTimestamp,
} from '../../shared/contracts/rows';
import { turn } from '../support/rows';

const good = turn();
const drop = (k: string) => {
  const t: Record<string, unknown> = { ...good };
  delete t[k];
  return t;
};

/** [name, value, expected reason]: every kind of malformed telemetry row we guard against. */
const BAD_ROWS: [string, unknown, string][] = [
  ['a JSON array', [1, 2], 'not_an_object'],
  ['null', null, 'not_an_object'],
  ['a string', 'hello', 'not_an_object'],
  ['a number', 42, 'not_an_object'],
  ['missing conversationId', drop('conversationId'), 'missing_field'],
  ['missing turnIndex', drop('turnIndex'), 'missing_field'],
  ['missing turnCount', drop('turnCount'), 'missing_field'],
  ['missing userMessage', drop('userMessage'), 'missing_field'],
  ['missing model', drop('model'), 'missing_field'],
  ['missing numRequests', drop('numRequests'), 'missing_field'],
  ['missing turnDurationMs', drop('turnDurationMs'), 'missing_field'],
  ['missing promptTokenDelta', drop('promptTokenDelta'), 'missing_field'],
  ['missing tools', drop('tools'), 'missing_field'],
  ['missing timestamp', drop('timestamp'), 'missing_field'],
  ['empty conversationId', { ...good, conversationId: '' }, 'out_of_range'],
  ['numeric conversationId', { ...good, conversationId: 7 }, 'wrong_type'],
  ['turnIndex as string', { ...good, turnIndex: '1' }, 'wrong_type'],
  ['fractional turnIndex', { ...good, turnIndex: 1.5 }, 'wrong_type'],
  ['turnIndex zero', { ...good, turnIndex: 0 }, 'out_of_range'],
  ['turnCount zero', { ...good, turnCount: 0 }, 'out_of_range'],
  [
    'turnIndex past turnCount',
    { ...good, turnIndex: 5, turnCount: 4 },
    'turn_index_exceeds_turn_count',
  ],
  ['negative numRequests', { ...good, numRequests: -1 }, 'out_of_range'],
  ['infinite numRequests', { ...good, numRequests: Infinity }, 'non_finite_number'],
  ['NaN duration', { ...good, turnDurationMs: NaN }, 'non_finite_number'],
  ['negative duration', { ...good, turnDurationMs: -5 }, 'out_of_range'],
  ['duration as string', { ...good, turnDurationMs: '40s' }, 'wrong_type'],
  ['fractional promptTokenDelta', { ...good, promptTokenDelta: 0.5 }, 'wrong_type'],
  ['infinite promptTokenDelta', { ...good, promptTokenDelta: -Infinity }, 'non_finite_number'],
  ['userMessage as object', { ...good, userMessage: { text: 'hi' } }, 'wrong_type'],
  ['empty model', { ...good, model: '' }, 'out_of_range'],
  ['tools as string', { ...good, tools: 'edit_file' }, 'wrong_type'],
  ['tools with a number', { ...good, tools: ['edit_file', 3] }, 'wrong_type'],
  ['timestamp without zone', { ...good, timestamp: '2026-10-01T12:00:00' }, 'bad_timestamp'],
  ['timestamp as date only', { ...good, timestamp: '2026-10-01' }, 'bad_timestamp'],
  ['timestamp on Feb 30', { ...good, timestamp: '2026-02-30T00:00:00Z' }, 'bad_timestamp'],
  ['timestamp hour 24', { ...good, timestamp: '2026-10-01T24:00:00Z' }, 'bad_timestamp'],
  ['timestamp as epoch number', { ...good, timestamp: 1760000000000 }, 'wrong_type'],
  ['timestamp gibberish', { ...good, timestamp: 'yesterday' }, 'bad_timestamp'],
];

describe('telemetry turn validation', () => {
  it('accepts a valid turn and keeps unknown fields', () => {
    const withExtra = { ...good, clientVersion: '1.2.3' };
    expect(checkTurn(withExtra)).toBeNull();
    expect(TelemetryTurnSchema.parse(withExtra)).toHaveProperty('clientVersion', '1.2.3');
  });

  it.each(BAD_ROWS)('rejects %s with reason %s, as the zod schema does', (_name, value, reason) => {
    expect(checkTurn(value)?.reason).toBe(reason);
    expect(TelemetryTurnSchema.safeParse(value).success).toBe(false);
  });

  it('has at least 30 kinds of malformed rows covered', () => {
    expect(BAD_ROWS.length).toBeGreaterThanOrEqual(30);
  });

  it('quarantines a message over the size limit', () => {
    expect(checkTurn({ ...good, userMessage: 'x'.repeat(101) }, 100)?.reason).toBe(
      'message_too_long',
    );
    expect(checkTurn({ ...good, userMessage: 'x'.repeat(100) }, 100)).toBeNull();
  });
});

describe('annotated row validation', () => {
  it.each([
    ['label 2', { ...good, label: 2 }, 'invalid_label'],
    ['label as string', { ...good, label: '0' }, 'invalid_label'],
    ['label missing', { ...good }, 'missing_field'],
    ['empty sampleId', { ...good, label: 0, sampleId: '' }, 'wrong_type'],
    ['history not an array', { ...good, label: 0, history: 'hi' }, 'wrong_type'],
    ['history with a number', { ...good, label: 0, history: ['a', 1] }, 'wrong_type'],
  ])('rejects %s', (_name, value, reason) => {
    expect(checkAnnotated(value)?.reason).toBe(reason);
    expect(AnnotatedRowSchema.safeParse(value).success).toBe(false);
  });

  it('accepts labels 0 and 1 with optional sampleId and history', () => {
    for (const label of [0, 1]) {
      const v = { ...good, label, sampleId: 's1', history: ['earlier'] };
      expect(checkAnnotated(v)).toBeNull();
      expect(AnnotatedRowSchema.safeParse(v).success).toBe(true);
    }
  });
});

describe('isIsoTimestamp', () => {
  it.each([
    ['2026-10-01T12:00:00Z', true],
    ['2026-10-01T12:00Z', true],
    ['2026-10-01T12:00:00.123Z', true],
    ['2026-10-01T12:00:00.123456789+02:00', true],
    ['2026-10-01T12:00:00-0530', true],
    ['2024-02-29T00:00:00Z', true],
    ['2023-02-29T00:00:00Z', false],
    ['2026-13-01T00:00:00Z', false],
    ['2026-10-01T12:60:00Z', false],
    ['2026-10-01T12:00:61Z', false],
    ['2026-10-01T12:00:00.Z', false],
    ['2026-10-01T12:00:00+25:00', false],
    ['2026-10-01 12:00:00Z', false],
    ['2026-10-01T12:00:00ZZ', false],
  ])('%s → %s, and Date.parse agrees on the valid ones', (text, ok) => {
    expect(isIsoTimestamp(text)).toBe(ok);
    if (ok)
      expect(Number.isFinite(Date.parse(text.replace(/([+-]\d{2})(\d{2})$/, '$1:$2')))).toBe(true);
  });
});
