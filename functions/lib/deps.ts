/**
 * What the handlers need from the outside world, built once per process from the
 * settings. Tests and the local runner build it with their own names and hooks.
 */
import { randomUUID } from 'node:crypto';
import { createBlobStore, type BlobStore } from '../../adapters/storage/blob-store';
import {
  createQueueSender,
  type MessageEncoding,
  type QueueSender,
} from '../../adapters/storage/queue';
import { readQueueHostConfig } from '../../adapters/storage/host-config';
import { storageClients, type StorageClients } from '../../adapters/storage/clients';
import { openSource, type LineSource } from '../../adapters/storage/source';
import type { InputReadOptions } from '../../adapters/files/input-formats';
import type { BuildSpec } from '../../shared/build/spec';
import type { Judge } from '../../shared/judge/types';
import type { Settings } from '../../shared/build/settings';
import type { SourceRef } from '../../shared/source/ref';
import { llmJudgeFactory } from '../../adapters/judge/factory';
import { judgeSettingsFromEnv } from '../../shared/judge/settings';
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
  /** `read`: how CSV/Parquet parts are read (adapters/storage/source.ts openSource). */
  openSource(ref: SourceRef, read?: InputReadOptions): LineSource;
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
/**
 * The judge name under which builds replay recorded labels: JUDGE_REPLAY_SOURCE names
 * an annotated file (the local runner's `--replay`; benchmarks with known labels).
 */
export const REPLAY_JUDGE = 'replay';
/** The judge name under which builds use a panel of judges (JUDGE_SETTINGS, a JSON object). */
export const PANEL_JUDGE = 'panel';

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
  // The replay judge (recorded labels) is read once per process the same way.
  const envJudges = new Map<string, () => Judge>();
  const judgeForSpec = (spec: BuildSpec): Judge => {
    const kind =
      spec.judge.name === LLM_JUDGE
        ? 'openai'
        : spec.judge.name === REPLAY_JUDGE
          ? 'replay'
          : spec.judge.name === PANEL_JUDGE
            ? 'panel'
            : null;
    if (kind === null) return judgeFor(spec);
    let make = envJudges.get(kind);
    if (!make) {
      const factory = llmJudgeFactory(judgeSettingsFromEnv({ ...env, JUDGE_KIND: kind }), storeFor);
      // One replay judge per process: it reads its file once, on first use.
      const one = kind === 'replay' ? factory() : null;
      make = one ? () => one : factory;
      envJudges.set(kind, make);
    }
    return make();
  };
  return {
    settings,
    clients,
    store: storeFor(),
    storeFor,
    queues: createQueueSender(clients.queues, encoding),
    encoding,
    judgeFor: judgeForSpec,
    openSource: (ref, read) => openSource(ref, storeFor, read),
    now: () => new Date(),
    randomId: () => randomUUID().replace(/-/g, ''),
    failpoint: () => {},
    specCache: new Map(),
    ...overrides,
  };
}
