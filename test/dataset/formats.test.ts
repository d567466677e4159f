import { describe, expect, it } from 'vitest';
import { UnknownFormatError, parseFormats, toClassifierExample } from '../../shared/dataset/index';

describe('parseFormats', () => {
  it('always includes jsonl, in canonical order, without repeats', () => {
    expect(parseFormats(undefined)).toEqual(['jsonl']);
    expect(parseFormats('')).toEqual(['jsonl']);
    expect(parseFormats('parquet,chat,chat, Classifier')).toEqual([
      'jsonl',
      'chat',
      'classifier',
      'parquet',
    ]);
    expect(parseFormats(['classifier', 'jsonl'])).toEqual(['jsonl', 'classifier']);
  });

  it('names the flag, setting or field on an unknown format', () => {
    expect(() => parseFormats('chat,xml')).toThrow(UnknownFormatError);
    expect(() => parseFormats('chat,xml')).toThrow(
      '--format: unknown format "xml" (known: jsonl, chat, classifier, parquet)',
    );
    expect(() => parseFormats(['csv'], 'formats')).toThrow(/^formats: unknown format "csv"/);
    expect(() => parseFormats('chat,,parquet', 'SFT_FORMATS')).toThrow(
      /^SFT_FORMATS: empty format name/,
    );
  });
});

describe('toClassifierExample', () => {
  it('joins history and message with the separator and keeps the integer label', () => {
    const ex = toClassifierExample({
      label: 1,
      messages: [
        { role: 'user', content: 'earlier' },
        { role: 'user', content: 'now' },
      ],
    });
    expect(ex).toEqual({ text: 'earlier\n\n[next user message]\n\nnow', label: 1 });
    expect(Object.keys(ex)).toEqual(['text', 'label']);
  });

  it('is the message itself without history, and takes another separator', () => {
    expect(
      toClassifierExample({ label: 0, messages: [{ role: 'user', content: 'solo' }] }),
    ).toEqual({
      text: 'solo',
      label: 0,
    });
    const ex = toClassifierExample(
      {
        label: 0,
        messages: [
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
        ],
      },
      ' [SEP] ',
    );
    expect(ex.text).toBe('a [SEP] b');
  });
});
