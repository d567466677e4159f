/**
 * Azure Storage: the blob store a build reads and writes (create-only writes, leases),
 * clients from the settings, queue senders with host.json's encoding, the verdict
 * cache's blobs, and the build's source read from a blob or file.
 */
export * from './blob-store';
export * from './clients';
export * from './host-config';
export * from './judge-cache';
export * from './queue';
export * from './source';
