/**
 * `createJudge(settings, deps)`: the one place that turns judge settings into a
 * Judge, for the CLI and the functions alike. In Azure the OpenAI client
 * authenticates with Entra ID (DefaultAzureCredential, i.e. the managed identity)
 * unless an API key is configured.
 */
import {
  DefaultAzureCredential,
  getBearerTokenProvider,
  type TokenCredential,
} from '@azure/identity';
import OpenAI, { AzureOpenAI } from 'openai';
import { COGNITIVE_SERVICES_SCOPE, politeCredential } from './credential';
import { checkAnnotated, defaultSampleId, LabelSchema } from '../../shared/contracts/rows';
import { judgeCacheKey } from '../../shared/judge/cache-key';
import { createPanelJudge } from '../../shared/judge/panel';
import { createReplayJudge, lookupBySampleId, type ReplayEntry } from '../../shared/judge/replay';
import { canonicalContent, RUBRIC_VERSION, sampleContent } from '../../shared/judge/rubric';
import type { JudgeSettings, OpenAIJudgeSettings } from '../../shared/judge/settings';
import { createSignalsJudge, type SignalsJudgeOptions } from '../../shared/judge/signals';
import type { Judge } from '../../shared/judge/types';
import { readFileLines } from '../files/lines';
import { blobVerdictCache, fromBuildBlobStore, type TextBlobStore } from '../storage/judge-cache';
import { createBatchExecutor } from '../openai/batch';
import { createChatExecutor, createOpenAIJudge, sha256Hex, type Clock } from '../openai/judge';
import type { RoundExecutor } from '../../shared/judge/llm';
import { PermanentError } from '../../shared/errors';

export { COGNITIVE_SERVICES_SCOPE };

export interface JudgeDeps {
  /** Entra credential for Azure OpenAI; DefaultAzureCredential when absent. */
  credential?: TokenCredential;
  /** Where verdicts are cached, by container name; no cache when absent. */
  cacheStore?: (container: string) => TextBlobStore;
  /** Options for the signals judge (complexity thresholds, reasoning models). */
  signals?: SignalsJudgeOptions;
  clock?: Clock;
  randomHex?: () => string;
  /** Told each Batch API job's status as it is polled (progress for long waits). */
  onBatchStatus?: (batch: { id: string; status: string; request_counts?: unknown }) => void;
  /** How an OpenAI judge gets its executor (pooledJudge shares them). */
  executorFor?: (settings: OpenAIJudgeSettings, deps: JudgeDeps) => RoundExecutor;
}

export class JudgeSettingsError extends PermanentError {}

/** The `openai` client for OpenAI or Azure OpenAI settings. */
export function createOpenAIClient(s: OpenAIJudgeSettings, deps: JudgeDeps = {}): OpenAI {
  const common = { maxRetries: 0, timeout: s.timeoutMs };
  if (s.provider === 'openai') {
    return new OpenAI({
      ...common,
      ...(s.apiKey ? { apiKey: s.apiKey } : {}),
      ...(s.baseURL ? { baseURL: s.baseURL } : {}),
    });
  }
  if (!s.endpoint && !s.baseURL)
    throw new JudgeSettingsError('Azure OpenAI needs an endpoint (AZURE_OPENAI_ENDPOINT)');
  const where = s.baseURL ? { baseURL: s.baseURL } : { endpoint: s.endpoint! };
  if (s.apiKey)
    return new AzureOpenAI({ ...common, ...where, apiVersion: s.apiVersion, apiKey: s.apiKey });
  // Failures of the credential (none, expired) are one line naming what to do.
  const credential = politeCredential(
    deps.credential ?? new DefaultAzureCredential(),
    s.endpoint ?? s.baseURL ?? '(no endpoint)',
  );
  return new AzureOpenAI({
    ...common,
    ...where,
    apiVersion: s.apiVersion,
    azureADTokenProvider: getBearerTokenProvider(credential, COGNITIVE_SERVICES_SCOPE),
  });
}

/** Labels by sampleId from an annotated JSONL file (rows that fail validation are skipped). */
export async function readReplayLabels(path: string): Promise<Map<string, ReplayEntry>> {
  const labels = new Map<string, ReplayEntry>();
  await readFileLines(path, (line) => {
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      return;
    }
    if (checkAnnotated(row) !== null) return;
    const r = row as {
      sampleId?: string;
      conversationId: string;
      turnIndex: number;
      label: unknown;
      confidence?: unknown;
      rationale?: unknown;
    };
    const e: ReplayEntry = { label: LabelSchema.parse(r.label) };
    if (typeof r.confidence === 'number') e.confidence = r.confidence;
    if (typeof r.rationale === 'string') e.rationale = r.rationale;
    labels.set(r.sampleId ?? defaultSampleId(r), e);
  });
  return labels;
}

