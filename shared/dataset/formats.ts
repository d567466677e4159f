/**
 * Which output formats a build writes. The JSONL record (train.jsonl, validation.jsonl,
 * test.jsonl) is always written: every other format is derived from it.
 */
import { BalanceError } from '../errors/index';

export const OUTPUT_FORMATS = ['jsonl', 'chat', 'classifier', 'parquet'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** An unknown or empty format name; the message names the flag, setting or field. */
export class UnknownFormatError extends BalanceError {}

const isFormat = (s: string): s is OutputFormat =>
  (OUTPUT_FORMATS as readonly string[]).includes(s);

/**
 * Parses a format list such as `chat,classifier,parquet` (or an array of names, as an
 * HTTP body gives it). `source` names where it came from (`--format`, `SFT_FORMATS`,
 * `formats`) so the error points at it. The result is in canonical order, without
 * repeats, and always starts with `jsonl`.
 */
export function parseFormats(
  input: string | readonly string[] | undefined,
  source = '--format',
): OutputFormat[] {
  const parts = input === undefined ? [] : typeof input === 'string' ? input.split(',') : input;
  const chosen = new Set<OutputFormat>(['jsonl']);
  for (const raw of parts) {
    const name = raw.trim().toLowerCase();
    if (name === '') {
      if (typeof input === 'string' && input.trim() === '') continue;
      throw new UnknownFormatError(
        `${source}: empty format name in "${String(input)}" (known: ${OUTPUT_FORMATS.join(', ')})`,
      );
    }
    if (!isFormat(name))
      throw new UnknownFormatError(
        `${source}: unknown format "${raw.trim()}" (known: ${OUTPUT_FORMATS.join(', ')})`,
      );
    chosen.add(name);
  }
  return OUTPUT_FORMATS.filter((f) => chosen.has(f));
}
