/**
 * vitest global setup: one real Azurite for the whole run, started here (CI needs
 * nothing installed beyond npm ci). Tests read its connection string with
 * `inject('azurite')` and isolate themselves with unique container/queue names.
 */
import type { TestProject } from 'vitest/node';
import { startAzurite, type AzuriteHandle } from '../../adapters/local/azurite';

/**
 * The integration and e2e projects each run this setup; in one run they share one
 * Azurite (the setups run in vitest's main process), stopped when the last one ends.
 */
const shared = globalThis as { __sftbAzurite?: { handle: Promise<AzuriteHandle>; users: number } };

export async function setup(project: TestProject): Promise<void> {
  const entry = (shared.__sftbAzurite ??= { handle: startAzurite(), users: 0 });
  entry.users++;
  const handle = await entry.handle;
  project.provide('azurite', {
    connectionString: handle.connectionString,
    blobEndpoint: handle.blobEndpoint,
    queueEndpoint: handle.queueEndpoint,
  });
}

export async function teardown(): Promise<void> {
  const entry = shared.__sftbAzurite;
  if (!entry || --entry.users > 0) return;
  shared.__sftbAzurite = undefined;
  await (await entry.handle).stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    azurite: { connectionString: string; blobEndpoint: string; queueEndpoint: string };
  }
}
