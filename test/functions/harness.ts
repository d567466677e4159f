/**
 * Test harness: settings with unique container and queue names on the Azurite the
 * global setup started, the real handlers, and the local queue host serving them.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { LocalQueueHost, type HostEvent } from '../../adapters/local/queue-host';
import { readQueueHostConfig, type QueueHostConfig } from '../../adapters/storage/host-config';
import { getOutcome, startBuild } from '../../functions/lib/build-ops';
import { createDeps, type Deps } from '../../functions/lib/deps';
import { readShard } from '../../functions/lib/shards';
import { conversationOfSampleId } from '../../shared/build/batch';
import { registrations, type QueueFunction } from '../../functions/registry';
import type { z } from 'zod';
import { parseBalanceConfig } from '../../shared/contracts/config';
import {
  BuildSpecSchema,
  buildSpecOf,
  type BuildRequest,
  type BuildSpec,
  type Outcome,
} from '../../shared/build/spec';
import { generateTelemetry } from '../../shared/source/generate';
import { createSignalsJudge } from '../../shared/judge/signals';
import type { Judge } from '../../shared/judge/types';
import { loadSettings, type Settings } from '../../shared/build/settings';

export function uniqueSettings(extra: Record<string, string> = {}): Settings {
  const tag = randomUUID().slice(0, 8);
  return loadSettings({
    AzureWebJobsStorage: inject('azurite').connectionString,
    SFT_CONTAINER: `t-${tag}`,
    SFT_PLAN_QUEUE: `p-${tag}`,
    SFT_SHARD_QUEUE: `s-${tag}`,
    SFT_FANIN_QUEUE: `f-${tag}`,
    SFT_SHARD_BYTES: '65536',
    SFT_FANIN_LEASE_SECONDS: '15',
    ...extra,
  });
}

export function testDeps(extra: Record<string, string> = {}, overrides: Partial<Deps> = {}): Deps {
  return createDeps(uniqueSettings(extra), overrides);
}

/** Writes generated telemetry to a temp file; returns its path. */
export async function telemetryFile(conversations: number, seed = 3, extraLines: string[] = []) {
  const dir = join(tmpdir(), `sftb-${randomUUID().slice(0, 8)}`);
  await mkdir(dir, { recursive: true });
  const lines: string[] = [];
  for (const t of generateTelemetry({ conversations, seed })) lines.push(JSON.stringify(t));
  lines.push(...extraLines);
  const path = join(dir, 'telemetry.jsonl');
  await writeFile(path, lines.join('\n') + '\n');
  return { dir, path };
}

/** A fast host for tests: short leases and retry delays. */
export function fastHostConfig(over: Partial<QueueHostConfig> = {}): QueueHostConfig {
  return { ...readQueueHostConfig(), visibilityTimeout: 0, maxPollingInterval: 200, ...over };
}

export function specFor(
  deps: Deps,
  id: string,
  request: BuildRequest,
  source: BuildSpec['source'],
): BuildSpec {
  const s = deps.settings;
  return buildSpecOf({
    id,
    createdAt: '2026-11-25T00:00:00.000Z',
    createdBy: 'cli',
    request,
    defaults: s.defaults,
    source,
    judge: s.judge,
    minJudgedShare: s.minJudgedShare,
    shardBytes: s.shardBytes,
    maxShards: s.maxShards,
  });
}

export function queueFunctions(deps: Deps): QueueFunction[] {
  return registrations(deps).filter((r): r is QueueFunction => r.kind === 'queue');
}

/** Starts a build, serves the queues until it has an outcome, stops. */
export async function runBuild(
  deps: Deps,
  spec: BuildSpec,
  opts: { config?: QueueHostConfig; timeoutMs?: number; events?: HostEvent[] } = {},
): Promise<Outcome> {
  await startBuild(deps, spec);
  const host = new LocalQueueHost({
    service: deps.clients.queues,
    functions: queueFunctions(deps),
    config: opts.config ?? fastHostConfig(),
    leaseSeconds: 5,
    onEvent: (e) => opts.events?.push(e),
  });
  host.start();
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  try {
    for (;;) {
      const outcome = await getOutcome(deps, spec.id);
      if (outcome) return outcome;
      if (Date.now() > deadline) throw new Error(`build ${spec.id} did not finish in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await host.stop();
  }
}

/**
 * The signals judge, except that it throws for every batch of one shard's
 * conversations (which conversations a shard holds is read from the build's plan).
 */
export function failingFor(shardId: string, deps: () => Deps): (spec: BuildSpec) => Judge {
  return (spec) => {
    const signals = createSignalsJudge();
    let members: Promise<Set<string>> | undefined;
    return {
      name: 'flaky',
      judge: async (batch) => {
        members ??= readShard(deps(), spec, shardId).then(
          (p) => new Set((p?.samples ?? []).map((x) => conversationOfSampleId(x.sampleId))),
        );
        if ((await members).has(conversationOfSampleId(batch[0]!.sampleId)))
          throw new Error('judge endpoint unavailable (503)');
        return signals.judge(batch);
      },
    };
  };
}

/** A build spec for pure tests: a small session build with overrides. */
export function testSpec(over: Partial<z.input<typeof BuildSpecSchema>> = {}): BuildSpec {
  return BuildSpecSchema.parse({
    id: 'b-test',
    createdAt: '2026-11-25T00:00:00Z',
    createdBy: 'http',
    pipeline: 'session',
    history: { historyTurns: 3, historyTokenBudget: 1500 },
    config: parseBalanceConfig({ total: 10 }),
    judge: { name: 'signals', batchSize: 20 },
    source: { kind: 'blob', path: 'x.jsonl' },
    minJudgedShare: 0.9,
    shardBytes: 1024,
    maxShards: 10,
    ...over,
  });
}
