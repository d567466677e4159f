/**
 * The probe as the last step of every build (issue 17): on by default in `balance`, `run
 * --in-process` and the Functions fan-in; turned off by --no-probe, SFT_PROBE=false or the
 * request's `probe: false`; a minimum AUC fails the build with its files kept; bad input
 * advises and the build succeeds; `evaluate` into a dataset directory keeps it replaceable.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main';
import { buildPaths } from '../../shared/build/spec';
import { loadSettings } from '../../shared/build/settings';
import { annotatedRows } from '../support/rows';
import { runBuild, specFor, telemetryFile, testDeps } from '../functions/harness';

const root = mkdtempSync(join(tmpdir(), 'sftb-probe-build-'));
const annotated = join(root, 'annotated.jsonl');
const oneClass = join(root, 'one-class.jsonl');
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a manifest read back, checked field by field
type Json = Record<string, any>;
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Json;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out, err };
}
const balance = (out: string, ...more: string[]) =>
  main(['balance', '--input', annotated, '--out', out, '--total', '400', '-q', ...more]);

beforeAll(() => {
  const rows = annotatedRows({ conversations: 600, seed: 7 });
  writeFileSync(annotated, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  writeFileSync(oneClass, rows.map((r) => JSON.stringify({ ...r, label: 1 })).join('\n') + '\n');
});
afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.SFT_PROBE;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the probe at the end of a file build', () => {
  it('is on by default: probe.json and label-review.jsonl in the set, every figure in manifest.probe', async () => {
    const out = join(root, 'default');
    const c = capture();
    expect(await balance(out)).toBe(0);
    const m = json(join(out, 'manifest.json'));
    const probe = json(join(out, 'probe.json'));
    expect(m.probe.status).toBe('ok');
    const { files, gate, ...figures } = m.probe;
    expect(figures).toEqual(probe);
    expect(files).toEqual({ result: 'probe.json', review: 'label-review.jsonl' });
    expect(gate).toEqual({ minAuc: null, passed: null, mode: 'advise' });
    expect(m.probe.seed).toBe(42);
    expect(m.probe.settings.text.wordNgrams).toEqual([1, 2]);
    expect(m.outputs['probe.json'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.outputs['label-review.jsonl'].lines).toBe(
      readFileSync(join(out, 'label-review.jsonl'), 'utf8').split('\n').filter(Boolean).length,
    );
    expect(json(join(out, '.sft-balancer-output.json')).files).toEqual(
      expect.arrayContaining(['probe.json', 'label-review.jsonl']),
    );
    expect(c.out.join('')).toMatch(/\n {2}probe: .*\n {4}cv: text AUC /);
  });

  it('--no-probe and SFT_PROBE=false: no probe files, manifest.probe says it is off', async () => {
    for (const [out, flags] of [
      [join(root, 'off-flag'), ['--no-probe']],
      [join(root, 'off-env'), []],
    ] as const) {
      if (flags.length === 0) process.env.SFT_PROBE = 'false';
      capture();
      expect(await balance(out, ...flags)).toBe(0);
      expect(existsSync(join(out, 'probe.json'))).toBe(false);
      expect(existsSync(join(out, 'label-review.jsonl'))).toBe(false);
      const m = json(join(out, 'manifest.json'));
      expect(m.probe).toMatchObject({ status: 'off' });
      expect(m.outputs['probe.json']).toBeUndefined();
    }
  });

  it('--probe-min-auc above the AUC: exit 1, the set written with the failed gate; a bad value is a usage error', async () => {
    const out = join(root, 'gate');
    const c = capture();
    expect(await balance(out, '--probe-min-auc', '0.999')).toBe(1);
    expect(c.err.join('')).toMatch(
      /build failed: probe: text AUC [\d.]+ is below the minimum 0\.999/,
    );
    const m = json(join(out, 'manifest.json'));
    expect(m.probe.gate).toEqual({ minAuc: 0.999, passed: false, mode: 'fail below minAuc' });
    expect(existsSync(join(out, 'probe.json'))).toBe(true);
    expect(await balance(join(root, 'gate-low'), '--probe-min-auc', '0.5')).toBe(0);
    expect(await balance(join(root, 'bad'), '--probe-min-auc', '2')).toBe(2);
    expect(c.err.join('')).toContain('--probe-min-auc must be a number in [0, 1], got "2"');
    expect(await balance(join(root, 'bad'), '--no-probe', '--probe-min-auc', '0.5')).toBe(2);
  });

  it('bad input (one class in, an empty dataset out): a message in the manifest and on the console, the build succeeds', async () => {
    const out = join(root, 'one-class');
    const c = capture();
    expect(
      await main([
        'balance',
        '--input',
        oneClass,
        '--out',
        out,
        '--total',
        '200',
        '--ratio',
        '0.5',
      ]),
    ).toBe(0);
    const m = json(join(out, 'manifest.json'));
    expect(m.probe.status).toBe('skipped');
    // Shrunk to nothing: the balancer finds no reasoning sample to pair with.
    expect(m.probe.message).toBe('no samples in train: nothing to probe');
    expect(c.out.join('')).toContain(`probe: skipped — ${m.probe.message}`);
  });

  it('evaluate writes into a build directory; a later build replaces it whole, temp files too', async () => {
    const out = join(root, 'rebuild');
    capture();
    expect(await balance(out, '--no-probe')).toBe(0);
    expect(await main(['evaluate', '--dataset', out, '-q'])).toBe(0);
    expect(readdirSync(out)).toEqual(expect.arrayContaining(['probe.json', 'label-review.jsonl']));
    // A write killed in place leaves its temp file: still one of ours.
    writeFileSync(join(out, '.probe.json.12345-0a1b2c3d.tmp'), '{');
    expect(await balance(out, '--no-probe')).toBe(0);
    expect(readdirSync(out).sort()).not.toContain('probe.json');
    expect(readdirSync(out).some((f) => f.endsWith('.tmp'))).toBe(false);
    // A file sft-balancer did not write is still refused.
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const c = capture();
    expect(await balance(out)).toBe(1);
    expect(c.err.join('')).toContain('holds files sft-balancer did not write (notes.txt)');
  });
});

describe('the probe in the Functions fan-in', () => {
  it('request probe: false turns it off; SFT_PROBE_MIN_AUC fails the build, the probe kept in the failed manifest', async () => {
    const t = await telemetryFile(300, 5);
    for (const [extra, request, state] of [
      [{}, { probe: false }, 'succeeded'],
      [{ SFT_PROBE_MIN_AUC: '0.999' }, {}, 'failed'],
    ] as const) {
      const deps = testDeps(extra);
      await deps.store.ensureContainer();
      await deps.store.uploadFile('telemetry/t.jsonl', t.path);
      const spec = specFor(
        deps,
        `probe-${state}`,
        { total: 150, ...request },
        { kind: 'blob', path: 'telemetry/t.jsonl' },
      );
      if (extra.SFT_PROBE_MIN_AUC) spec.probe = deps.settings.probe;
      const outcome = await runBuild(deps, spec);
      expect(outcome.state).toBe(state);
      const p = buildPaths(spec.id);
      const m = JSON.parse((await deps.store.get(p.manifest))!.toString('utf8'));
      if (state === 'succeeded') {
        expect(spec.probe).toEqual({ enabled: false });
        expect(m.probe.status).toBe('off');
        expect(await deps.store.exists(`${p.datasetPrefix}probe.json`)).toBe(false);
      } else {
        expect(outcome.reason).toMatch(/^probe: text AUC [\d.]+ is below the minimum 0\.999/);
        expect(m.status).toBe('failed');
        expect(m.probe.gate).toMatchObject({ minAuc: 0.999, passed: false });
        expect(await deps.store.exists(`${p.datasetPrefix}probe.json`)).toBe(true);
      }
    }
  }, 120_000);

  it('SFT_PROBE and SFT_PROBE_MIN_AUC are read and checked with the other settings', () => {
    const env = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
    expect(loadSettings(env).probe).toEqual({ enabled: true });
    expect(loadSettings({ ...env, SFT_PROBE: 'off', SFT_PROBE_MIN_AUC: '0.7' }).probe).toEqual({
      enabled: false,
      minAuc: 0.7,
    });
    expect(() => loadSettings({ ...env, SFT_PROBE_MIN_AUC: '1.5' })).toThrow(/SFT_PROBE_MIN_AUC/);
  });
});
