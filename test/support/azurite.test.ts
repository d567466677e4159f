import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';

describe('the Azurite the test setup starts', () => {
  it('stores and returns a blob through the real SDK', async () => {
    const { connectionString } = inject('azurite');
    const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(
      `t-${randomUUID()}`,
    );
    await container.create();
    const blob = container.getBlockBlobClient('hello.txt');
    await blob.upload('hello', 5);
    expect((await blob.downloadToBuffer()).toString()).toBe('hello');
  });

  it('queues and dequeues a message through the real SDK', async () => {
    const { connectionString } = inject('azurite');
    const queue = QueueServiceClient.fromConnectionString(connectionString).getQueueClient(
      `q-${randomUUID()}`,
    );
    await queue.create();
    await queue.sendMessage('ping');
    const got = await queue.receiveMessages();
    expect(got.receivedMessageItems[0]?.messageText).toBe('ping');
  });
});
