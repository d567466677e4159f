/**
 * The dataset settings' schemas (shared/contracts/dataset-settings.ts): what a flag, an SFT_
 * setting and a request-body field accept for the system prompt, the label words, the
 * chat token limit and the card license.
 */
import { describe, expect, it } from 'vitest';
import {
  ChatMaxTokensSchema,
  LabelWordsSchema,
  LicenseSchema,
  MAX_SYSTEM_PROMPT_BYTES,
  SystemPromptSchema,
  splitLabelWords,
} from '../../shared/dataset/index';
import { parseBalanceConfig } from '../../shared/contracts/config';

const ok = (schema: { safeParse(v: unknown): { success: boolean } }, v: unknown) =>
  schema.safeParse(v).success;

describe('dataset settings', () => {
  it('label words: two distinct one-word labels', () => {
    expect(LabelWordsSchema.parse([' think ', 'quick'])).toEqual(['think', 'quick']);
    for (const bad of [
      ['same', 'same'],
      ['Fast', 'fast'],
      ['', 'x'],
      ['two words', 'x'],
      ['a\u0007', 'b'],
      ['x'.repeat(65), 'y'],
      ['only'],
      ['a', 'b', 'c'],
    ])
      expect(ok(LabelWordsSchema, bad), JSON.stringify(bad)).toBe(false);
    expect(splitLabelWords('think, quick', '--label-words')).toEqual(['think', 'quick']);
    expect(() => splitLabelWords('think', '--label-words')).toThrow(
      /^--label-words: expected two words/,
    );
  });

  it('token limit: a positive integer', () => {
    expect(ChatMaxTokensSchema.parse(4096)).toBe(4096);
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, '4096'])
      expect(ok(ChatMaxTokensSchema, bad), String(bad)).toBe(false);
  });

  it('license: an SPDX-like id or other, lowercased', () => {
    for (const id of ['mit', 'apache-2.0', 'cc-by-nc-sa-4.0', 'openrail++', 'other'])
      expect(LicenseSchema.parse(id)).toBe(id);
    expect(LicenseSchema.parse('MIT')).toBe('mit');
    for (const bad of ['', 'MIT License', '-mit', 'mit;rm', 'a'.repeat(65), 'cc/by'])
      expect(ok(LicenseSchema, bad), bad).toBe(false);
  });

  it('system prompt: non-empty text within the size limit, no control characters', () => {
    expect(SystemPromptSchema.parse('  Route it.\n')).toBe('Route it.');
    expect(ok(SystemPromptSchema, 'line one\n\tline two')).toBe(true);
    expect(ok(SystemPromptSchema, 'é'.repeat(MAX_SYSTEM_PROMPT_BYTES / 2))).toBe(true);
    expect(ok(SystemPromptSchema, 'é'.repeat(MAX_SYSTEM_PROMPT_BYTES / 2 + 1))).toBe(false);
    for (const bad of ['', '   ', 'a\u0000b']) expect(ok(SystemPromptSchema, bad)).toBe(false);
  });

  it('a config without them keeps its defaults (absent), with them carries them', () => {
    const plain = parseBalanceConfig({});
    for (const k of ['systemPrompt', 'labelWords', 'chatMaxTokens', 'license'])
      expect(k in plain).toBe(false);
    expect(
      parseBalanceConfig({ labelWords: ['a', 'b'], chatMaxTokens: 9, license: 'MIT' }),
    ).toMatchObject({ labelWords: ['a', 'b'], chatMaxTokens: 9, license: 'mit' });
  });
});
