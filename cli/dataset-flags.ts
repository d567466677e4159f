/**
 * `--system-prompt-file PATH`: the chat system prompt read from a file as data. The
 * file must be a regular file of at most MAX_SYSTEM_PROMPT_BYTES of UTF-8 text; it is
 * read, never run or interpreted (no templating, no includes). A byte-order mark and
 * the surrounding whitespace are dropped, as the schema trims the value.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { DatasetSettingError, MAX_SYSTEM_PROMPT_BYTES } from '../shared/contracts/dataset-settings';

const FLAG = '--system-prompt-file';

/** The text of PATH, or a DatasetSettingError naming the flag and what is wrong. */
export function readSystemPromptFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new DatasetSettingError(`${FLAG}: cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new DatasetSettingError(`${FLAG}: ${path} is not a regular file`);
    if (stat.size > MAX_SYSTEM_PROMPT_BYTES)
      throw new DatasetSettingError(
        `${FLAG}: ${path} has ${stat.size} bytes; a system prompt may have at most ${MAX_SYSTEM_PROMPT_BYTES}`,
      );
    // One byte more than the limit: a file that grew after fstat is still caught.
    const buf = Buffer.alloc(MAX_SYSTEM_PROMPT_BYTES + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_SYSTEM_PROMPT_BYTES)
      throw new DatasetSettingError(
        `${FLAG}: ${path} has more than ${MAX_SYSTEM_PROMPT_BYTES} bytes`,
      );
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, n));
    } catch {
      throw new DatasetSettingError(`${FLAG}: ${path} is not UTF-8 text`);
    }
    if (text.trim() === '') throw new DatasetSettingError(`${FLAG}: ${path} is empty`);
    return text;
  } finally {
    closeSync(fd);
  }
}
