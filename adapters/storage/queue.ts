/**
 * Sending queue messages. The Functions host decodes a queue message as base64 by
 * default and `@azure/storage-queue` sends text verbatim: the encoding is explicit
 * here, read from host.json (extensions.queues.messageEncoding), so the host, the
 * local runner and the senders agree.
 */
import type { QueueClient, QueueServiceClient } from '@azure/storage-queue';

export type MessageEncoding = 'none' | 'base64';

export interface QueueSender {
  /** Sends a JSON message; `delaySeconds` keeps it invisible that long. */
  send(queue: string, message: unknown, opts?: { delaySeconds?: number }): Promise<void>;
}

export const encodeMessage = (text: string, encoding: MessageEncoding) =>
  encoding === 'base64' ? Buffer.from(text, 'utf8').toString('base64') : text;

export const decodeMessage = (text: string, encoding: MessageEncoding) =>
  encoding === 'base64' ? Buffer.from(text, 'base64').toString('utf8') : text;

/** A sender that creates each queue on first use. */
export function createQueueSender(
  service: QueueServiceClient,
  encoding: MessageEncoding,
): QueueSender & { client(queue: string): Promise<QueueClient> } {
  const ready = new Map<string, Promise<QueueClient>>();
  const client = (queue: string) => {
    let p = ready.get(queue);
    if (!p) {
      const q = service.getQueueClient(queue);
      p = q.createIfNotExists().then(() => q);
      p.catch(() => ready.delete(queue));
      ready.set(queue, p);
    }
    return p;
  };
  return {
    client,
    async send(queue, message, opts = {}) {
      const q = await client(queue);
      const text = encodeMessage(JSON.stringify(message), encoding);
      await q.sendMessage(text, {
        ...(opts.delaySeconds ? { visibilityTimeout: opts.delaySeconds } : {}),
        messageTimeToLive: -1,
      });
    },
  };
}
