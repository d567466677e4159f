/**
 * Command-line flags shared by `balance` and `run`, turned into a balance config.
 * Values are handed to the zod schema as typed as we can make them, so its errors
 * name the flag that was wrong.
 */
import { ZodError } from 'zod';
import { BuildIdSchema } from '../shared/build/spec';
import {
  BalanceConfigSchema,
  type BalanceConfig,
  type BalanceConfigInput,
} from '../shared/contracts/config';
import { parseFormats, UnknownFormatError } from '../shared/dataset/formats';
import { parseShares, SplitSharesError } from '../shared/split/shares';
import { readSystemPromptFile } from './dataset-flags';
import {
  DatasetSettingError,
  MAX_SYSTEM_PROMPT_BYTES,
  splitLabelWords,
} from '../shared/contracts/dataset-settings';
import { inputOverwrittenBy, type InputSource, type OutputTarget } from '../adapters/files/output';
import { PermanentError } from '../shared/errors';

export class UsageError extends PermanentError {}

/** A usage error, before any work, when an output would replace an input (real paths compared). */
export function refuseInputOverwrite(
  inputs: readonly (InputSource | null)[],
  outputs: readonly OutputTarget[],
): void {
  const clash = inputOverwrittenBy(
    inputs.filter((i): i is InputSource => i !== null),
    outputs,
  );
  if (clash) throw new UsageError(clash);
}

export const BALANCE_OPTIONS = {
  total: { type: 'string' },
  ratio: { type: 'string' },
  stratify: { type: 'string' },
  allocation: { type: 'string' },
  'on-shortfall': { type: 'string' },
  seed: { type: 'string' },
  'no-dedup': { type: 'boolean' },
  'no-near-dedup': { type: 'boolean' },
  'dedup-threshold': { type: 'string' },
  validation: { type: 'string' },
  split: { type: 'string' },
  format: { type: 'string' },
  buckets: { type: 'string' },
  'reasoning-models': { type: 'string' },
  'max-message-chars': { type: 'string' },
  'complexity-thresholds': { type: 'string' },
  'complexity-fit': { type: 'string' },
  // Dataset settings (issue 16): the chat format and the card.
  'system-prompt': { type: 'string' },
  'system-prompt-file': { type: 'string' },
  'label-words': { type: 'string' },
  'chat-max-tokens': { type: 'string' },
  license: { type: 'string' },
} as const;

export const BALANCE_HELP = `Balance options:
  --total N                 samples in the dataset (default 100000)
  --ratio R                 share of reasoning (label 0): 0.5, 0.7 or "70:30" (default 0.5)
  --stratify LIST           comma list of turnBucket, complexity, modelFamily, position
                            (default turnBucket; none: --stratify "")
  --allocation MODE         equal | proportional | inverse-frequency (default equal)
  --on-shortfall MODE       shrink | upsample | fail (default shrink)
  --seed S                  sampling seed (default 42)
  --no-dedup                keep exact-duplicate user messages
  --no-near-dedup           keep near-duplicate user messages (removal is on by default:
                            MinHash char-5-grams, docs/dedup.md; duplicates.jsonl lists removals)
  --dedup-threshold T       estimated Jaccard at or above which two messages are
                            near-duplicates, 0 < T <= 1 (default 0.8)
  --validation F            share of the dataset in validation.jsonl (default 0), grouped by
                            conversation, each split at the class ratio (same as --split 1-F,F,0)
  --split T,V,X             train,validation,test shares summing to 1, e.g. 0.9,0.05,0.05:
                            writes test.jsonl too (docs/dedup.md "Splits")
  --format LIST             more formats beside the JSONL record: chat, classifier, parquet
                            (comma list), with a dataset card README.md (docs/formats.md)
  --buckets SPEC            turn-count buckets, default "A:3-5,B:6-10,C:11-20"
  --reasoning-models LIST   model-name prefixes that count as reasoning models
  --max-message-chars N     longer user messages are quarantined (default 32000)
  --complexity-thresholds LOW,HIGH
                            complexity tier cut points on the score in [0, 1]: below LOW low,
                            from HIGH up high (default 0.25,0.6; docs/strata.md)
  --complexity-fit quantiles
                            fit the cut points to the input's score terciles (a first pass)
  --system-prompt TEXT      the chat format's system message (default: a router instruction
                            naming the label words; docs/formats.md)
  --system-prompt-file PATH the same, read from a UTF-8 text file (at most ${MAX_SYSTEM_PROMPT_BYTES} bytes)
  --label-words R,F         the chat assistant's words for label 0 and 1 (default reasoning,fast)
  --chat-max-tokens N       chat examples over N tokens are left out (default 65536)
  --license ID              the dataset card's license: an SPDX-like id or other (default other)`;

