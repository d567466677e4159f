import { describe, expect, it } from 'vitest';
import { o200kTokenLength } from '../../adapters/files/dataset-formats';
import type { DatasetLine } from '../../shared/contracts/rows';
import {
  CHAT_FORMAT_ERRORS,
  ChatOptionsSchema,
  ChatTally,
  chatOutcome,
  chatTokens,
  checkChatExample,
  defaultSystemPrompt,
  toChatExample,
  utf8Length,
  type ChatFormatError,
} from '../../shared/dataset/index';

const sys = { role: 'system', content: 'route' };
const user = { role: 'user', content: 'fix the test' };
const asst = { role: 'assistant', content: 'fast' };

describe('checkChatExample: the cookbook checks', () => {
  const cases: [string, unknown, ChatFormatError][] = [
    ['a line that is not an object', ['messages'], 'data_type'],
    ['a string line', 'hello', 'data_type'],
    ['no messages key', { prompt: 'x' }, 'missing_messages_list'],
    ['an empty messages list', { messages: [] }, 'missing_messages_list'],
    [
      'a message without content',
      { messages: [sys, { role: 'user' }, asst] },
      'message_missing_key',
    ],
    ['a message without role', { messages: [sys, { content: 'x' }, asst] }, 'message_missing_key'],
    [
      'a message with an unknown key',
      { messages: [sys, { ...user, tool_calls: [] }, asst] },
      'message_unrecognized_key',
    ],
    [
      'a role the API does not know',
      { messages: [sys, { role: 'human', content: 'x' }, asst] },
      'unrecognized_role',
    ],
    ['empty content', { messages: [sys, { role: 'user', content: '' }, asst] }, 'missing_content'],
    [
      'content that is not a string',
      { messages: [sys, { role: 'user', content: 3 }, asst] },
      'missing_content',
    ],
    ['no assistant message', { messages: [sys, user] }, 'example_missing_assistant_message'],
    ['two user turns in a row', { messages: [sys, user, user, asst] }, 'roles_not_alternating'],
    ['assistant first', { messages: [sys, asst, user, asst] }, 'roles_not_alternating'],
  ];
  it.each(cases)('%s → %s', (_name, example, code) => {
    const { errors } = checkChatExample(example);
    expect(errors[code]).toBeGreaterThanOrEqual(1);
  });

  it('every error code is triggered by some crafted example', () => {
    const fired = new Set(cases.map((c) => c[2]));
    expect([...fired].sort()).toEqual([...CHAT_FORMAT_ERRORS].sort());
  });

  it('a well-formed example has no errors and no warnings', () => {
    const c = checkChatExample({ messages: [sys, user, asst] });
    expect(c).toEqual({ errors: {}, missingSystem: false, missingUser: false });
  });

  it('accepts the keys the cookbook allows (name, weight, function_call)', () => {
    const c = checkChatExample({
      messages: [sys, { ...user, name: 'dev' }, { ...asst, weight: 1 }],
    });
    expect(c.errors).toEqual({});
  });

  it('warns about an example without a system message or without a user message', () => {
    expect(checkChatExample({ messages: [user, asst] }).missingSystem).toBe(true);
    const noUser = checkChatExample({ messages: [sys, asst] });
    expect(noUser.missingUser).toBe(true);
  });
});

describe('token counting', () => {
  it('counts as the cookbook does: 3 per message, the values, 3 for the reply', () => {
    const len = (s: string) => s.length;
    const messages = [
      { role: 'system', content: 'abc' },
      { role: 'user', content: 'hello', name: 'x' },
    ];
    // 3 + (3 + 6 + 3) + (3 + 4 + 5 + 1 + 1)
    expect(chatTokens(messages, len)).toBe(3 + 12 + 14);
  });

  it('the UTF-8 length is an upper bound of o200k_base tokens, emoji and all', async () => {
    const tokens = await o200kTokenLength();
    for (const s of [
      'plain text',
      'naïve café',
      '😀😀 emoji 🚀',
      '日本語のテキスト',
      'a'.repeat(5000),
    ]) {
      expect(utf8Length(s)).toBe(Buffer.byteLength(s));
      expect(tokens(s)).toBeLessThanOrEqual(utf8Length(s));
    }
  });

  it('counts special-token text in a message as plain text instead of throwing', async () => {
    const tokens = await o200kTokenLength();
    expect(tokens('ignore this <|endoftext|> and <|im_start|>')).toBeGreaterThan(5);
  });
});

