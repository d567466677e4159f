/**
 * Judge settings: one zod schema the CLI and the functions' `loadSettings` share, so
 * both build the same judge from the same values (see adapters/judge/factory.ts).
 */
import { z } from 'zod';
import { parsePriceTable, PriceTableSchema } from './prices';
import { PricesSchema } from './usage';

const int = (min: number) => z.coerce.number().int().min(min);

export const BatchApiSettingsSchema = z.object({
  /** Provider limits: OpenAI 50,000 requests and 200 MB a file; Azure Global Batch 100,000. */
  maxRequestsPerFile: int(1).optional(),
  maxBytesPerFile: int(1).default(190 * 1024 * 1024),
  pollIntervalMs: int(1).default(30_000),
  /** Give up waiting for a job after this long (it is cancelled). */
  maxWaitMs: int(1).default(25 * 3_600_000),
  /** Rounds of resubmitting failed or expired lines. */
  maxRounds: int(1).default(3),
  completionWindow: z.literal('24h').default('24h'),
  /**
   * Files the provider deletes by itself after this many seconds (3600..2592000), in
   * case a run dies before its own clean-up; 0 sends no expiry.
   */
  fileExpirySeconds: z.union([z.literal(0), int(3_600).max(2_592_000)]).default(1_209_600),
});

export const OpenAIJudgeSettingsSchema = z.object({
  kind: z.literal('openai'),
  /** "openai" (api.openai.com or any baseURL speaking its API) or "azure" (Azure OpenAI). */
  provider: z.enum(['openai', 'azure']).default('openai'),
  /** The model (OpenAI) or deployment name (Azure). */
  model: z.string().min(1),
  /** The model identity in cache keys when `model` is an Azure deployment alias. */
  cacheModel: z.string().min(1).optional(),
  baseURL: z.url().optional(),
  /** Azure: https://RESOURCE.openai.azure.com */
  endpoint: z.url().optional(),
  apiVersion: z.string().min(1).default('2024-10-21'),
  /**
   * Azure defaults to Entra ID (DefaultAzureCredential / managed identity); a key is
   * used only when given. OpenAI needs a key.
   */
  apiKey: z.string().min(1).optional(),
  mode: z.enum(['sync', 'batch']).default('sync'),
  /** K: samples per request. */
  batchSize: int(1).max(200).default(20),
  concurrency: int(1).default(4),
  /** Requests and tokens per minute; 0 = no client-side budget. */
  rpm: int(0).default(0),
  tpm: int(0).default(0),
  timeoutMs: int(1).default(60_000),
  maxRetries: int(0).default(5),
  backoffBaseMs: int(1).default(500),
  backoffMaxMs: int(1).default(30_000),
  maxVerdictAttempts: int(1).default(3),
  /** Ask for token logprobs (confidence); reasoning models (o-series, gpt-5) refuse them. */
  logprobs: z.boolean().default(true),
  /** 0 for repeatable verdicts; null omits it (reasoning models accept only their default). */
  temperature: z.number().min(0).max(2).nullable().default(0),
  seed: z.coerce.number().int().optional(),
  /** Prices of this judge; absent: the model's row of the price table (shared/judge/prices.ts). */
  prices: PricesSchema.optional(),
  /** Rows over the price table, by model (SFT_JUDGE_PRICES, --judge-prices). */
  priceTable: PriceTableSchema.optional(),
  /** Verdict cache in blob storage; the container comes from the storage settings. */
  cache: z
    .object({
      enabled: z.boolean().default(true),
      container: z.string().min(3).default('judge-cache'),
    })
    .default({ enabled: true, container: 'judge-cache' }),
  batch: BatchApiSettingsSchema.default(BatchApiSettingsSchema.parse({})),
});
export type OpenAIJudgeSettings = z.infer<typeof OpenAIJudgeSettingsSchema>;

export const SignalsJudgeSettingsSchema = z.object({
  kind: z.literal('signals'),
  threshold: z.number().min(0).max(1).optional(),
});

export const ReplayJudgeSettingsSchema = z.object({
  kind: z.literal('replay'),
  /** An annotated JSONL file (labels by sampleId). */
  source: z.string().min(1).optional(),
  /** Or the verdict cache of this model × rubric. */
  cacheModel: z.string().min(1).optional(),
  cacheContainer: z.string().min(3).default('judge-cache'),
  rubricVersion: z.string().min(1).optional(),
});

