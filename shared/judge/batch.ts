/**
 * Batch API files, as pure functions: request lines split under the provider's
 * per-file limits, and output lines read back with zod. Which lines to resubmit is
 * decided per line, so one failed or expired request never sinks its neighbours.
 */
import { z } from 'zod';

/** Per-file limits: OpenAI 50,000 requests / 200 MB; Azure Global Batch 100,000. */
export const BATCH_LIMITS = {
  openai: { maxRequests: 50_000, maxBytes: 200 * 1024 * 1024 },
  azure: { maxRequests: 100_000, maxBytes: 200 * 1024 * 1024 },
} as const;

const utf8Length = (s: string): number => {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
};

/**
 * Splits JSONL lines into files of at most `maxRequests` lines and `maxBytes` bytes
 * (UTF-8, newlines included). A single line over `maxBytes` is an error: no file
 * could carry it.
 */
export function splitBatchFiles(
  lines: readonly string[],
  maxRequests: number,
  maxBytes: number,
): string[][] {
  const files: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const line of lines) {
    const size = utf8Length(line) + 1;
    if (size > maxBytes)
      throw new RangeError(`a batch request line of ${size} bytes exceeds ${maxBytes}`);
    if (current.length >= maxRequests || bytes + size > maxBytes) {
      files.push(current);
      current = [];
      bytes = 0;
    }
    current.push(line);
    bytes += size;
  }
  if (current.length > 0) files.push(current);
  return files;
}

export const BatchOutputLineSchema = z.object({
  custom_id: z.string(),
  response: z.object({ status_code: z.number().int(), body: z.unknown() }).nullable().optional(),
  error: z
    .object({ code: z.string().nullable().optional(), message: z.string().nullable().optional() })
    .nullable()
    .optional(),
});

export type BatchLineResult =
  | { customId: string; ok: true; body: unknown }
  /** `retry`: worth resubmitting (429, 5xx, expired); otherwise the content was refused. */
  | { customId: string; ok: false; retry: boolean; cause: string };

/** Reads output/error file text into per-line results; unreadable lines are skipped. */
export function readBatchOutput(text: string): BatchLineResult[] {
  const out: BatchLineResult[] = [];
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      continue;
    }
    const line = BatchOutputLineSchema.safeParse(value);
    if (!line.success) continue;
    const { custom_id: customId, response, error } = line.data;
    const status = response?.status_code;
    if (status === 200 && !error) {
      out.push({ customId, ok: true, body: response!.body });
      continue;
    }
    const bodyError = (response?.body as { error?: { message?: string } } | undefined)?.error
      ?.message;
    const cause = `batch line failed: ${status !== undefined ? `HTTP ${status}` : (error?.code ?? 'error')}${
      (error?.message ?? bodyError) ? ` (${error?.message ?? bodyError})` : ''
    }`;
    const retry = status === undefined || status === 408 || status === 429 || status >= 500;
    out.push({ customId, ok: false, retry, cause });
  }
  return out;
}

export const TERMINAL_BATCH_STATES = ['completed', 'failed', 'expired', 'cancelled'] as const;

/**
 * What a Batch API run has submitted, saved before waiting so a process that dies
 * during the (up to 24 h) wait reattaches to its jobs instead of paying again. Lines
 * map the job's custom ids to the request's content keys (the sample hashes in
 * prompt order), which do not depend on the run that made them.
 */
export const BatchStateSchema = z.object({
  submissions: z.array(
    z.object({
      batchId: z.string(),
      inputFileId: z.string(),
      lines: z.record(z.string(), z.string()),
    }),
  ),
});
export type BatchState = z.infer<typeof BatchStateSchema>;
