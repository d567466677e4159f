/**
 * Where outputs go (issue 13, items 5, 6, 7 and 10): an output never replaces an input;
 * an output directory holds one build's files, swapped in whole (a kill mid-write leaves
 * the previous set complete); an unwritable output or a refused storage request fails in
 * one line, before any work that could have been spared.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { main } from '../../cli/main';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'sft-balancer.js');
const dir = mkdtempSync(join(tmpdir(), 'sftb-outputs-'));
const annotated = join(dir, 'annotated.jsonl');
const telemetry = join(dir, 'telemetry.jsonl');
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out, err };
}

/** The CLI's exit code and what it printed on stderr. */
async function cli(...argv: string[]): Promise<{ code: number; stderr: string }> {
  const { err } = capture();
  try {
    const code = await main(argv);
    return { code, stderr: err.join('') };
  } finally {
    vi.restoreAllMocks();
  }
}

/** Every file of a directory (hidden ones too) with its sha256. */
function snapshot(d: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(d)
      .sort()
      .map((n) => [n, sha(join(d, n))]),
  );
}

/** Leftovers of a build beside `d`: staging or moved-aside directories. */
const leftovers = (d: string) =>
  readdirSync(join(d, '..')).filter((n) => n.startsWith(`.${d.split('/').pop()}.`));

/** The manifest lists exactly the files in the directory (the marker aside). */
function expectManifestListsDirectory(d: string): void {
  const manifest = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as {
    outputs: Record<string, { sha256: string }>;
  };
  const files = readdirSync(d).filter(
    (n) =>
      !['manifest.json', 'report.html', 'status.json', '.sft-balancer-output.json'].includes(n),
  );
  expect(Object.keys(manifest.outputs).sort()).toEqual(files.sort());
  for (const [name, digest] of Object.entries(manifest.outputs))
    expect(digest.sha256, name).toBe(sha(join(d, name)));
}

afterEach(() => vi.restoreAllMocks());

beforeAll(async () => {
  expect(
    (await cli('generate', '--rows', '6000', '--annotated', '--out', annotated, '-q')).code,
  ).toBe(0);
  expect((await cli('generate', '--conversations', '400', '--out', telemetry, '-q')).code).toBe(0);
});

