/**
 * vitest global setup: one real Azurite for the whole run, started here (CI needs
 * nothing installed beyond npm ci). Tests read its connection string with
 * `inject('azurite')` and isolate themselves with unique container/queue names.
 */
import type { TestProject } from 'vitest/node';
import { startAzurite, type AzuriteHandle } from '../../adapters/local/azurite';

let handle: AzuriteHandle | undefined;

export async function setup(project: TestProject): Promise<void> {
  handle = await startAzurite();
  project.provide('azurite', {
    connectionString: handle.connectionString,
    blobEndpoint: handle.blobEndpoint,
    queueEndpoint: handle.queueEndpoint,
  });
}

export async function teardown(): Promise<void> {
  await handle?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    azurite: { connectionString: string; blobEndpoint: string; queueEndpoint: string };
  }
}