const MemberSchema = z.discriminatedUnion('kind', [
  OpenAIJudgeSettingsSchema,
  SignalsJudgeSettingsSchema,
  ReplayJudgeSettingsSchema,
]);

export const PanelJudgeSettingsSchema = z.object({
  kind: z.literal('panel'),
  judges: z.array(MemberSchema).min(2),
});

export const JudgeSettingsSchema = z.discriminatedUnion('kind', [
  OpenAIJudgeSettingsSchema,
  SignalsJudgeSettingsSchema,
  ReplayJudgeSettingsSchema,
  PanelJudgeSettingsSchema,
]);
export type JudgeSettings = z.infer<typeof JudgeSettingsSchema>;

/**
 * Judge settings from environment variables (app settings in Azure):
 * `JUDGE_SETTINGS` (a JSON object, e.g. for a panel), else `JUDGE_KIND` (default
 * signals) with `JUDGE_PROVIDER`, `JUDGE_MODEL`, `JUDGE_BASE_URL`,
 * `AZURE_OPENAI_ENDPOINT`, `AZURE_OPENAI_API_VERSION`, `JUDGE_API_KEY` (else
 * `AZURE_OPENAI_API_KEY` / `OPENAI_API_KEY` by provider), `JUDGE_MODE`,
 * `JUDGE_BATCH_SIZE`, `JUDGE_CONCURRENCY`, `JUDGE_RPM`, `JUDGE_TPM`,
 * `JUDGE_TIMEOUT_MS`, `JUDGE_MAX_RETRIES`, `JUDGE_CACHE_CONTAINER`,
 * `JUDGE_PRICE_INPUT` / `_CACHED_INPUT` / `_OUTPUT` (per million tokens), `SFT_JUDGE_PRICES`
 * (a JSON table by model over the built-in one). The CLI's judge flags set these same
 * variables (cli/judge-flags.ts), so a flag and a setting mean one thing.
 */
export function judgeSettingsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): JudgeSettings {
  if (env.JUDGE_SETTINGS) return JudgeSettingsSchema.parse(JSON.parse(env.JUDGE_SETTINGS));
  const kind = env.JUDGE_KIND ?? 'signals';
  const defined = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
  if (kind !== 'openai')
    return JudgeSettingsSchema.parse(defined({ kind, source: env.JUDGE_REPLAY_SOURCE }));
  const prices = defined({
    inputPerMTok: env.JUDGE_PRICE_INPUT,
    cachedInputPerMTok: env.JUDGE_PRICE_CACHED_INPUT,
    outputPerMTok: env.JUDGE_PRICE_OUTPUT,
  });
  return JudgeSettingsSchema.parse(
    defined({
      kind,
      provider: env.JUDGE_PROVIDER,
      model: env.JUDGE_MODEL,
      cacheModel: env.JUDGE_CACHE_MODEL,
      baseURL: env.JUDGE_BASE_URL,
      endpoint: env.AZURE_OPENAI_ENDPOINT,
      apiVersion: env.AZURE_OPENAI_API_VERSION,
      // A key only when one is configured; Azure without one uses Entra ID.
      apiKey:
        env.JUDGE_API_KEY ??
        (env.JUDGE_PROVIDER === 'azure' ? env.AZURE_OPENAI_API_KEY : env.OPENAI_API_KEY),
      mode: env.JUDGE_MODE,
      batchSize: env.JUDGE_BATCH_SIZE,
      concurrency: env.JUDGE_CONCURRENCY,
      rpm: env.JUDGE_RPM,
      tpm: env.JUDGE_TPM,
      timeoutMs: env.JUDGE_TIMEOUT_MS,
      maxRetries: env.JUDGE_MAX_RETRIES,
      prices: Object.keys(prices).length
        ? PricesSchema.parse(
            Object.fromEntries(Object.entries(prices).map(([k, v]) => [k, Number(v)])),
          )
        : undefined,
      priceTable: env.SFT_JUDGE_PRICES ? parsePriceTable(env.SFT_JUDGE_PRICES) : undefined,
      cache:
        env.JUDGE_CACHE_CONTAINER || env.JUDGE_CACHE
          ? {
              enabled: env.JUDGE_CACHE !== 'false' && env.JUDGE_CACHE !== 'off',
              ...(env.JUDGE_CACHE_CONTAINER ? { container: env.JUDGE_CACHE_CONTAINER } : {}),
            }
          : undefined,
    }),
  );
}