describe('an output never replaces an input', () => {
  it('balance refuses an input inside its output directory (also via ./, .. and a symlink), before any work', async () => {
    const out = join(dir, 'refuse-balance');
    expect(
      (await cli('balance', '--input', annotated, '--out', out, '--total', '500', '-q')).code,
    ).toBe(0);
    writeFileSync(join(out, 'train.jsonl'), readFileSync(annotated));
    const before = snapshot(out);
    const link = join(dir, 'refuse-balance-link');
    symlinkSync(out, link);
    for (const [input, o] of [
      [join(out, 'train.jsonl'), out],
      [`${out}/../refuse-balance/./train.jsonl`, `${out}/`],
      [join(link, 'train.jsonl'), out],
      [join(out, 'train.jsonl'), link],
    ] as const) {
      const r = await cli('balance', '--input', input, '--out', o, '--total', '500', '-q');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--out ${o} would replace --input ${input}`);
      expect(snapshot(out)).toEqual(before);
    }
  });

  it('run --in-process refuses an input (or --replay file) inside its output directory', async () => {
    const out = join(dir, 'refuse-run');
    mkdirSync(out);
    writeFileSync(join(out, 'train.jsonl'), readFileSync(telemetry));
    writeFileSync(join(out, 'annotated.jsonl'), readFileSync(annotated));
    const before = snapshot(out);
    let r = await cli(
      'run',
      '--in-process',
      '--input',
      join(out, 'train.jsonl'),
      '--out',
      out,
      '-q',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--out ${out} would replace --input ${join(out, 'train.jsonl')}`);
    const replay = join(out, 'annotated.jsonl');
    r = await cli(
      'run',
      '--in-process',
      '--input',
      telemetry,
      '--replay',
      replay,
      '--out',
      out,
      '-q',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`would replace --replay ${replay}`);
    expect(snapshot(out)).toEqual(before);
  });

  it('run on the runner refuses the same before starting anything (no storage is contacted)', async () => {
    const out = join(dir, 'refuse-runner');
    mkdirSync(out);
    writeFileSync(join(out, 'train.jsonl'), readFileSync(telemetry));
    const r = await cli(
      'run',
      '--input',
      join(out, 'train.jsonl'),
      '--out',
      out,
      '--storage',
      'UseDevelopmentStorage=true;BlobEndpoint=http://127.0.0.1:1/x;QueueEndpoint=http://127.0.0.1:1/x',
      '-q',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--out ${out} would replace --input ${join(out, 'train.jsonl')}`);
    expect(sha(join(out, 'train.jsonl'))).toBe(sha(telemetry));
  });

  it('annotate refuses to write its output (or its .judge.json / .unlabeled.jsonl) over its input', async () => {
    const input = join(dir, 'annotate-self.jsonl');
    writeFileSync(input, readFileSync(telemetry));
    const rel = join(dir, 'sub', '..', 'annotate-self.jsonl');
    for (const out of [input, rel]) {
      const r = await cli('annotate', '--input', input, '--out', out, '-q');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--out ${out} would overwrite --input ${input}`);
    }
    const side = join(dir, 'annotate-side.judge.json');
    writeFileSync(side, readFileSync(telemetry));
    const r = await cli(
      'annotate',
      '--input',
      side,
      '--out',
      join(dir, 'annotate-side.jsonl'),
      '-q',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`would overwrite --input ${side}`);
    expect(sha(input)).toBe(sha(telemetry));
    expect(sha(side)).toBe(sha(telemetry));
    expect(existsSync(join(dir, 'sub'))).toBe(false);
  });
});

describe('an output directory holds one build', () => {
  it('a second balance without --validation leaves no validation.jsonl of the first', async () => {
    const out = join(dir, 'stale-balance');
    const args = ['balance', '--input', annotated, '--out', out, '--total', '800', '-q'];
    expect((await cli(...args, '--validation', '0.2')).code).toBe(0);
    expect(existsSync(join(out, 'validation.jsonl'))).toBe(true);
    expect((await cli(...args)).code).toBe(0);
    expect(existsSync(join(out, 'validation.jsonl'))).toBe(false);
    expectManifestListsDirectory(out);
    expect(leftovers(out)).toEqual([]);
  });

  it('a second run --in-process without --validation leaves no validation.jsonl of the first', async () => {
    const out = join(dir, 'stale-run');
    const args = [
      'run',
      '--in-process',
      '--input',
      telemetry,
      '--out',
      out,
      '--total',
      '100',
      '-q',
    ];
    expect((await cli(...args, '--validation', '0.2')).code).toBe(0);
    expect(existsSync(join(out, 'validation.jsonl'))).toBe(true);
    expect((await cli(...args)).code).toBe(0);
    expect(existsSync(join(out, 'validation.jsonl'))).toBe(false);
    expectManifestListsDirectory(out);
  });

  it('a second run on the runner without --validation leaves no validation.jsonl of the first', async () => {
    const tag = randomUUID().slice(0, 8);
    vi.stubEnv('SFT_CONTAINER', `o-${tag}`);
    vi.stubEnv('SFT_PLAN_QUEUE', `op-${tag}`);
    vi.stubEnv('SFT_SHARD_QUEUE', `os-${tag}`);
    vi.stubEnv('SFT_FANIN_QUEUE', `of-${tag}`);
    const out = join(dir, 'stale-runner');
    const args = ['run', '--input', telemetry, '--out', out, '--total', '100', '-q'];
    const storage = ['--storage', inject('azurite').connectionString];
    try {
      expect((await cli(...args, ...storage, '--validation', '0.2')).code).toBe(0);
      expect(existsSync(join(out, 'validation.jsonl'))).toBe(true);
      expect((await cli(...args, ...storage)).code).toBe(0);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(existsSync(join(out, 'validation.jsonl'))).toBe(false);
    expect(existsSync(join(out, 'status.json'))).toBe(true);
    expectManifestListsDirectory(out);
  }, 120_000);

  it('a directory holding files sft-balancer did not write is refused, and they are kept', async () => {
    const out = join(dir, 'foreign');
    mkdirSync(out);
    writeFileSync(join(out, 'notes.txt'), 'mine\n');
    writeFileSync(join(out, 'train.jsonl'), 'mine too\n');
    const r = await cli('balance', '--input', annotated, '--out', out, '--total', '500', '-q');
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringContaining(`--out ${out} holds files sft-balancer did not write (notes.txt)`),
    ]);
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('mine\n');
    expect(readFileSync(join(out, 'train.jsonl'), 'utf8')).toBe('mine too\n');
    expect(leftovers(out)).toEqual([]);
  });
});

