import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { InputFileError } from '../../adapters/files/lines';
import { EVALUATE_USAGE, evaluateCommand, evaluateDataset } from '../../cli/evaluate';
import { main } from '../../cli/main';
import type { ReviewItem } from '../../shared/probe';
import { syntheticLines } from './helpers';

const root = mkdtempSync(join(tmpdir(), 'sftb-probe-'));
const demo = join(root, 'demo');
const conversation = join(root, 'conversation');
const dataset = join(demo, 'dataset');
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const shaDir = (d: string) =>
  Object.fromEntries(
    readdirSync(d)
      .sort()
      .map((f) => [f, sha(join(d, f))]),
  );

function quiet() {
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return err;
}

afterEach(() => vi.restoreAllMocks());
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * What `demo --in-process --conversations N` builds, without the build's own probe: the
 * tests below run the probe themselves, so the build's would be computed twice.
 */
async function demoWithoutProbe(out: string, pipeline: string, conversations: number) {
  const telemetry = join(out, 'telemetry.jsonl');
  const gen = ['generate', '--conversations', String(conversations), '--seed', '1', '--out'];
  expect(await main([...gen, telemetry, '-q'])).toBe(0);
  const run = ['run', '--input', telemetry, '--out', join(out, 'dataset'), '--total', '4000'];
  expect(await main([...run, '--pipeline', pipeline, '--in-process', '--no-probe', '-q'])).toBe(0);
}

beforeAll(async () => {
  quiet();
  await demoWithoutProbe(demo, 'session', 3000);
  // Only its history is read: a smaller build serves.
  await demoWithoutProbe(conversation, 'conversation', 1000);
  vi.restoreAllMocks();
}, 120_000);

describe('evaluateDataset on a demo dataset', () => {
  it('writes probe.json and label-review.jsonl, the same bytes twice, and leaves the dataset alone', async () => {
    const before = shaDir(dataset);
    const a = await evaluateDataset(dataset, { out: join(root, 'a') });
    const b = await evaluateDataset(dataset, { out: join(root, 'b') });
    expect(sha(a.probe)).toBe(sha(b.probe));
    expect(sha(a.review)).toBe(sha(b.review));
    expect(a.outputs['probe.json']!.sha256).toBe(sha(a.probe));
    expect(shaDir(dataset)).toEqual(before);
    // The demo's signals judge reads the same signals the signals probe sees.
    expect(a.status).toBe('ok');
    expect(a.verdict).toBe('signals');
    expect(a.signalsAuc!).toBeGreaterThan(a.textAuc!);
    const probe = JSON.parse(readFileSync(a.probe, 'utf8'));
    expect(probe.scheme).toBe('kfold');
    expect(probe.settings.text.dim).toBe(262144);
    expect(probe.seed).toBe(42);
    expect(probe.input['train.jsonl'].used).toBe(a.samples['train.jsonl']);
    const review = readFileSync(a.review, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ReviewItem);
    expect(review).toHaveLength(50);
    expect(review[0]!.rationale).toMatch(/^signals score /);
    expect(review[0]!.judge).toBe('signals-v1');
  });

  it('writes into the dataset directory by default, adding only its two files', async () => {
    const copy = join(root, 'copy');
    mkdirSync(copy);
    writeFileSync(join(copy, 'train.jsonl'), readFileSync(join(dataset, 'train.jsonl')));
    const s = await evaluateDataset(copy);
    expect(readdirSync(copy).sort()).toEqual(['label-review.jsonl', 'probe.json', 'train.jsonl']);
    expect(sha(join(copy, 'train.jsonl'))).toBe(sha(join(dataset, 'train.jsonl')));
    expect(s.probe).toBe(join(copy, 'probe.json'));
  });

  it('reads the history of the conversation pipeline', async () => {
    const d = join(conversation, 'dataset');
    const s = await evaluateDataset(d, { out: join(root, 'conv') });
    expect(s.status).toBe('ok');
    const review = readFileSync(s.review, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ReviewItem);
    expect(review.some((r) => r.historyMessages > 0)).toBe(true);
  });
});

describe('evaluate on bad input', () => {
  it('a one-class dataset: a skipped probe.json with the reason, exit 0', async () => {
    const d = join(root, 'oneclass');
    mkdirSync(d);
    const lines = syntheticLines({ n: 100, seed: 1, source: 'text' }).map((l) => ({
      ...l,
      label: 1,
    }));
    writeFileSync(join(d, 'train.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const err = quiet();
    expect(await evaluateCommand(['--dataset', d])).toBe(0);
    const probe = JSON.parse(readFileSync(join(d, 'probe.json'), 'utf8'));
    expect(probe.status).toBe('skipped');
    expect(probe.message).toBe(
      'train has one class (100 non_reasoning, 0 of the other): the probe needs both',
    );
    expect(err.join('')).toContain('probe: skipped — train has one class');
    expect(readFileSync(join(d, 'label-review.jsonl'), 'utf8')).toBe('');
  });

  it('skips lines it cannot use and counts them by reason', async () => {
    const d = join(root, 'badlines');
    mkdirSync(d);
    const lines = syntheticLines({ n: 200, seed: 2, source: 'text' }).map((l) => JSON.stringify(l));
    lines.splice(10, 0, '{not json', JSON.stringify({ id: 'x', label: 3 }), '[]');
    writeFileSync(join(d, 'train.jsonl'), lines.join('\n') + '\n');
    const s = await evaluateDataset(d, { settings: { bootstrap: 50 } });
    expect(s.badLines).toBe(3);
    expect(s.samples['train.jsonl']).toBe(200);
    const probe = JSON.parse(readFileSync(s.probe, 'utf8'));
    expect(probe.input['train.jsonl'].bad).toEqual({
      invalid_json: 1,
      invalid_label: 1,
      not_an_object: 1,
    });
    expect(probe.notes).toContain('3 line(s) not usable by the probe were skipped (see input)');
  });

  it('--min-auc above the text AUC exits 1; a missing train.jsonl is an input error; usage errors name the flag', async () => {
    const d = join(root, 'gate');
    mkdirSync(d);
    const lines = syntheticLines({ n: 200, seed: 3, source: 'random' });
    writeFileSync(join(d, 'train.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    quiet();
    expect(await evaluateCommand(['--dataset', d, '--min-auc', '0.99', '--bootstrap', '0'])).toBe(
      1,
    );
    expect(await evaluateCommand(['--dataset', d, '--bootstrap', '0'])).toBe(0);
    await expect(evaluateCommand(['--dataset', join(root, 'nothing')])).rejects.toBeInstanceOf(
      InputFileError,
    );
    await expect(evaluateCommand(['--dataset', d, '--folds', 'x'])).rejects.toThrow(
      '--folds must be an integer, got "x"',
    );
    await expect(evaluateCommand([])).rejects.toThrow('--dataset DIR is required');
    expect(EVALUATE_USAGE).toMatch(/^Usage: sft-balancer evaluate --dataset DIR/);
  });
});
