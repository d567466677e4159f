/**
 * What the handlers need from the outside world, built once per process from the
 * settings. Tests and the local runner build it with their own names and hooks.
 */
import { randomUUID } from 'node:crypto';
import { createBlobStore, type BlobStore } from '../adapters/blob-store';
import { createQueueSender, type MessageEncoding, type QueueSender } from '../adapters/queue';
import { readQueueHostConfig } from '../adapters/queue-host-config';
import { storageClients, type StorageClients } from '../adapters/storage';
import { openSource, type LineSource } from '../adapters/storage-source';
import type { BuildSpec } from '../shared/build';
import type { Judge } from '../shared/judge/types';
import type { Settings, SourceRef } from '../shared/settings';
import { llmJudgeFactory } from '../adapters/judge-factory';
import { judgeSettingsFromEnv } from '../shared/judge/settings';
import { judgeFor } from './judges';

export interface Deps {
  settings: Settings;
  clients: StorageClients;
  /** The build container. */
  store: BlobStore;
  storeFor(container?: string): BlobStore;
  queues: QueueSender;
  encoding: MessageEncoding;
  judgeFor(spec: BuildSpec): Judge;
  openSource(ref: SourceRef): LineSource;
  now(): Date;
  randomId(): string;
  /**
   * Named points in the handlers where the local runner's fault injection
   * (SFT_FAILPOINT) may stop the process; a no-op otherwise.
   */
  failpoint(name: string): void;
  /** Build specs by id (immutable once written). */
  specCache: Map<string, BuildSpec>;
}

/** The judge name under which builds use the LLM judge (settings JUDGE_*, AZURE_OPENAI_*). */
export const LLM_JUDGE = 'openai';

export function createDeps(
  settings: Settings,
  overrides: Partial<Deps> = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): Deps {
  const clients = overrides.clients ?? storageClients(settings.storage);
  const encoding = overrides.encoding ?? readQueueHostConfig().messageEncoding;
  const stores = new Map<string, BlobStore>();
  const storeFor = (container = settings.container) => {
    let s = stores.get(container);
    if (!s) {
      s = createBlobStore(clients.blobs, container);
      stores.set(container, s);
    }
    return s;
  };
  // The LLM judge reads its settings once, on first use: every shard of this process
  // then shares its client, rate budget and concurrency (pooled), and its verdict cache
  // lives in this storage account.
  let llm: (() => Judge) | undefined;
  const judgeForSpec = (spec: BuildSpec): Judge => {
    if (spec.judge.name !== LLM_JUDGE) return judgeFor(spec);
    llm ??= llmJudgeFactory(judgeSettingsFromEnv({ ...env, JUDGE_KIND: 'openai' }), storeFor);
    return llm();
  };
  return {
    settings,
    clients,
    store: storeFor(),
    storeFor,
    queues: createQueueSender(clients.queues, encoding),
    encoding,
    judgeFor: judgeForSpec,
    openSource: (ref) => openSource(ref, storeFor),
    now: () => new Date(),
    randomId: () => randomUUID().replace(/-/g, ''),
    failpoint: () => {},
    specCache: new Map(),
    ...overrides,
  };
}