/**
 * Builds the judge the settings describe. Synchronous so a functions host can call it
 * from its judge table; a replay file is read on the first `judge` call. Build one
 * judge per process and reuse it: its RPM/TPM budget lives in the instance.
 */
export function createJudge(settings: JudgeSettings, deps: JudgeDeps = {}): Judge {
  switch (settings.kind) {
    case 'signals':
      return createSignalsJudge({
        ...deps.signals,
        ...(settings.threshold !== undefined ? { threshold: settings.threshold } : {}),
      });
    case 'replay': {
      if (settings.source) {
        const source = settings.source;
        let labels: Promise<Map<string, ReplayEntry>> | null = null;
        return createReplayJudge(`replay:${source}`, async (batch) => {
          labels ??= readReplayLabels(source);
          return lookupBySampleId(await labels)(batch);
        });
      }
      if (!settings.cacheModel || !deps.cacheStore) {
        throw new JudgeSettingsError(
          'a replay judge needs a source file, or a cacheModel and a cache store',
        );
      }
      const cache = blobVerdictCache(deps.cacheStore(settings.cacheContainer));
      const model = settings.cacheModel;
      const rubric = settings.rubricVersion ?? RUBRIC_VERSION;
      return createReplayJudge(`replay-cache:${model}:${rubric}`, (batch) =>
        Promise.all(
          batch.map((s) =>
            cache.get(judgeCacheKey(model, rubric, sha256Hex(canonicalContent(sampleContent(s))))),
          ),
        ),
      );
    }
    case 'panel':
      return createPanelJudge(settings.judges.map((j) => createJudge(j, deps)));
    case 'openai': {
      const cache =
        settings.cache.enabled && deps.cacheStore
          ? blobVerdictCache(deps.cacheStore(settings.cache.container))
          : null;
      return createOpenAIJudge({
        settings,
        executor: (deps.executorFor ?? createExecutor)(settings, deps),
        cache,
        ...(deps.randomHex ? { randomHex: deps.randomHex } : {}),
      });
    }
  }
}

/** The executor the settings call for: one call per request, or Batch API jobs. */
export function createExecutor(settings: OpenAIJudgeSettings, deps: JudgeDeps = {}): RoundExecutor {
  const client = createOpenAIClient(settings, deps);
  const clock = deps.clock ? { clock: deps.clock } : {};
  if (settings.mode === 'batch') {
    return createBatchExecutor({
      client,
      model: settings.model,
      settings,
      ...clock,
      state: deps.cacheStore ? deps.cacheStore(settings.cache.container) : null,
      ...(deps.onBatchStatus ? { onStatus: deps.onBatchStatus } : {}),
    });
  }
  return createChatExecutor({ client, model: settings.model, settings, ...clock });
}

const pool = new Map<string, RoundExecutor>();

/**
 * A judge whose client, RPM/TPM budget and concurrency limit are shared with every
 * other pooled judge of the same settings in this process, while its stats are its
 * own. A functions host calls it per shard: the shard's manifest gets that shard's
 * calls and tokens, and concurrent shards on one instance stay inside one budget
 * (set the budget per instance: the provider's limit over the maximum instance count).
 */
export function pooledJudge(settings: JudgeSettings, deps: JudgeDeps = {}): Judge {
  return createJudge(settings, {
    ...deps,
    executorFor: (s, d) => {
      const key = JSON.stringify(s);
      let executor = pool.get(key);
      if (!executor) {
        executor = createExecutor(s, d);
        pool.set(key, executor);
      }
      return executor;
    },
  });
}

/**
 * The functions' LLM, replay and panel judges (functions/lib/deps.ts):
 * `llmJudgeFactory(judgeSettingsFromEnv(process.env), deps.storeFor)`.
 * Each shard gets a pooled judge (its own stats, the instance's shared limits) whose
 * verdict cache lives in the build storage account, container `settings.cache.container`.
 */
export function llmJudgeFactory(
  settings: JudgeSettings,
  storeFor: (container: string) => Parameters<typeof fromBuildBlobStore>[0],
  deps: JudgeDeps = {},
): () => Judge {
  const cacheStore = (container: string) => fromBuildBlobStore(storeFor(container));
  return () => pooledJudge(settings, { ...deps, cacheStore });
}
