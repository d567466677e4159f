/**
 * The `chat` format: `{"messages": [system, user, assistant]}` lines that the OpenAI
 * and Azure OpenAI fine-tuning APIs, TRL's SFTTrainer and chat templates accept.
 *
 * Alternation: telemetry carries no assistant replies, so a conversation-pipeline
 * sample's history is several user turns in a row, which templates that require
 * user/assistant alternation reject. Each run of consecutive user turns is merged into
 * ONE user message, joined by the turn separator (oldest first, the message to route
 * last), and no assistant reply is invented. The assistant message is the label as a
 * word. Today every example is therefore [system, user, assistant].
 */
import { z } from 'zod';
import type { DatasetLine } from '../contracts/rows';
import {
  assistantTokens,
  chatTokens,
  checkChatExample,
  type ChatFormatError,
  type TokenLength,
} from './chat-check';
import { DEFAULT_TURN_SEPARATOR } from './router-input';

import {
  ChatMaxTokensSchema,
  DEFAULT_CHAT_MAX_TOKENS,
  DEFAULT_LABEL_WORDS,
  LabelWordsSchema,
  SystemPromptSchema,
} from '../contracts/dataset-settings';

export { DEFAULT_CHAT_MAX_TOKENS, DEFAULT_LABEL_WORDS };

export const ChatOptionsSchema = z
  .object({
    /** The system message; by default {@link defaultSystemPrompt} of the label words. */
    systemPrompt: SystemPromptSchema.optional(),
    /** The assistant's answer for label 0 (reasoning) and label 1 (non-reasoning). */
    labelWords: LabelWordsSchema.default([...DEFAULT_LABEL_WORDS]),
    /** Joins the user turns merged into one message. */
    separator: z.string().min(1).default(DEFAULT_TURN_SEPARATOR),
    /** Examples over this many tokens are left out (never cut) and reported. */
    maxTokens: ChatMaxTokensSchema.default(DEFAULT_CHAT_MAX_TOKENS),
  })
  .strict();
export type ChatOptionsInput = z.input<typeof ChatOptionsSchema>;
export type ChatOptions = z.output<typeof ChatOptionsSchema>;

/** The router instruction, naming the answer words and how merged turns are marked. */
export function defaultSystemPrompt(
  labelWords: readonly [string, string],
  separator = DEFAULT_TURN_SEPARATOR,
): string {
  const marker = separator.trim();
  return (
    'You are a model router for a coding assistant. Read the user message and decide ' +
    'which model should answer it. When the conversation had earlier user messages, ' +
    `they come first, oldest first, each followed by a line "${marker}"; the last part ` +
    `is the request to route. Answer with one word: "${labelWords[0]}" if it needs a ` +
    `reasoning model (multi-step debugging, design, analysis), "${labelWords[1]}" if a ` +
    'fast model serves it well.'
  );
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
export interface ChatExample {
  messages: ChatMessage[];
}

/**
 * The chat example of a dataset line: system, then the line's messages with runs of
 * user turns merged (a system message the line carries is replaced by ours), then the
 * label word.
 */
export function toChatExample(
  line: Pick<DatasetLine, 'messages' | 'label'>,
  opts: ChatOptions,
): ChatExample {
  const system = opts.systemPrompt ?? defaultSystemPrompt(opts.labelWords, opts.separator);
  const messages: ChatMessage[] = [{ role: 'system', content: system }];
  let run: string[] = [];
  const closeRun = () => {
    if (run.length > 0) messages.push({ role: 'user', content: run.join(opts.separator) });
    run = [];
  };
  for (const m of line.messages) {
    if (m.role === 'user') run.push(m.content);
    else if (m.role === 'assistant') {
      closeRun();
      messages.push({ role: 'assistant', content: m.content });
    }
  }
  closeRun();
  messages.push({ role: 'assistant', content: opts.labelWords[line.label] });
  return { messages };
}

/** What became of one line in the chat format. */
export type ChatOutcome =
  | { kind: 'ok'; example: ChatExample; tokens: number; assistantTokens: number }
  | { kind: 'over_token_limit'; tokens: number }
  | { kind: 'invalid'; errors: ChatFormatError[] };

/**
 * Builds, checks and counts one line's chat example. An example failing a cookbook
 * check (an empty user message trips `missing_content`) or over `maxTokens` is left
 * out, never altered or cut.
 */
export function chatOutcome(
  line: Pick<DatasetLine, 'messages' | 'label'>,
  opts: ChatOptions,
  length: TokenLength,
): ChatOutcome {
  const example = toChatExample(line, opts);
  const errors = Object.keys(checkChatExample(example).errors) as ChatFormatError[];
  if (errors.length > 0) return { kind: 'invalid', errors };
  const tokens = chatTokens(example.messages, length);
  if (tokens > opts.maxTokens) return { kind: 'over_token_limit', tokens };
  return {
    kind: 'ok',
    example,
    tokens,
    assistantTokens: assistantTokens(example.messages, length),
  };
}

/** Running statistics of a chat file, as the cookbook reports them. */
export interface ChatSplitReport {
  written: number;
  overTokenLimit: number;
  invalid: number;
  invalidByError: Partial<Record<ChatFormatError, number>>;
  tokens: { total: number; min: number; max: number; mean: number; p50: number; p95: number };
  assistantTokens: number;
}

/** Accumulates {@link ChatOutcome}s into a {@link ChatSplitReport}; keeps one number per example. */
export class ChatTally {
  private written = 0;
  private over = 0;
  private invalid = 0;
  private readonly byError: Partial<Record<ChatFormatError, number>> = {};
  private counts = new Uint32Array(1024);
  private total = 0;
  private assistant = 0;

  add(outcome: ChatOutcome): void {
    if (outcome.kind === 'over_token_limit') this.over++;
    else if (outcome.kind === 'invalid') {
      this.invalid++;
      for (const e of outcome.errors) this.byError[e] = (this.byError[e] ?? 0) + 1;
    } else {
      if (this.written === this.counts.length) {
        const grown = new Uint32Array(this.counts.length * 2);
        grown.set(this.counts);
        this.counts = grown;
      }
      this.counts[this.written++] = outcome.tokens;
      this.total += outcome.tokens;
      this.assistant += outcome.assistantTokens;
    }
  }

  report(): ChatSplitReport {
    const sorted = this.counts.slice(0, this.written).sort();
    const at = (q: number) =>
      sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return {
      written: this.written,
      overTokenLimit: this.over,
      invalid: this.invalid,
      invalidByError: { ...this.byError },
      tokens: {
        total: this.total,
        min: sorted.length === 0 ? 0 : sorted[0]!,
        max: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
        mean: sorted.length === 0 ? 0 : Math.round((this.total / sorted.length) * 10) / 10,
        p50: at(0.5),
        p95: at(0.95),
      },
      assistantTokens: this.assistant,
    };
  }
}

/** OpenAI rejects a training file of fewer examples. */
export const OPENAI_MIN_EXAMPLES = 10;
