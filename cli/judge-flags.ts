/**
 * The judge flags, defined once for every judging command (`run` on the runner and
 * in-process, `annotate`, `calibrate`, `demo`). A flag is turned into the setting the
 * Functions app reads (SFT_JUDGE, JUDGE_*, AZURE_OPENAI_*, SFT_JUDGE_PRICES), and the
 * judge is then built from those settings by the same code as in the app
 * (judgeSettingsFromEnv, adapters/judge/factory.ts): a flag and a setting mean one thing.
 */
import { readFileSync } from 'node:fs';
import { ZodError } from 'zod';
import { parsePriceTable, PriceTableError } from '../shared/judge/prices';
import {
  judgeSettingsFromEnv,
  JudgeSettingsSchema,
  type JudgeSettings,
} from '../shared/judge/settings';
import { formatZodError, UsageError } from './args';

export const JUDGE_OPTIONS = {
  judge: { type: 'string' },
  'judge-config': { type: 'string' },
  model: { type: 'string' },
  deployment: { type: 'string' },
  'base-url': { type: 'string' },
  endpoint: { type: 'string' },
  'api-version': { type: 'string' },
  'batch-size': { type: 'string' },
  concurrency: { type: 'string' },
  rpm: { type: 'string' },
  tpm: { type: 'string' },
  'timeout-ms': { type: 'string' },
  'max-retries': { type: 'string' },
  mode: { type: 'string' },
  replay: { type: 'string' },
  'cache-dir': { type: 'string' },
  'cache-storage': { type: 'string' },
  'no-cache': { type: 'boolean' },
  'judge-prices': { type: 'string' },
} as const;

export const JUDGE_HELP = `Judge options (each sets the app setting in brackets; the settings apply without flags too):
  --judge KIND            signals | openai | azure | replay | panel [SFT_JUDGE, JUDGE_PROVIDER]
                          signals (the default) is an offline heuristic: not for training a production router
  --judge-config FILE     judge settings as JSON (any kind, e.g. {"kind":"panel","judges":[...]}) [JUDGE_SETTINGS]
  --model M, --deployment D
                          model (openai) or deployment name (azure) [JUDGE_MODEL]
  --base-url URL          an OpenAI-compatible endpoint (openai) [JUDGE_BASE_URL]
  --endpoint URL          Azure OpenAI endpoint [AZURE_OPENAI_ENDPOINT]
  --api-version V         Azure OpenAI API version (default 2024-10-21) [AZURE_OPENAI_API_VERSION]
  --batch-size K          samples per request (default 20) [JUDGE_BATCH_SIZE, SFT_JUDGE_BATCH_SIZE]
  --concurrency N         requests in flight (default 4) [JUDGE_CONCURRENCY]
  --rpm N, --tpm N        requests / tokens per minute budgets (default: none) [JUDGE_RPM, JUDGE_TPM]
  --timeout-ms N          per-request timeout (default 60000) [JUDGE_TIMEOUT_MS]
  --max-retries N         retries of a failed call (default 5) [JUDGE_MAX_RETRIES]
  --mode sync|batch       batch: the Batch API (50% cheaper, up to 24 h) [JUDGE_MODE]
  --replay FILE           replay: labels from an earlier annotated file [JUDGE_REPLAY_SOURCE]
  --cache-dir DIR         verdict cache directory (default .judge-cache; the runner: blob storage)
  --cache-storage CONN    verdict cache in Azure Blob Storage (a connection string)
  --no-cache              no verdict cache [JUDGE_CACHE=false]
  --judge-prices JSON|FILE  prices by model over the built-in table, per 1M tokens:
                          {"MODEL":{"inputPerMTok":..,"cachedInputPerMTok":..,"outputPerMTok":..}} [SFT_JUDGE_PRICES]
Keys come from the environment only: JUDGE_API_KEY, else OPENAI_API_KEY (openai) or
AZURE_OPENAI_API_KEY (azure; without one, Entra ID through DefaultAzureCredential: az login,
or a managed identity with the role Cognitive Services OpenAI User).`;

export type Flags = Record<string, string | boolean | undefined>;
type Env = Readonly<Record<string, string | undefined>>;

const JUDGE_KINDS = ['signals', 'openai', 'azure', 'replay', 'panel'] as const;

/** Flag → setting, for the flags that carry a value as is. */
const SETTING_OF: Record<string, string[]> = {
  model: ['JUDGE_MODEL'],
  deployment: ['JUDGE_MODEL'],
  'base-url': ['JUDGE_BASE_URL'],
  endpoint: ['AZURE_OPENAI_ENDPOINT'],
  'api-version': ['AZURE_OPENAI_API_VERSION'],
  'batch-size': ['JUDGE_BATCH_SIZE', 'SFT_JUDGE_BATCH_SIZE'],
  concurrency: ['JUDGE_CONCURRENCY'],
  rpm: ['JUDGE_RPM'],
  tpm: ['JUDGE_TPM'],
  'timeout-ms': ['JUDGE_TIMEOUT_MS'],
  'max-retries': ['JUDGE_MAX_RETRIES'],
  mode: ['JUDGE_MODE'],
  replay: ['JUDGE_REPLAY_SOURCE'],
};

