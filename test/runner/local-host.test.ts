/**
 * The local queue host keeps the Functions host's queue semantics on real Azurite
 * queues: dequeueCount grows per delivery, maxDequeueCount then the poison queue,
 * per-queue concurrency batchSize + newBatchThreshold, the configured message
 * encoding, and a lease renewed while a handler runs.
 */
import { randomUUID } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { describe, expect, inject, it } from 'vitest';
import { encodeMessage } from '../../adapters/storage/queue';
import { LocalQueueHost } from '../../adapters/local/queue-host';
import { readQueueHostConfig, type QueueHostConfig } from '../../adapters/storage/host-config';

const service = () => QueueServiceClient.fromConnectionString(inject('azurite').connectionString);
const config = (over: Partial<QueueHostConfig> = {}): QueueHostConfig => ({
  ...readQueueHostConfig(),
  visibilityTimeout: 0,
  maxPollingInterval: 100,
  ...over,
});

async function until(check: () => boolean | Promise<boolean>, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the local queue host', () => {
  it('redelivers a failing message with a growing dequeueCount, then moves it to the poison queue', async () => {
    const name = `h-${randomUUID().slice(0, 8)}`;
    const svc = service();
    const queue = svc.getQueueClient(name);
    await queue.create();
    await queue.sendMessage(encodeMessage('{"n":1}', 'none'));
    const seen: number[] = [];
    const host = new LocalQueueHost({
      service: svc,
      config: config({ maxDequeueCount: 3 }),
      leaseSeconds: 5,
      functions: [
        {
          name: 'boom',
          queueName: name,
          handler: (_m, ctx) => {
            seen.push(Number(ctx.triggerMetadata?.dequeueCount));
            throw new Error('always');
          },
        },
      ],
    });
    host.start();
    const poison = svc.getQueueClient(`${name}-poison`);
    await until(
      async () =>
        (await poison.exists()) && (await poison.peekMessages()).peekedMessageItems.length === 1,
    );
    await host.stop();
    expect(seen).toEqual([1, 2, 3]);
    expect((await poison.peekMessages()).peekedMessageItems[0]!.messageText).toBe('{"n":1}');
    expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
  });

  it('moves a message seen more than maxDequeueCount times (its worker died) to poison unhandled', async () => {
    const name = `h-${randomUUID().slice(0, 8)}`;
    const svc = service();
    const queue = svc.getQueueClient(name);
    await queue.create();
    await queue.sendMessage('{"n":2}');
    for (let i = 0; i < 2; i++)
      await queue
        .receiveMessages({ visibilityTimeout: 1 })
        .then(() => new Promise((r) => setTimeout(r, 1_100)));
    let handled = 0;
    const host = new LocalQueueHost({
      service: svc,
      config: config({ maxDequeueCount: 2 }),
      functions: [{ name: 'never', queueName: name, handler: () => void handled++ }],
    });
    host.start();
    const poison = svc.getQueueClient(`${name}-poison`);
    await until(
      async () =>
        (await poison.exists()) && (await poison.peekMessages()).peekedMessageItems.length === 1,
    );
    await host.stop();
    expect(handled).toBe(0);
  });

  it('runs at most batchSize + newBatchThreshold handlers of a queue at once', async () => {
    const name = `h-${randomUUID().slice(0, 8)}`;
    const svc = service();
    const queue = svc.getQueueClient(name);
    await queue.create();
    for (let i = 0; i < 12; i++) await queue.sendMessage(JSON.stringify({ i }));
    let running = 0;
    let peak = 0;
    let done = 0;
    const host = new LocalQueueHost({
      service: svc,
      config: config({ batchSize: 2, newBatchThreshold: 1 }),
      functions: [
        {
          name: 'slow',
          queueName: name,
          handler: async () => {
            peak = Math.max(peak, ++running);
            await new Promise((r) => setTimeout(r, 150));
            running--;
            done++;
          },
        },
      ],
    });
    host.start();
    await until(() => done === 12);
    await host.stop();
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });

  it('decodes base64 messages when host.json says so and hands JSON over parsed', async () => {
    const name = `h-${randomUUID().slice(0, 8)}`;
    const svc = service();
    const queue = svc.getQueueClient(name);
    await queue.create();
    await queue.sendMessage(encodeMessage('{"hello":"wörld"}', 'base64'));
    const got: unknown[] = [];
    const host = new LocalQueueHost({
      service: svc,
      config: config({ messageEncoding: 'base64' }),
      functions: [{ name: 'b64', queueName: name, handler: (m) => void got.push(m) }],
    });
    host.start();
    await until(() => got.length === 1);
    await host.stop();
    expect(got[0]).toEqual({ hello: 'wörld' });
  });

  it('renews the lease of a long handler, so the message is not delivered twice', async () => {
    const name = `h-${randomUUID().slice(0, 8)}`;
    const svc = service();
    const queue = svc.getQueueClient(name);
    await queue.create();
    await queue.sendMessage('{"slow":true}');
    let deliveries = 0;
    let finished = false;
    const host = new LocalQueueHost({
      service: svc,
      config: config(),
      leaseSeconds: 1,
      functions: [
        {
          name: 'long',
          queueName: name,
          handler: async () => {
            deliveries++;
            await new Promise((r) => setTimeout(r, 2_600));
            finished = true;
          },
        },
      ],
    });
    host.start();
    await until(() => finished);
    await new Promise((r) => setTimeout(r, 300));
    await host.stop();
    expect(deliveries).toBe(1);
    expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
  });
});
