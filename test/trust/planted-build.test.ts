/**
 * The privacy claim end to end: 533 planted secrets and personal data items of
 * every redacted kind and of every form that escaped before (issue 13: metadata keys,
 * word boundaries, URL encoding, escaped quotes in malformed lines, Unicode e-mail,
 * mapped IPv6, an empty URL user), mixed into generated telemetry (a few inside
 * malformed lines),
 * go through a full Functions build on Azurite judged by the LLM judge (the real
 * `openai` SDK against the local fake server). None of them reaches a request to the
 * judge or any blob the build wrote, and the manifest counts exactly what was planted.
 * The in-process `run` of the same file agrees.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJudge } from '../../adapters/judge/factory';
import { runPipeline } from '../../cli/jobs';
import { createDeps } from '../../functions/lib/deps';
import { buildPaths } from '../../shared/build/spec';
import { startFakeOpenAI, type FakeOpenAI } from '../judge/fake-openai';
import { openaiSettings } from '../judge/helpers';
import { runBuild, specFor, uniqueSettings } from '../functions/harness';
import { countsOf, plantedCorpus, plantedTelemetry } from './planted';

const corpus = plantedCorpus(13); // 13 × 41 forms of 21 kinds = 533 items
const BAD = 12;
let fake: FakeOpenAI;
let dir: string;
let path: string;

beforeAll(async () => {
  fake = await startFakeOpenAI();
  dir = join(tmpdir(), `sftb-planted-${randomUUID().slice(0, 8)}`);
  await mkdir(dir, { recursive: true });
  const { lines } = plantedTelemetry({ conversations: 120, corpus, inBadLines: BAD });
  path = join(dir, 'telemetry.jsonl');
  await writeFile(path, lines.join('\n') + '\n');
});
afterAll(() => fake.close());

const leaks = (text: string) => corpus.filter((p) => text.includes(p.secret));

describe('a planted corpus of secrets and personal data', () => {
  it('is large enough and covers every kind', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    expect(Object.keys(countsOf(corpus))).toHaveLength(21);
  });

  it('reaches no judge request and no blob of a full build; the manifest counts what was planted', async () => {
    const judge = createJudge(openaiSettings(fake.url));
    const deps = createDeps(uniqueSettings({ SFT_SHARD_BYTES: '16384' }), {
      judgeFor: () => judge,
    });
    const spec = specFor(
      deps,
      'planted',
      { pipeline: 'conversation', total: 200, validation: 0.2 },
      { kind: 'file', path },
    );
    const before = fake.chats().length;
    const outcome = await runBuild(deps, spec, { timeoutMs: 90_000 });
    expect(outcome.state).toBe('succeeded');

    // Every request the judge received: none carries a planted item, and the
    // placeholders show the redacted messages did arrive.
    const sent = fake
      .chats()
      .slice(before)
      .map((r) => JSON.stringify(r.body));
    expect(sent.length).toBeGreaterThan(5);
    const allSent = sent.join('\n');
    expect(leaks(allSent).map((p) => p.kind)).toEqual([]);
    const arrived = new Set(allSent.match(/\[[A-Z_]+\]/g));
    expect(arrived.size).toBeGreaterThan(10);

    // Every blob of the build: shards are references into the source, never copies.
    const names = await deps.store.list('');
    const shards = buildPaths(spec.id).shard('');
    expect(names.filter((n) => n.startsWith(shards.slice(0, shards.lastIndexOf('/'))))).toEqual([]);
    const written = names;
    expect(written).toEqual(
      expect.arrayContaining([
        buildPaths(spec.id).train,
        buildPaths(spec.id).validation,
        buildPaths(spec.id).datasetQuarantine,
        buildPaths(spec.id).manifest,
      ]),
    );
    for (const name of written) {
      const text = (await deps.store.get(name))!.toString('utf8');
      expect({ name, leaks: leaks(text).map((p) => p.kind) }).toEqual({ name, leaks: [] });
    }

    const manifest = JSON.parse((await deps.store.get(buildPaths(spec.id).manifest))!.toString());
    expect(manifest.redaction).toEqual({
      enabled: true,
      total: corpus.length,
      byKind: countsOf(corpus),
    });
    expect(manifest.quarantine.total).toBe(BAD);
    const quarantine = (await deps.store.get(buildPaths(spec.id).datasetQuarantine))!.toString();
    expect(quarantine).toContain('[');
  }, 120_000);

  it('is redacted the same way by the in-process run', async () => {
    const out = join(dir, 'inproc');
    const job = await runPipeline(
      path,
      out,
      specFor(
        createDeps(uniqueSettings()),
        'x',
        { pipeline: 'conversation', total: 200, validation: 0.2 },
        {
          kind: 'file',
          path,
        },
      ).config,
      {
        pipeline: 'conversation',
        history: { historyTurns: 3, historyTokenBudget: 1_500 },
        judge: createJudge(openaiSettings(fake.url)),
        batchSize: 20,
        quiet: true,
      },
    );
    expect(job.manifest.redaction).toEqual({
      enabled: true,
      total: corpus.length,
      byKind: countsOf(corpus),
    });
    const files = await readdir(out);
    expect(files).toEqual(
      expect.arrayContaining([
        'train.jsonl',
        'validation.jsonl',
        'quarantine.jsonl',
        'report.html',
      ]),
    );
    for (const f of files) {
      const text = await readFile(join(out, f), 'utf8');
      expect({ f, leaks: leaks(text).map((p) => p.kind) }).toEqual({ f, leaks: [] });
    }
  }, 60_000);
});