describe('the output set is swapped in whole', () => {
  beforeAll(() => {
    // The kill tests run the compiled CLI.
    expect(existsSync(join(ROOT, 'dist', 'cli', 'main.js'))).toBe(true);
  });

  /** The compiled CLI in a child, killed by SIGKILL right after it writes `file`. */
  const killedAfter = (file: string, args: string[]) =>
    spawnSync(process.execPath, [BIN, ...args], {
      env: { ...process.env, SFT_FAILPOINT: `wrote:${file}` },
      encoding: 'utf8',
    });

  it.each([
    ['balance', 'train.jsonl'],
    ['balance', 'manifest.json'],
    ['run --in-process', 'train.jsonl'],
  ])(
    '%s killed right after writing %s: the previous set stays complete',
    async (cmd, file) => {
      const out = join(dir, `kill-${cmd.replace(/\W+/g, '-')}-${file}`);
      const args =
        cmd === 'balance'
          ? ['balance', '--input', annotated, '--out', out, '--total', '800', '-q']
          : ['run', '--in-process', '--input', telemetry, '--out', out, '--total', '100', '-q'];
      expect((await cli(...args, '--validation', '0.2')).code).toBe(0);
      const before = snapshot(out);
      const killed = killedAfter(file, [...args, '--total', '600', '--seed', '7']);
      expect(killed.signal).toBe('SIGKILL');
      expect(killed.stderr).toContain(`failpoint wrote:${file}`);
      expect(snapshot(out)).toEqual(before);
      expectManifestListsDirectory(out);
      // The killed run's staging directory is beside the output; the next run removes it.
      expect(leftovers(out)).toHaveLength(1);
      expect((await cli(...args, '--total', '600')).code).toBe(0);
      expect(leftovers(out)).toEqual([]);
      expect(existsSync(join(out, 'validation.jsonl'))).toBe(false);
      expectManifestListsDirectory(out);
    },
    60_000,
  );

  it('a failed build (no valid rows) leaves the previous set as it was and nothing beside it', async () => {
    const out = join(dir, 'failed-build');
    const args = ['run', '--in-process', '--out', out, '--total', '100', '-q'];
    expect((await cli(...args, '--input', telemetry)).code).toBe(0);
    const before = snapshot(out);
    const junk = join(dir, 'junk.jsonl');
    writeFileSync(junk, 'not json\n{"also": "not a turn"}\n');
    const r = await cli(...args, '--input', junk);
    expect(r.code).toBe(1);
    expect(snapshot(out)).toEqual(before);
    expect(leftovers(out)).toEqual([]);
  });
});

