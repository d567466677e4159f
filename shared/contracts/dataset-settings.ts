/**
 * The dataset settings of a build (issue 16): the chat system prompt, the label words
 * of the assistant message, the chat token limit and the card's license. Each is a
 * flag, an SFT_ setting and a request-body field; this file holds their one
 * definition (schemas, limits, defaults) so the three agree. All are optional in a
 * config: absent means the default, so older specs and manifests read the same.
 */
import { z } from 'zod';
import { BalanceError } from '../errors/index';
import { utf8Length } from '../util/utf8';

/** The gpt-4o family's fine-tuning context on Azure OpenAI: tokens per training example. */
export const DEFAULT_CHAT_MAX_TOKENS = 65_536;
export const DEFAULT_LABEL_WORDS = ['reasoning', 'fast'] as const;
/** Telemetry is rarely openly licensed: Hugging Face's `other` until the owner says. */
export const DEFAULT_LICENSE = 'other';
/** A system prompt goes into every chat example: at most this many UTF-8 bytes (32 KiB). */
export const MAX_SYSTEM_PROMPT_BYTES = 32 * 1024;
/** A label word is one short answer, at most this many characters. */
export const MAX_LABEL_WORD_CHARS = 64;

/** Any C0/C1 control character except tab, line feed and carriage return. */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

export const SystemPromptSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .refine(
    (s) => utf8Length(s) <= MAX_SYSTEM_PROMPT_BYTES,
    `must be at most ${MAX_SYSTEM_PROMPT_BYTES} bytes (UTF-8)`,
  )
  .refine((s) => !CONTROL.test(s), 'must not hold control characters');

const labelWord = z
  .string()
  .trim()
  .min(1, 'a label word must not be empty')
  .max(MAX_LABEL_WORD_CHARS, `a label word must be at most ${MAX_LABEL_WORD_CHARS} characters`)
  .refine((s) => !/[\s,]/.test(s), 'a label word must be one word: no spaces, commas or newlines')
  .refine((s) => !CONTROL.test(s), 'a label word must not hold control characters');

/** [word for label 0 (reasoning), word for label 1 (fast)]: two distinct words. */
export const LabelWordsSchema = z
  .tuple([labelWord, labelWord], {
    error: 'expected two words, for label 0 (reasoning) and label 1 (fast)',
  })
  .refine(
    ([a, b]) => a.toLowerCase() !== b.toLowerCase(),
    'the two label words must differ (case-insensitively)',
  );

export const ChatMaxTokensSchema = z
  .number({ error: 'must be a positive integer' })
  .int('must be a positive integer')
  .positive('must be a positive integer')
  .max(Number.MAX_SAFE_INTEGER, 'must be a positive integer');

/**
 * A Hugging Face license id: an SPDX-like identifier (`mit`, `apache-2.0`,
 * `cc-by-nc-sa-4.0`, `openrail++`) or `other`. Hugging Face ids are lowercase, so the
 * value is lowercased.
 */
export const LicenseSchema = z
  .string()
  .trim()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$/,
    'must be an SPDX-like license id such as mit, apache-2.0, cc-by-4.0, or other',
  )
  .transform((s) => s.toLowerCase());

/** The four settings as a config carries them (absent = default). */
export const DatasetSettingsSchema = z.object({
  /** The chat system message; absent = defaultSystemPrompt of the label words. */
  systemPrompt: SystemPromptSchema.optional(),
  /** The assistant's answer for label 0 and label 1 (default reasoning, fast). */
  labelWords: LabelWordsSchema.optional(),
  /** Chat examples over this many tokens are left out (default 65,536). */
  chatMaxTokens: ChatMaxTokensSchema.optional(),
  /** The card's license (default `other`). */
  license: LicenseSchema.optional(),
});
export type DatasetSettings = z.infer<typeof DatasetSettingsSchema>;

/** A bad dataset setting; the message names the flag, setting or field. */
export class DatasetSettingError extends BalanceError {}

/** `reasoning,fast` → ['reasoning', 'fast'] (checked by LabelWordsSchema afterwards). */
export function splitLabelWords(text: string, source: string): [string, string] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length !== 2)
    throw new DatasetSettingError(
      `${source}: expected two words "REASONING,FAST" (label 0, label 1), got "${text}"`,
    );
  return [parts[0]!, parts[1]!];
}