const FLAG_OF: Record<string, string> = {
  onShortfall: '--on-shortfall',
  maxMessageChars: '--max-message-chars',
  reasoningModels: '--reasoning-models',
  dedup: '--no-dedup',
  nearDedup: '--no-near-dedup',
  dedupThreshold: '--dedup-threshold',
  complexity: '--complexity-thresholds',
  test: '--split',
  formats: '--format',
};

const num = (s: string) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s);
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

function parseBuckets(spec: string): unknown {
  return list(spec).map((part) => {
    const m = /^([^:]+):(\d+)-(\d+)$/.exec(part);
    if (!m) throw new UsageError(`--buckets: "${part}" is not NAME:MIN-MAX (e.g. A:3-5)`);
    return { name: m[1], min: Number(m[2]), max: Number(m[3]) };
  });
}

/** The value of `f`, or a UsageError carrying the message of what it threw (a bad flag value). */
function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (
      err instanceof SplitSharesError ||
      err instanceof UnknownFormatError ||
      err instanceof DatasetSettingError
    )
      throw new UsageError(err.message);
    throw err;
  }
}

/** Builds a validated balance config from parsed flags over `defaults`. */
export function balanceConfigFromFlags(
  values: Record<string, string | boolean | undefined>,
  defaults: BalanceConfigInput = {},
): BalanceConfig {
  const input: Record<string, unknown> = { ...defaults };
  const v = (k: string) => values[k] as string | undefined;
  if (v('total') !== undefined) input.total = num(v('total')!);
  if (v('ratio') !== undefined) input.ratio = num(v('ratio')!);
  if (v('stratify') !== undefined) input.stratify = list(v('stratify')!);
  if (v('allocation') !== undefined) input.allocation = v('allocation');
  if (v('on-shortfall') !== undefined) input.onShortfall = v('on-shortfall');
  if (v('seed') !== undefined) input.seed = num(v('seed')!);
  if (values['no-dedup'] === true) input.dedup = false;
  if (values['no-near-dedup'] === true) input.nearDedup = false;
  if (v('dedup-threshold') !== undefined) {
    const t = Number(v('dedup-threshold'));
    if (v('dedup-threshold')!.trim() === '' || !(t > 0 && t <= 1))
      throw new UsageError(
        `--dedup-threshold: "${v('dedup-threshold')}" is not a Jaccard similarity in (0, 1] (e.g. 0.8)`,
      );
    input.dedupThreshold = t;
  }
  if (v('validation') !== undefined) input.validation = num(v('validation')!);
  if (v('split') !== undefined) {
    if (v('validation') !== undefined)
      throw new UsageError('give --split or --validation, not both');
    const shares = usage(() => parseShares(v('split')!, '--split'));
    if (!(shares[0] > 0)) throw new UsageError(`--split: the train share must be above 0`);
    input.validation = shares[1];
    input.test = shares[2];
  }
  if (v('format') !== undefined) input.formats = usage(() => parseFormats(v('format'), '--format'));
  if (v('buckets') !== undefined) input.buckets = parseBuckets(v('buckets')!);
  if (v('reasoning-models') !== undefined) input.reasoningModels = list(v('reasoning-models')!);
  if (v('max-message-chars') !== undefined) input.maxMessageChars = num(v('max-message-chars')!);
  if (v('complexity-thresholds') !== undefined) {
    const parts = v('complexity-thresholds')!
      .split(',')
      .map((x) => x.trim());
    if (parts.length !== 2 || parts.some((p) => p === '' || !Number.isFinite(Number(p))))
      throw new UsageError(
        `--complexity-thresholds: "${v('complexity-thresholds')}" is not LOW,HIGH (e.g. 0.25,0.6)`,
      );
    const base = (input.complexity ?? {}) as Record<string, unknown>;
    input.complexity = { ...base, tiers: parts.map(Number) };
  }
  if (v('complexity-fit') !== undefined && v('complexity-fit') !== 'quantiles')
    throw new UsageError(`--complexity-fit: only "quantiles", got "${v('complexity-fit')}"`);
  datasetFlags(v, input);
  try {
    return BalanceConfigSchema.parse(input);
  } catch (err) {
    if (err instanceof ZodError) throw new UsageError(formatZodError(err));
    throw err;
  }
}

