/**
 * Starts a local Azurite (blob + queue) as a child process on free ports: used by
 * the test setup and the local runner. Flags per ../PLATFORM notes: in-memory,
 * `--skipApiVersionCheck` (the SDKs speak a newer API version than 3.35 knows).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Azurite's well-known development account (public, documented by Microsoft). */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteHandle {
  blobEndpoint: string;
  queueEndpoint: string;
  /** A full connection string for these ports (UseDevelopmentStorage=true means 10000/10001 only). */
  connectionString: string;
  stop(): Promise<void>;
}

export function connectionStringFor(blobEndpoint: string, queueEndpoint: string): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};` +
    `BlobEndpoint=${blobEndpoint};QueueEndpoint=${queueEndpoint};`
  );
}

/**
 * The preload script that ends the child when its stdin closes (azurite-watchdog.cjs):
 * a file of the package, beside this module in source and in dist/ alike (the build
 * emits it through allowJs). Nothing is written at run time, so no other user can
 * plant code for the child to require (a fixed temp-directory path could be).
 */
export function parentWatchdog(): string {
  const path = join(__dirname, 'azurite-watchdog.cjs');
  if (!existsSync(path))
    throw new Error(`the Azurite watchdog ${path} is missing: run \`npm run build\` again`);
  return path;
}

/**
 * Starts Azurite; resolves once both services listen. In memory by default; with
 * `location` it keeps its data in that directory, so a stop and a start on the same
 * ports and directory is a restart that loses nothing (the fault tests use this).
 */
export function startAzurite(
  opts: { blobPort?: number; queuePort?: number; timeoutMs?: number; location?: string } = {},
): Promise<AzuriteHandle> {
  const entry = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '--require',
      parentWatchdog(),
      entry,
      ...(opts.location !== undefined ? ['--location', opts.location] : ['--inMemoryPersistence']),
      '--skipApiVersionCheck',
      '--disableTelemetry',
      '--loose',
      '--blobHost',
      '127.0.0.1',
      '--queueHost',
      '127.0.0.1',
      '--tableHost',
      '127.0.0.1',
      '--blobPort',
      String(opts.blobPort ?? 0),
      '--queuePort',
      String(opts.queuePort ?? 0),
      '--tablePort',
      '0',
    ],
    // stdin is a pipe from us: when we die, even by SIGKILL, it closes and the watchdog exits.
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let blob: string | undefined;
    let queue: string | undefined;
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`Azurite did not start within ${opts.timeoutMs ?? 20_000} ms:\n${out}`));
    }, opts.timeoutMs ?? 20_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      blob ??= /Blob service is successfully listening at (http:\/\/\S+)/.exec(out)?.[1];
      queue ??= /Queue service is successfully listening at (http:\/\/\S+)/.exec(out)?.[1];
      if (blob && queue) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        const blobEndpoint = `${blob}/${DEV_ACCOUNT}`;
        const queueEndpoint = `${queue}/${DEV_ACCOUNT}`;
        resolve({
          blobEndpoint,
          queueEndpoint,
          connectionString: connectionStringFor(blobEndpoint, queueEndpoint),
          stop: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
            }),
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!(blob && queue)) reject(new Error(`Azurite exited (${code}) before listening:\n${out}`));
    });
  });
}
