import { describe, expect, it } from 'vitest';
import {
  ConversationAssembler,
  estimateTokens,
  historyWindow,
} from '../../shared/samples/assemble';
import { turn } from '../support/rows';

function conv(id: string, count: number, skip: number[] = []) {
  return Array.from({ length: count }, (_, i) => i + 1)
    .filter((i) => !skip.includes(i))
    .map((i) =>
      turn({ conversationId: id, turnIndex: i, turnCount: count, userMessage: `${id} turn ${i}` }),
    );
}

describe('session pipeline', () => {
  it('takes the first turn of every complete conversation only', () => {
    const a = new ConversationAssembler();
    [...conv('c1', 3), ...conv('c2', 4, [3]), ...conv('c3', 5, [1]), ...conv('c4', 1)]
      .reverse()
      .forEach((t) => a.add(t));
    const { samples, stats } = a.samples('session');
    expect(samples.map((s) => s.sampleId)).toEqual(['c1:1', 'c4:1']);
    expect(samples.every((s) => s.history.length === 0 && s.position === 'early')).toBe(true);
    expect(stats).toEqual({ conversations: 4, complete: 2, incomplete: 2, duplicateTurns: 0 });
  });

  it('treats turns that disagree on turnCount as incomplete', () => {
    const a = new ConversationAssembler();
    a.add(turn({ conversationId: 'x', turnIndex: 1, turnCount: 2 }));
    a.add(turn({ conversationId: 'x', turnIndex: 2, turnCount: 3 }));
    expect(a.samples('session').stats.incomplete).toBe(1);
  });

  it('keeps one of two rows for the same turn, whatever their order', () => {
    const t1 = turn({ conversationId: 'd', turnIndex: 1, turnCount: 1, userMessage: 'one' });
    const t2 = turn({ conversationId: 'd', turnIndex: 1, turnCount: 1, userMessage: 'two' });
    const a = new ConversationAssembler();
    a.add(t1);
    a.add(t2);
    const b = new ConversationAssembler();
    b.add(t2);
    b.add(t1);
    expect(a.samples('session').samples).toEqual(b.samples('session').samples);
    expect(a.samples('session').stats.duplicateTurns).toBe(1);
  });
});

describe('conversation pipeline', () => {
  it('takes every turn with its previous user messages and position', () => {
    const a = new ConversationAssembler();
    conv('c', 6).forEach((t) => a.add(t));
    const { samples } = a.samples('conversation', { historyTurns: 2, historyTokenBudget: 1000 });
    expect(samples).toHaveLength(6);
    expect(samples[0]!.history).toEqual([]);
    expect(samples[3]!.history).toEqual(['c turn 2', 'c turn 3']);
    expect(samples.map((s) => s.position)).toEqual([
      'early',
      'early',
      'mid',
      'mid',
      'late',
      'late',
    ]);
  });

  it('keeps the history inside the token budget, most recent first', () => {
    const prev = ['a'.repeat(400), 'b'.repeat(400), 'c'.repeat(400)]; // 100 tokens each
    expect(historyWindow(prev, { historyTurns: 10, historyTokenBudget: 250 })).toEqual([
      prev[1],
      prev[2],
    ]);
    expect(historyWindow(prev, { historyTurns: 10, historyTokenBudget: 50 })).toEqual([]);
    expect(historyWindow(prev, { historyTurns: 0, historyTokenBudget: 1000 })).toEqual([]);
    expect(estimateTokens('abcd')).toBe(1);
  });
});