/** The dataset settings' flags (issue 16) into `input`; the schema checks the values. */
function datasetFlags(v: (k: string) => string | undefined, input: Record<string, unknown>): void {
  if (v('system-prompt') !== undefined && v('system-prompt-file') !== undefined)
    throw new UsageError('give --system-prompt or --system-prompt-file, not both');
  if (v('system-prompt') !== undefined) input.systemPrompt = v('system-prompt');
  if (v('system-prompt-file') !== undefined)
    input.systemPrompt = usage(() => readSystemPromptFile(v('system-prompt-file')!));
  if (v('label-words') !== undefined)
    input.labelWords = usage(() => splitLabelWords(v('label-words')!, '--label-words'));
  if (v('chat-max-tokens') !== undefined) input.chatMaxTokens = num(v('chat-max-tokens')!);
  if (v('license') !== undefined) input.license = v('license');
}

/** "--total: Too small: expected number to be >0" from a ZodError. */
export function formatZodError(err: ZodError, flags = true): string {
  return err.issues
    .map((i) => {
      const key = String(i.path[0] ?? '');
      const name = flags
        ? (FLAG_OF[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`)
        : i.path.join('.');
      const rest = flags && i.path.length > 1 ? ` (${i.path.slice(1).join('.')})` : '';
      return `${name}${rest}: ${i.message}`;
    })
    .join('; ');
}

/** A required string flag, or a UsageError naming it. */
export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing --${name}`);
  return v;
}

/** A positive integer flag with a default. */
export function positiveInt(
  values: Record<string, unknown>,
  name: string,
  fallback?: number,
): number {
  const v = values[name];
  if (v === undefined) {
    if (fallback === undefined) throw new UsageError(`missing --${name}`);
    return fallback;
  }
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < 1) {
    throw new UsageError(
      `--${name} must be a positive integer, got "${typeof v === 'string' ? v : typeof v}"`,
    );
  }
  return n;
}

/** A non-negative integer flag with a default. */
export function nonNegativeInt(
  values: Record<string, unknown>,
  name: string,
  fallback: number,
): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < 0) {
    throw new UsageError(
      `--${name} must be a non-negative integer, got "${typeof v === 'string' ? v : typeof v}"`,
    );
  }
  return n;
}

/**
 * A --build-id, checked before anything starts: build ids name blobs and queue
 * messages, and a message with a bad id would be dropped, leaving the run waiting.
 */
export function buildIdFlag(id: string): string {
  if (!BuildIdSchema.safeParse(id).success)
    throw new UsageError(
      `--build-id "${id}" is not a build id: use 3-63 lowercase letters, digits or hyphens, ` +
        `the first a letter or digit (^[a-z0-9][a-z0-9-]{2,62}$)`,
    );
  return id;
}
