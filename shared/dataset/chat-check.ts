/**
 * The checks of OpenAI's chat fine-tuning data-preparation cookbook ("Data preparation
 * and analysis for chat model fine-tuning"), written out so a dataset is known to pass
 * them before it is uploaded, plus its token count. Error codes are the cookbook's own
 * names; one addition, `roles_not_alternating`, is marked as ours.
 */

/** The cookbook's format error codes, and our alternation check. */
export const CHAT_FORMAT_ERRORS = [
  'data_type',
  'missing_messages_list',
  'message_missing_key',
  'message_unrecognized_key',
  'unrecognized_role',
  'missing_content',
  'example_missing_assistant_message',
  /** Not in the cookbook: system first (optional), then user/assistant turns alternating, user first, assistant last. */
  'roles_not_alternating',
] as const;
export type ChatFormatError = (typeof CHAT_FORMAT_ERRORS)[number];

const KNOWN_KEYS = new Set(['role', 'content', 'name', 'function_call', 'weight']);
const KNOWN_ROLES = new Set(['system', 'user', 'assistant', 'function']);

export interface ChatCheck {
  /** Each error code with how many times it fired (per message for message-level codes, as the cookbook counts). */
  errors: Partial<Record<ChatFormatError, number>>;
  /** Cookbook warnings: no system message, no user message. */
  missingSystem: boolean;
  missingUser: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks one parsed example as the cookbook does; an example is valid when `errors` is empty. */
export function checkChatExample(example: unknown): ChatCheck {
  const errors: ChatCheck['errors'] = {};
  const add = (code: ChatFormatError) => (errors[code] = (errors[code] ?? 0) + 1);
  const result = { errors, missingSystem: false, missingUser: false };
  if (!isRecord(example)) {
    add('data_type');
    return result;
  }
  const messages = example.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    add('missing_messages_list');
    return result;
  }
  const roles: unknown[] = [];
  for (const m of messages as unknown[]) {
    if (!isRecord(m)) {
      // The cookbook would crash on a message that is not an object; it lacks both keys.
      add('message_missing_key');
      roles.push(undefined);
      continue;
    }
    if (!('role' in m) || !('content' in m)) add('message_missing_key');
    if (Object.keys(m).some((k) => !KNOWN_KEYS.has(k))) add('message_unrecognized_key');
    if (typeof m.role !== 'string' || !KNOWN_ROLES.has(m.role)) add('unrecognized_role');
    const content = m.content;
    if ((!content && !m.function_call) || typeof content !== 'string') add('missing_content');
    roles.push(m.role);
  }
  if (!roles.includes('assistant')) add('example_missing_assistant_message');
  if (!alternates(roles)) add('roles_not_alternating');
  result.missingSystem = !roles.includes('system');
  result.missingUser = !roles.includes('user');
  return result;
}

/** System first at most once, then user, assistant, user, ... ending with assistant. */
function alternates(roles: readonly unknown[]): boolean {
  const turns = roles[0] === 'system' ? roles.slice(1) : roles;
  if (turns.length === 0 || turns.length % 2 !== 0) return false;
  return turns.every((r, i) => r === (i % 2 === 0 ? 'user' : 'assistant'));
}

export interface ChatMessageLike {
  role: string;
  content: string;
  name?: string;
}

/** Tokens in a text; inject an exact tokenizer, or {@link utf8Length} as an upper bound. */
export type TokenLength = (text: string) => number;

export { utf8Length } from '../util/utf8';

/**
 * An example's tokens as the cookbook counts them (`num_tokens_from_messages`): 3 per
 * message, the tokens of each value, 1 more for a `name`, and 3 priming the reply.
 */
export function chatTokens(messages: readonly ChatMessageLike[], length: TokenLength): number {
  let n = 3;
  for (const m of messages) {
    n += 3 + length(m.role) + length(m.content);
    if (m.name !== undefined) n += length(m.name) + 1;
  }
  return n;
}

/** The tokens of the assistant messages, which the fine-tune learns to produce. */
export function assistantTokens(messages: readonly ChatMessageLike[], length: TokenLength): number {
  let n = 0;
  for (const m of messages) if (m.role === 'assistant') n += length(m.content);
  return n;
}
