/**
 * `annotate` and `calibrate` redact before the judge sees a message: planted items
 * reach neither the requests of the LLM judge (the fake server) nor the files the
 * commands write, and the summaries count them; `--no-redact` sends them as they are.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { cmdAnnotate } from '../../cli/annotate';
import { cmdCalibrate } from '../../cli/calibrate';
import { generateTelemetry } from '../../shared/source/generate';
import { startFakeOpenAI, type FakeOpenAI } from '../judge/fake-openai';
import { countsOf, plant, plantedCorpus } from './planted';

const corpus = plantedCorpus(2, 23);
/** The items planted in message text (calibrate's gold rows carry these in their history). */
const inText = corpus.filter((p) => (p.place ?? 'message') === 'message');
let dir: string;
let telemetry: string;
let gold: string;
let fake: FakeOpenAI;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trust-cli-'));
  // Every planted item in the first turn of its own conversation: session samples.
  const rows = [
    ...generateTelemetry({ conversations: corpus.length, seed: 4, incompleteShare: 0 }),
  ];
  const firsts = rows.filter((r) => r.turnIndex === 1);
  corpus.forEach((p, i) => plant(firsts[i]!, p));
  telemetry = join(dir, 'telemetry.jsonl');
  await writeFile(telemetry, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  gold = join(dir, 'gold.jsonl');
  await writeFile(
    gold,
    firsts
      .slice(0, corpus.length)
      .flatMap((r, i) =>
        inText.includes(corpus[i]!)
          ? [JSON.stringify({ ...r, label: i % 2, history: [corpus[i]!.text] })]
          : [],
      )
      .join('\n') + '\n',
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));
beforeEach(async () => {
  fake = await startFakeOpenAI();
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.stubEnv('JUDGE_API_KEY', 'sk-test');
});
afterEach(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  await fake.close();
});

const judgeArgs = () => [
  '--judge',
  'openai',
  '--model',
  'gpt-test',
  '--base-url',
  `${fake.url}/v1`,
];
const sent = () =>
  fake
    .chats()
    .map((r) => JSON.stringify(r.body))
    .join('\n');
const leaks = (text: string) => corpus.filter((p) => text.includes(p.secret)).map((p) => p.kind);

describe('annotate', () => {
  it('redacts before judging and writing, and counts by kind in the summary', async () => {
    const out = join(dir, 'a', 'annotated.jsonl');
    expect(
      await cmdAnnotate(['--input', telemetry, '--out', out, ...judgeArgs(), '--no-cache', '-q']),
    ).toBe(0);
    expect(leaks(sent())).toEqual([]);
    for (const f of await readdir(join(dir, 'a')))
      expect({ f, leaks: leaks(await readFile(join(dir, 'a', f), 'utf8')) }).toEqual({
        f,
        leaks: [],
      });
    const summary = JSON.parse(await readFile(join(dir, 'a', 'annotated.judge.json'), 'utf8'));
    expect(summary.redaction).toEqual({
      enabled: true,
      total: corpus.length,
      byKind: countsOf(corpus),
    });
  });

  it('sends the text as it is with --no-redact', async () => {
    const out = join(dir, 'b', 'annotated.jsonl');
    const args = ['--input', telemetry, '--out', out, ...judgeArgs(), '--no-cache', '--no-redact'];
    expect(await cmdAnnotate([...args, '-q'])).toBe(0);
    // Every item in message text arrives as it is (metadata is not sent to the judge).
    const all = sent();
    expect(inText.filter((p) => !all.includes(p.secret)).map((p) => p.text)).toEqual([]);
  });
});

describe('calibrate', () => {
  it('redacts the gold messages and their history before judging', async () => {
    const json = join(dir, 'calibration.json');
    const args = ['--gold', gold, '--json', json, ...judgeArgs(), '--no-cache', '-q'];
    expect(await cmdCalibrate(args)).toBe(0);
    expect(leaks(sent())).toEqual([]);
    const report = JSON.parse(await readFile(json, 'utf8'));
    expect(report.redaction.total).toBe(2 * inText.length);
  });
});
