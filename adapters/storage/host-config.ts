/**
 * The queue semantics of host.json (extensions.queues), read once: the senders use
 * its message encoding and the local runner its batch size, thresholds, dequeue
 * limit and visibility timeout, so the runner behaves as the Functions host does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';

const timeSpan = z
  .string()
  .regex(/^\d{2}:\d{2}:\d{2}$/, 'must be hh:mm:ss')
  .transform((s) => {
    const [h, m, sec] = s.split(':').map(Number) as [number, number, number];
    return (h * 3600 + m * 60 + sec) * 1000;
  });

export const QueueHostConfigSchema = z.object({
  batchSize: z.number().int().min(1).max(32).default(16),
  newBatchThreshold: z.number().int().min(0).optional(),
  maxDequeueCount: z.number().int().min(1).default(5),
  /** Delay before a failed message is visible again, in ms. */
  visibilityTimeout: timeSpan.default(0),
  maxPollingInterval: timeSpan.default(60_000),
  messageEncoding: z.enum(['base64', 'none']).default('base64'),
});
export type QueueHostConfig = z.infer<typeof QueueHostConfigSchema>;

const HostJsonSchema = z.looseObject({
  extensions: z
    .looseObject({ queues: QueueHostConfigSchema.default(QueueHostConfigSchema.parse({})) })
    .optional(),
});

/**
 * host.json of the app: SFT_HOST_JSON if set, else the nearest one above this module
 * (adapters/ from source, dist/adapters/ compiled).
 */
export function hostJsonPath(env: Record<string, string | undefined> = process.env): string {
  if (env.SFT_HOST_JSON) return env.SFT_HOST_JSON;
  for (let dir = dirname(__dirname); ; dir = dirname(dir)) {
    const candidate = join(dir, 'host.json');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`host.json not found above ${__dirname}`);
  }
}

/** Reads extensions.queues of host.json. */
export function readQueueHostConfig(file = hostJsonPath()): QueueHostConfig {
  const parsed = HostJsonSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  return parsed.extensions?.queues ?? QueueHostConfigSchema.parse({});
}

/** Concurrent messages per queue per instance, as the host computes it. */
export function queueConcurrency(c: QueueHostConfig): number {
  return c.batchSize + (c.newBatchThreshold ?? Math.floor(c.batchSize / 2));
}
