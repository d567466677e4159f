/**
 * Issue 13 item 9: Azurite's preload (the parent watchdog) used to be written to the
 * fixed path $TMPDIR/sft-balancer-parent-watchdog.cjs and then required by the child;
 * anyone who could write that directory could swap the file (or plant a symlink) between
 * the write and the require and run code as the user of `run`. Here an "attacker"
 * process keeps planting code at that path while Azurite starts: the planted code must
 * never run. TMPDIR points at a private directory so nothing is planted in the real one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parentWatchdog, startAzurite } from '../../adapters/local/azurite';

const root = resolve(__dirname, '..', '..');

/** Keeps replacing `target` (atomically, by rename) with a file or a symlink that writes `marker` when required. */
function attacker(
  dir: string,
  target: string,
  marker: string,
  how: 'file' | 'symlink',
): ChildProcess {
  const evil = `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'planted code ran in ' + process.pid);\n`;
  const script = `
    const fs = require('node:fs');
    const path = require('node:path');
    const dir = ${JSON.stringify(dir)};
    const target = ${JSON.stringify(target)};
    const evil = ${JSON.stringify(evil)};
    const payload = path.join(dir, 'payload.cjs');
    let n = 0;
    const plant = () => {
      const tmp = path.join(dir, 'plant-' + (n++ % 2));
      try { fs.rmSync(tmp, { force: true }); } catch {}
      if (${JSON.stringify(how)} === 'file') {
        fs.writeFileSync(tmp, evil);
      } else {
        fs.writeFileSync(payload, evil); // the victim writing through the link overwrites it
        fs.symlinkSync(payload, tmp);
      }
      fs.renameSync(tmp, target);
    };
    plant();
    process.stdout.write('ready\\n');
    setInterval(plant, 1);
  `;
  return spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

describe('the Azurite preload (parent watchdog)', () => {
  const savedTmp = process.env.TMPDIR;
  let dir = '';
  let bad: ChildProcess | undefined;
  afterEach(() => {
    bad?.kill('SIGKILL');
    bad = undefined;
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is a file of the package (never a temp-directory path), also in dist/', () => {
    const path = parentWatchdog();
    expect(path.startsWith(join(root, 'adapters') + '/')).toBe(true);
    // Never the old predictable temp path (a clone may itself live under the temp directory).
    expect(path).not.toBe(join(tmpdir(), 'sft-balancer-parent-watchdog.cjs'));
    expect(readFileSync(path, 'utf8')).toContain("process.stdin.on('end'");
    // The CLI and the orphan test use the build: it must carry the same file.
    expect(existsSync(join(root, 'dist', 'adapters', 'local', 'azurite-watchdog.cjs'))).toBe(true);
  });

  for (const how of ['file', 'symlink'] as const) {
    it(`never runs code planted at the old temp path (${how})`, async () => {
      dir = mkdtempSync(join(tmpdir(), 'sft-watchdog-'));
      process.env.TMPDIR = dir; // what os.tmpdir() returns in this process from now on
      expect(tmpdir()).toBe(dir);
      const marker = join(dir, 'PWNED');
      const target = join(dir, 'sft-balancer-parent-watchdog.cjs');
      bad = attacker(dir, target, marker, how);
      await new Promise<void>((ok, fail) => {
        bad!.stdout!.once('data', () => ok());
        bad!.once('exit', (c) => fail(new Error(`attacker exited (${c})`)));
      });
      // Several starts: each one was a chance for the old write-then-require race.
      for (let i = 0; i < 3; i++) {
        const azurite = await startAzurite();
        await azurite.stop();
      }
      bad.kill('SIGKILL');
      expect(existsSync(target)).toBe(true); // the attacker did plant it all along
      expect(existsSync(marker) ? readFileSync(marker, 'utf8') : 'not run').toBe('not run');
    }, 60_000);
  }
});
