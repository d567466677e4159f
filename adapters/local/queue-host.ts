/**
 * A local stand-in for the Functions host's queue trigger, for machines without
 * Core Tools: it serves registered queue handlers from real Storage queues
 * (Azurite or Azure) with the host's semantics, read from host.json:
 * - up to `batchSize` messages fetched at once, a new fetch once the in-flight
 *   count falls to `newBatchThreshold` (concurrency batchSize + newBatchThreshold);
 * - a received message stays invisible while its handler runs (renewed lease);
 * - success deletes it; failure makes it visible again after `visibilityTimeout`;
 * - a failure on delivery `maxDequeueCount`, or a message seen more often than
 *   that (its worker died), moves it to `<queue>-poison`;
 * - empty polls back off up to `maxPollingInterval`;
 * - the message is decoded per `messageEncoding` and handed over parsed if JSON.
 */
import { randomUUID } from 'node:crypto';
import { InvocationContext, type StorageQueueHandler } from '@azure/functions';
import type { DequeuedMessageItem, QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { poisonQueueOf } from '../../shared/build/settings';
import { decodeMessage } from '../storage/queue';
import { queueConcurrency, type QueueHostConfig } from '../storage/host-config';

export interface HostedQueueFunction {
  name: string;
  queueName: string;
  handler: StorageQueueHandler;
}

export interface HostEvent {
  fn: string;
  kind: 'succeeded' | 'failed' | 'poisoned';
  dequeueCount: number;
  ms: number;
  error?: string;
}

export interface LocalHostOptions {
  service: QueueServiceClient;
  functions: readonly HostedQueueFunction[];
  config: QueueHostConfig;
  /** How long a received message stays invisible before its lease is renewed (s). */
  leaseSeconds?: number;
  /** Log lines of handlers and of the host (default: none). */
  log?: (level: string, fn: string, text: string) => void;
  onEvent?: (e: HostEvent) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class LocalQueueHost {
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly leaseSeconds: number;

  constructor(private readonly opts: LocalHostOptions) {
    this.leaseSeconds = opts.leaseSeconds ?? 30;
  }

  /** Messages being handled right now. */
  get busy(): number {
    return this.inFlight.size;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const fn of this.opts.functions) this.loops.push(this.poll(fn));
  }

  /** Stops fetching and waits for the handlers in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.allSettled([...this.inFlight]);
  }

  private log(level: string, fn: string, text: string): void {
    this.opts.log?.(level, fn, text);
  }

  private async poll(fn: HostedQueueFunction): Promise<void> {
    const cfg = this.opts.config;
    const queue = this.opts.service.getQueueClient(fn.queueName);
    const poison = this.opts.service.getQueueClient(poisonQueueOf(fn.queueName));
    await queue.createIfNotExists();
    const threshold = queueConcurrency(cfg) - cfg.batchSize;
    const mine = new Set<Promise<void>>();
    let backoff = 50;
    while (this.running) {
      if (mine.size > threshold) {
        await Promise.race(mine);
        continue;
      }
      let items: DequeuedMessageItem[];
      try {
        const res = await queue.receiveMessages({
          numberOfMessages: cfg.batchSize,
          visibilityTimeout: this.leaseSeconds,
        });
        items = res.receivedMessageItems;
      } catch (err) {
        this.log('warning', fn.name, `receive failed: ${(err as Error).message}`);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, cfg.maxPollingInterval);
        continue;
      }
      if (items.length === 0) {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, cfg.maxPollingInterval);
        continue;
      }
      backoff = 50;
      for (const item of items) {
        const job = this.handle(fn, queue, poison, item).finally(() => {
          mine.delete(job);
          this.inFlight.delete(job);
        });
        mine.add(job);
        this.inFlight.add(job);
      }
    }
    await Promise.allSettled([...mine]);
  }

  private async toPoison(
    queue: QueueClient,
    poison: QueueClient,
    item: DequeuedMessageItem,
    popReceipt: string,
  ) {
    await poison.createIfNotExists();
    await poison.sendMessage(item.messageText, { messageTimeToLive: -1 });
    await queue.deleteMessage(item.messageId, popReceipt);
  }

  private async handle(
    fn: HostedQueueFunction,
    queue: QueueClient,
    poison: QueueClient,
    item: DequeuedMessageItem,
  ): Promise<void> {
    const cfg = this.opts.config;
    const started = Date.now();
    let popReceipt = item.popReceipt;
    const emit = (kind: HostEvent['kind'], error?: string) =>
      this.opts.onEvent?.({
        fn: fn.name,
        kind,
        dequeueCount: item.dequeueCount,
        ms: Date.now() - started,
        ...(error !== undefined ? { error } : {}),
      });
    try {
      if (item.dequeueCount > cfg.maxDequeueCount) {
        // Seen more often than allowed: an earlier worker died holding it.
        await this.toPoison(queue, poison, item, popReceipt);
        this.log(
          'warning',
          fn.name,
          `message ${item.messageId} moved to the poison queue (dequeueCount ${item.dequeueCount})`,
        );
        emit('poisoned');
        return;
      }
      const text = decodeMessage(item.messageText, cfg.messageEncoding);
      let payload: unknown = text;
      try {
        payload = JSON.parse(text);
      } catch {
        /* a plain-text message is handed over as a string, as the host does */
      }
      const context = new InvocationContext({
        invocationId: randomUUID(),
        functionName: fn.name,
        triggerMetadata: {
          id: item.messageId,
          dequeueCount: item.dequeueCount,
          insertionTime: item.insertedOn.toISOString(),
          expirationTime: item.expiresOn.toISOString(),
          nextVisibleTime: item.nextVisibleOn.toISOString(),
          popReceipt: item.popReceipt,
        },
        logHandler: (level, ...args) => this.log(level, fn.name, args.map(String).join(' ')),
      });
      let renewing = Promise.resolve();
      const timer = setInterval(
        () => {
          renewing = queue
            .updateMessage(item.messageId, popReceipt, undefined, this.leaseSeconds)
            .then((r) => {
              if (r.popReceipt) popReceipt = r.popReceipt;
            })
            .catch((err: unknown) =>
              this.log('warning', fn.name, `lease renewal failed: ${(err as Error).message}`),
            );
        },
        (this.leaseSeconds * 1000) / 2,
      );
      let failure: unknown;
      try {
        await fn.handler(payload, context);
      } catch (err) {
        failure = err;
      } finally {
        clearInterval(timer);
        await renewing;
      }
      if (failure === undefined) {
        await queue.deleteMessage(item.messageId, popReceipt);
        emit('succeeded');
        return;
      }
      const why =
        failure instanceof Error ? `${failure.name}: ${failure.message}` : JSON.stringify(failure);
      if (item.dequeueCount >= cfg.maxDequeueCount) {
        await this.toPoison(queue, poison, item, popReceipt);
        this.log(
          'error',
          fn.name,
          `delivery ${item.dequeueCount} failed (${why}); moved to the poison queue`,
        );
        emit('poisoned', why);
      } else {
        await queue.updateMessage(
          item.messageId,
          popReceipt,
          undefined,
          Math.ceil(cfg.visibilityTimeout / 1000),
        );
        this.log('warning', fn.name, `delivery ${item.dequeueCount} failed (${why}); will retry`);
        emit('failed', why);
      }
    } catch (err) {
      // Storage trouble while settling: the message reappears when its lease lapses.
      this.log(
        'warning',
        fn.name,
        `could not settle message ${item.messageId}: ${(err as Error).message}`,
      );
    }
  }
}
