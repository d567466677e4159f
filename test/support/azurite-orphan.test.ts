import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dist = join(__dirname, '..', '..', 'dist', 'adapters', 'azurite.js');

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
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
    expect(await answers(endpoint)).toBe(true);
    parent.kill('SIGKILL');
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      await new Promise((r) => setTimeout(r, 200));
      alive = await answers(endpoint);
    }
    expect(alive).toBe(false);
  });
});