const str = (v: Flags, k: string) => (typeof v[k] === 'string' ? v[k] : undefined);

/** JSON text, or the path of a file holding it. */
function jsonOrFile(flag: string, text: string): string {
  if (text.trim().startsWith('{')) return text;
  try {
    return readFileSync(text, 'utf8');
  } catch (err) {
    throw new UsageError(`--${flag} ${text}: ${(err as Error).message}`);
  }
}

/**
 * The settings the judge flags stand for, to lay over the environment: what the
 * runner hands the Functions handlers and what in-process judging reads.
 */
export function judgeEnvFromFlags(v: Flags): Record<string, string> {
  const env: Record<string, string> = {};
  if (str(v, 'model') !== undefined && str(v, 'deployment') !== undefined)
    throw new UsageError('give --model or --deployment, not both');
  for (const [flag, settings] of Object.entries(SETTING_OF)) {
    const value = str(v, flag);
    if (value !== undefined) for (const s of settings) env[s] = value;
  }
  if (v['no-cache'] === true) env.JUDGE_CACHE = 'false';
  const prices = str(v, 'judge-prices');
  if (prices !== undefined) {
    const text = jsonOrFile('judge-prices', prices);
    try {
      parsePriceTable(text, '--judge-prices');
    } catch (err) {
      if (err instanceof PriceTableError) throw new UsageError(err.message);
      throw err;
    }
    env.SFT_JUDGE_PRICES = text;
  }
  const config = str(v, 'judge-config');
  let configKind: string | undefined;
  if (config !== undefined) {
    const text = jsonOrFile('judge-config', config);
    try {
      configKind = (JSON.parse(text) as { kind?: string }).kind;
    } catch (err) {
      throw new UsageError(`--judge-config ${config}: ${(err as Error).message}`);
    }
    env.JUDGE_SETTINGS = text;
  }
  const kind = str(v, 'judge') ?? configKind ?? (str(v, 'replay') ? 'replay' : undefined);
  if (kind === undefined) return env;
  if (!(JUDGE_KINDS as readonly string[]).includes(kind))
    throw new UsageError(`--judge must be ${JUDGE_KINDS.join(', ')}, got "${kind}"`);
  if (kind === 'openai' || kind === 'azure') {
    env.SFT_JUDGE = 'openai';
    // A --judge-config of another provider keeps its own; the flag chooses otherwise.
    env.JUDGE_PROVIDER = kind;
  } else env.SFT_JUDGE = kind;
  if (kind === 'panel' && config === undefined)
    throw new UsageError('--judge panel needs --judge-config FILE (the panel members)');
  return env;
}

/**
 * Judge settings from the flags over the environment, exactly as the Functions app
 * reads them (SFT_JUDGE names the judge; the signals judge takes no settings).
 */
export function judgeSettingsFromFlags(v: Flags, env: Env = process.env): JudgeSettings {
  const e = { ...env, ...judgeEnvFromFlags(v) };
  return judgeSettingsOfEnv(e);
}

/** The judge SFT_JUDGE names, with its settings from JUDGE_* (what functions/lib/deps.ts builds). */
export function judgeSettingsOfEnv(e: Env): JudgeSettings {
  const name = e.SFT_JUDGE ?? 'signals';
  if (name === 'signals' && !e.JUDGE_SETTINGS) return { kind: 'signals' };
  if (name === 'replay' && !e.JUDGE_REPLAY_SOURCE && !e.JUDGE_SETTINGS)
    throw new UsageError('--judge replay needs --replay FILE (JUDGE_REPLAY_SOURCE)');
  if (name === 'openai' && !e.JUDGE_SETTINGS && !e.JUDGE_MODEL) {
    throw new UsageError(
      `--judge ${e.JUDGE_PROVIDER === 'azure' ? 'azure needs --deployment (or --model)' : 'openai needs --model'} (JUDGE_MODEL)`,
    );
  }
  try {
    return name === 'panel'
      ? JudgeSettingsSchema.parse(JSON.parse(e.JUDGE_SETTINGS ?? '{}'))
      : judgeSettingsFromEnv({ ...e, JUDGE_KIND: name });
  } catch (err) {
    if (err instanceof ZodError)
      throw new UsageError(`judge settings: ${formatZodError(err, false)}`);
    if (err instanceof PriceTableError) throw new UsageError(err.message);
    if (err instanceof SyntaxError) throw new UsageError(`JUDGE_SETTINGS: ${err.message}`);
    throw err;
  }
}
