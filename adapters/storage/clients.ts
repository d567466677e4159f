/**
 * Storage clients from the settings: a connection string locally (Azurite), a
 * managed identity in Azure (no keys in settings).
 */
import {
  DefaultAzureCredential,
  ManagedIdentityCredential,
  type TokenCredential,
} from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import type { StorageSettings } from '../../shared/build/settings';

export interface StorageClients {
  blobs: BlobServiceClient;
  queues: QueueServiceClient;
}

function credentialOf(clientId: string | undefined): TokenCredential {
  return clientId !== undefined
    ? new ManagedIdentityCredential({ clientId })
    : new DefaultAzureCredential();
}

export function storageClients(s: StorageSettings): StorageClients {
  if (s.kind === 'connectionString') {
    return {
      blobs: BlobServiceClient.fromConnectionString(s.connectionString),
      queues: QueueServiceClient.fromConnectionString(s.connectionString),
    };
  }
  const credential = credentialOf(s.clientId);
  return {
    blobs: new BlobServiceClient(s.blobServiceUri, credential),
    queues: new QueueServiceClient(s.queueServiceUri, credential),
  };
}

/** The HTTP status of a storage error, if it is one. */
export function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}