describe('failures in one line', () => {
  const oneLine = (stderr: string) => {
    const lines = stderr.trim().split('\n');
    expect(lines, stderr).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /);
    return lines[0]!;
  };

  it('an output directory under a regular file (ENOTDIR/EEXIST, for root too)', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    for (const argv of [
      ['balance', '--input', annotated, '--out', join(file, 'out')],
      ['run', '--in-process', '--input', telemetry, '--out', join(file, 'out')],
      ['generate', '--rows', '10', '--out', join(file, 'g.jsonl')],
    ]) {
      const r = await cli(...argv, '-q');
      expect(r.code).toBe(1);
      expect(oneLine(r.stderr)).toContain(
        `cannot create --out ${join(file, argv[0] === 'generate' ? 'g.jsonl' : 'out')}`,
      );
    }
  });

  it('an output directory that is an existing file, or in a directory that takes no files (/proc)', async () => {
    const file = join(dir, 'b-file');
    writeFileSync(file, 'x');
    let r = await cli('balance', '--input', annotated, '--out', file, '-q');
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toContain(`--out ${file} is an existing file, not a directory`);
    r = await cli('balance', '--input', annotated, '--out', '/proc/sftb-out', '-q');
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toContain(
      'cannot write --out /proc/sftb-out: /proc takes no new files',
    );
  });

  it('annotate fails on an unwritable output before judging anything', async () => {
    let requests = 0;
    const server = createServer((req, res) => {
      requests++;
      res.writeHead(500).end('{}');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    vi.stubEnv('JUDGE_API_KEY', 'test-key');
    try {
      const file = join(dir, 'c-file');
      writeFileSync(file, 'x');
      for (const out of [join(file, 'annotated.jsonl'), '/proc/sftb-annotated.jsonl', dir]) {
        const r = await cli(
          'annotate',
          '--input',
          telemetry,
          '--out',
          out,
          '--judge',
          'openai',
          '--model',
          'm',
          '--base-url',
          `http://127.0.0.1:${port}/v1`,
          '--max-retries',
          '0',
          '--no-cache',
          '-q',
        );
        expect(r.code).toBe(1);
        expect(oneLine(r.stderr)).toContain(`--out ${out}`);
      }
    } finally {
      vi.unstubAllEnvs();
      server.close();
    }
    expect(requests).toBe(0);
  });

  it('a wrong storage key: a 403 in one line, exit 1', async () => {
    const conn = inject('azurite')
      .connectionString.split(';')
      .map((kv) =>
        kv.startsWith('AccountKey=') ? `AccountKey=${Buffer.from('wrong').toString('base64')}` : kv,
      )
      .join(';');
    const r = await cli(
      'run',
      '--input',
      telemetry,
      '--out',
      join(dir, 'bad-key'),
      '--storage',
      conn,
      '-q',
    );
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(
      /storage refused the request .*403.*check the account name and key/,
    );
    expect(r.stderr).not.toContain(Buffer.from('wrong').toString('base64'));
    expect(existsSync(join(dir, 'bad-key'))).toBe(false);
  }, 60_000);

  it('with SFT_DEBUG the stack follows the line', async () => {
    vi.stubEnv('SFT_DEBUG', '1');
    try {
      const r = await cli('balance', '--input', annotated, '--out', '/proc/sftb-out', '-q');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\n\s+at /);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('the working directory is never swapped out', () => {
  it('balance --out . is refused in one line, and the directory is kept', () => {
    const cwd = join(dir, 'cwd');
    mkdirSync(cwd);
    const r = spawnSync(
      process.execPath,
      [BIN, 'balance', '--input', annotated, '--out', '.', '--total', '500', '-q'],
      { cwd, encoding: 'utf8' },
    );
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(
      'sft-balancer balance: --out . is (or holds) the working directory; choose a subdirectory',
    );
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('leftovers of killed runs', () => {
  it("removes a dead run's staging directory on this host, never a live one's or another host's", async () => {
    const out = join(dir, 'sweep');
    const host = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const names = {
      dead: `.sweep.tmp-${host}-${dead}-00aa`,
      live: `.sweep.tmp-${host}-${process.pid}-00bb`,
      otherHost: `.sweep.tmp-0badc0de-${dead}-00cc`,
    };
    for (const n of Object.values(names)) mkdirSync(join(dir, n));
    expect(
      (await cli('balance', '--input', annotated, '--out', out, '--total', '500', '-q')).code,
    ).toBe(0);
    expect(leftovers(out).sort()).toEqual([names.otherHost, names.live].sort());
  });
});