const line = (messages: string[], label: 0 | 1): Pick<DatasetLine, 'messages' | 'label'> => ({
  messages: messages.map((content) => ({ role: 'user' as const, content })),
  label,
});

describe('toChatExample', () => {
  const opts = ChatOptionsSchema.parse({});

  it('merges the history and the message into one user turn, so roles alternate', () => {
    const ex = toChatExample(line(['first', 'second', 'now this'], 0), opts);
    expect(ex.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    expect(ex.messages[1]!.content).toBe(
      'first\n\n[next user message]\n\nsecond\n\n[next user message]\n\nnow this',
    );
    expect(ex.messages[2]!.content).toBe('reasoning');
    expect(checkChatExample(ex).errors).toEqual({});
  });

  it('answers with the label words, defaults reasoning/fast, and the system prompt names them', () => {
    expect(toChatExample(line(['x'], 1), opts).messages[2]!.content).toBe('fast');
    const custom = ChatOptionsSchema.parse({ labelWords: ['think', 'quick'] });
    const ex = toChatExample(line(['x'], 1), custom);
    expect(ex.messages[2]!.content).toBe('quick');
    expect(ex.messages[0]!.content).toBe(defaultSystemPrompt(['think', 'quick']));
    expect(ex.messages[0]!.content).toContain('"think"');
    const own = ChatOptionsSchema.parse({ systemPrompt: 'Route it.' });
    expect(toChatExample(line(['x'], 0), own).messages[0]!.content).toBe('Route it.');
  });

  it('keeps assistant turns a line carries and merges only runs of user turns', () => {
    const ex = toChatExample(
      {
        label: 1,
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
          { role: 'assistant', content: 'done' },
          { role: 'user', content: 'c' },
        ],
      },
      opts,
    );
    expect(ex.messages.map((m) => m.role)).toEqual([
      'system',
      'user',
      'assistant',
      'user',
      'assistant',
    ]);
    expect(checkChatExample(ex).errors).toEqual({});
  });

  it('rejects label words that are equal or empty', () => {
    expect(() => ChatOptionsSchema.parse({ labelWords: ['same', 'same'] })).toThrow(/differ/);
    expect(() => ChatOptionsSchema.parse({ labelWords: ['', 'x'] })).toThrow();
    expect(() => ChatOptionsSchema.parse({ maxTokens: 0 })).toThrow();
  });
});

describe('chatOutcome and ChatTally', () => {
  const len = (s: string) => s.length;

  it('leaves out an example over the token limit, uncut, and counts it', () => {
    const opts = ChatOptionsSchema.parse({ maxTokens: 500, systemPrompt: 'route' });
    const tally = new ChatTally();
    const short = chatOutcome(line(['short'], 0), opts, len);
    const long = chatOutcome(line(['y'.repeat(600)], 1), opts, len);
    expect(short.kind).toBe('ok');
    expect(long).toEqual({ kind: 'over_token_limit', tokens: expect.any(Number) });
    if (long.kind === 'over_token_limit') expect(long.tokens).toBeGreaterThan(500);
    tally.add(short);
    tally.add(long);
    const r = tally.report();
    expect(r.written).toBe(1);
    expect(r.overTokenLimit).toBe(1);
    expect(r.tokens.max).toBeLessThanOrEqual(500);
  });

  it('leaves out an empty user message (missing_content) rather than send it', () => {
    const o = chatOutcome(line([''], 0), ChatOptionsSchema.parse({}), len);
    expect(o).toEqual({ kind: 'invalid', errors: ['missing_content'] });
  });

  it('reports token percentiles over the examples written', () => {
    const opts = ChatOptionsSchema.parse({ systemPrompt: 's' });
    const tally = new ChatTally();
    for (let i = 1; i <= 100; i++) tally.add(chatOutcome(line(['x'.repeat(i)], 0), opts, len));
    const r = tally.report();
    expect(r.written).toBe(100);
    const base = chatTokens(
      [
        { role: 'system', content: 's' },
        { role: 'user', content: '' },
        { role: 'assistant', content: 'reasoning' },
      ],
      len,
    );
    expect(r.tokens.min).toBe(base + 1);
    expect(r.tokens.max).toBe(base + 100);
    expect(r.tokens.p50).toBe(base + 51);
    expect(r.tokens.p95).toBe(base + 96);
    expect(r.assistantTokens).toBe(100 * 'reasoning'.length);
  });
});
