import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dist = join(__dirname, '..', '..', 'dist', 'adapters', 'local', 'azurite.js');

/**
 * Whether something listens at the endpoint's port: a bare TCP connect, no HTTP request
 * (a request would make Azurite log, and a write to its dead parent's pipe ends it anyway).
 */
function listening(endpoint: string): Promise<boolean> {
  const { hostname, port } = new URL(endpoint);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('the embedded Azurite', () => {
  it('ends when the process that started it is SIGKILLed', async () => {
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `require(${JSON.stringify(dist)}).startAzurite().then((h) => console.log(h.blobEndpoint))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const endpoint = await new Promise<string>((resolve, reject) => {
      parent.stdout.on('data', (b: Buffer) => resolve(b.toString().trim()));
      parent.once('exit', () => reject(new Error('parent exited before Azurite started')));
    });
    expect(await listening(endpoint)).toBe(true);
    parent.kill('SIGKILL');
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      await new Promise((r) => setTimeout(r, 200));
      alive = await listening(endpoint);
    }
    expect(alive).toBe(false);
  });
});
