/**
 * The Functions build reads a blob prefix of export parts as one source (sorted
 * names, `_SUCCESS` skipped, a missing final newline mended), and a `columns`
 * mapping in the request renames the source's columns: the same dataset as one blob
 * with the contract's names.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { buildPaths } from '../../shared/build/spec';
import { runBuild, specFor, telemetryFile, testDeps } from './harness';

describe('a build from a blob prefix of parts, with a column mapping', () => {
  it('publishes the dataset of the one concatenated blob', async () => {
    const deps = testDeps();
    const t = await telemetryFile(300, 8);
    const text = await readFile(t.path, 'utf8');
    const rows = text.split('\n').filter(Boolean);
    // The parts use other names, and lack timestamp and tools (not needed here).
    const renamed = rows.map((l) => {
      const { conversationId, userMessage, timestamp, tools, ...rest } = JSON.parse(l) as Record<
        string,
        unknown
      >;
      void timestamp;
      void tools;
      return JSON.stringify({ session_id: conversationId, prompt: userMessage, ...rest });
    });
    const plain = rows.map((l) => {
      const { timestamp, tools, ...rest } = JSON.parse(l) as Record<string, unknown>;
      void timestamp;
      void tools;
      return JSON.stringify(rest);
    });
    await deps.store.ensureContainer();
    await deps.store.put('one/t.jsonl', plain.join('\n') + '\n');
    const third = Math.floor(renamed.length / 3);
    await deps.store.put('parts/part-2.jsonl', renamed.slice(2 * third).join('\n'));
    await deps.store.put('parts/part-0.jsonl', renamed.slice(0, third).join('\n')); // no final \n
    await deps.store.put('parts/part-1.jsonl', renamed.slice(third, 2 * third).join('\n') + '\n');
    await deps.store.put('parts/_SUCCESS', '');

    const a = specFor(deps, 'one-blob', { total: 150 }, { kind: 'blob', path: 'one/t.jsonl' });
    const b = specFor(
      deps,
      'parts-blob',
      { total: 150, columns: { conversationId: 'session_id', userMessage: 'prompt' } },
      { kind: 'blob', path: 'parts/' },
    );
    expect(await runBuild(deps, a)).toMatchObject({ state: 'succeeded' });
    const ob = await runBuild(deps, b);
    expect(ob, JSON.stringify(ob)).toMatchObject({ state: 'succeeded' });
    const trainA = (await deps.store.get(buildPaths(a.id).train))!.toString('utf8');
    const trainB = (await deps.store.get(buildPaths(b.id).train))!.toString('utf8');
    const manifest = JSON.parse(
      (await deps.store.get(buildPaths(b.id).manifest))!.toString('utf8'),
    );
    // Near-dedup (on by default) removes near-duplicates of this small generated source,
    // read through the column mapping alike: both builds deliver what the manifest says.
    expect(trainA.split('\n').filter(Boolean)).toHaveLength(manifest.selected.total);
    expect(manifest.selected.total + manifest.nearDuplicates.removed).toBeGreaterThanOrEqual(150);
    expect(trainB).toBe(trainA);
    expect(
      (await deps.store.get(`${buildPaths(b.id).datasetPrefix}duplicates.jsonl`))!.toString(),
    ).toBe((await deps.store.get(`${buildPaths(a.id).datasetPrefix}duplicates.jsonl`))!.toString());
    expect(manifest.quarantine.total).toBe(0);
  }, 120_000);
});
