/**
 * Malformed telemetry at the source step of the Functions pipeline (plan → shards →
 * judge batch), on Azurite: 40 kinds of bad lines mixed into a real export are each
 * quarantined with their reason and line number, valid rows in odd but legal shapes
 * (tabs, CRLF, escaped surrogates) arrive, and the dataset equals the one built from
 * the valid rows alone. test/contracts/contracts.test.ts covers the row checker itself;
 * this covers the path from raw bytes to the published quarantine.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPipeline } from '../../cli/jobs';
import { judgeFor } from '../../functions/lib/judges';
import { buildPaths } from '../../shared/build/spec';
import { generateTelemetry } from '../../shared/source/generate';
import { turn } from '../support/rows';
import { runBuild, specFor, testDeps } from '../functions/harness';

const j = (o: Record<string, unknown>) => JSON.stringify(turn({ conversationId: 'bad', ...o }));
const without = (k: string) => {
  const t: Record<string, unknown> = turn({ conversationId: 'bad' });
  delete t[k];
  return JSON.stringify(t);
};

/** [name, raw line, reason]: what a real export can contain. */
const BAD_LINES: [string, string, string | null][] = [
  ['a truncated object', '{"conversationId": "broken"', 'invalid_json'],
  ['plain text', 'not json at all', 'invalid_json'],
  ['two objects on one line', '{"a":1}{"b":2}', 'invalid_json'],
  ['single quotes', "{'conversationId':'x'}", 'invalid_json'],
  ['a trailing comma', '{"conversationId":"x",}', 'invalid_json'],
  ['a bare NaN', 'NaN', 'invalid_json'],
  ['a raw control character in a string', '{"conversationId":"a\u0001b"}', 'invalid_json'],
  ['an array', '[1,2,3]', 'not_an_object'],
  ['null', 'null', 'not_an_object'],
  ['a string', '"a string"', 'not_an_object'],
  ['a number', '42', 'not_an_object'],
  ['a boolean', 'true', 'not_an_object'],
  ['no userMessage', without('userMessage'), 'missing_field'],
  ['userMessage null', j({ userMessage: null }), 'wrong_type'],
  ['userMessage a number', j({ userMessage: 7 }), 'wrong_type'],
  ['userMessage an array', j({ userMessage: ['a', 'b'] }), 'wrong_type'],
  ['userMessage over the limit', j({ userMessage: 'x'.repeat(32_001) }), 'message_too_long'],
  ['turnIndex a string', j({ turnIndex: '1' }), 'wrong_type'],
  [
    'turnIndex 1e400',
    j({ turnIndex: 1 }).replace('"turnIndex":1', '"turnIndex":1e400'),
    'non_finite_number',
  ],
  ['turnIndex negative', j({ turnIndex: -1 }), 'out_of_range'],
  ['turnCount zero', j({ turnCount: 0 }), 'out_of_range'],
  ['turnIndex past turnCount', j({ turnIndex: 9, turnCount: 3 }), 'turn_index_exceeds_turn_count'],
  ['conversationId null', j({ conversationId: null }), 'wrong_type'],
  ['conversationId empty', j({ conversationId: '' }), 'out_of_range'],
  ['conversationId an object', j({ conversationId: { id: 1 } }), 'wrong_type'],
  ['model empty', j({ model: '' }), 'out_of_range'],
  // Optional under the default strata (issue 18): kept with the stated defaults.
  ['no model', without('model'), null],
  ['numRequests fractional', j({ numRequests: 1.5 }), 'wrong_type'],
  ['numRequests negative', j({ numRequests: -3 }), 'out_of_range'],
  ['turnDurationMs a word', j({ turnDurationMs: 'fast' }), 'wrong_type'],
  ['turnDurationMs just below zero', j({ turnDurationMs: -1e-9 }), 'out_of_range'],
  ['no promptTokenDelta', without('promptTokenDelta'), null],
  ['tools null', j({ tools: null }), 'wrong_type'],
  ['tools holding null', j({ tools: [null] }), 'wrong_type'],
  ['tools an object', j({ tools: { 0: 'edit' } }), 'wrong_type'],
  ['timestamp month 13', j({ timestamp: '2026-13-01T00:00:00Z' }), 'bad_timestamp'],
  ['timestamp offset +25:00', j({ timestamp: '2026-10-01T12:00:00+25:00' }), 'bad_timestamp'],
  ['timestamp empty', j({ timestamp: '' }), 'bad_timestamp'],
  ['timestamp null', j({ timestamp: null }), 'wrong_type'],
  ['no timestamp', without('timestamp'), null],
];

/** Valid rows in legal but unusual shapes: a 3-turn conversation that must arrive. */
const ODD_VALID = [
  JSON.stringify(turn({ conversationId: 'odd', turnIndex: 1, turnCount: 3 })).replace(
    ',"turnIndex"',
    ',\t"turnIndex"',
  ),
  `${JSON.stringify(turn({ conversationId: 'odd', turnIndex: 2, turnCount: 3 }))}\r`,
  JSON.stringify(
    turn({ conversationId: 'odd', turnIndex: 3, turnCount: 3, userMessage: 'x' }),
  ).replace('"userMessage":"x"', '"userMessage":"lone \\ud800 surrogate"'),
];

describe('malformed rows at the source step of a Functions build', () => {
  it('has at least 30 kinds', () => {
    expect(new Set(BAD_LINES.map(([n]) => n)).size).toBeGreaterThanOrEqual(30);
  });

  it('quarantines each with its reason and line; the valid rows all arrive', async () => {
    const dir = join(tmpdir(), `sftb-rows-${randomUUID().slice(0, 8)}`);
    await mkdir(dir, { recursive: true });
    const good = [...generateTelemetry({ conversations: 150, seed: 8 })].map((t) =>
      JSON.stringify(t),
    );
    // Bad lines spread through the file, so they land in several shards.
    const lines: string[] = [];
    const cleanLines: string[] = [];
    const expected = new Map<number, string>();
    const step = Math.floor(good.length / BAD_LINES.length);
    good.forEach((g, i) => {
      lines.push(g);
      cleanLines.push(g);
      const b = BAD_LINES[i / step];
      if (i % step === 0 && b) {
        lines.push(b[1]);
        // A row missing only an optional field is valid: the clean file holds it too.
        if (b[2] === null) cleanLines.push(b[1]);
        else expected.set(lines.length, b[2]);
      }
    });
    lines.push(...ODD_VALID);
    const mixed = join(dir, 'mixed.jsonl');
    const clean = join(dir, 'clean.jsonl');
    await writeFile(mixed, lines.join('\n') + '\n');
    await writeFile(clean, [...cleanLines, ...ODD_VALID].join('\n') + '\n');

    const deps = testDeps({ SFT_SHARD_BYTES: '8192' });
    const spec = specFor(deps, 'rows', { total: 80 }, { kind: 'file', path: mixed });
    const outcome = await runBuild(deps, spec);
    expect(outcome.state).toBe('succeeded');
    const p = buildPaths(spec.id);
    const quarantine = (await deps.store.get(p.datasetQuarantine))!
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; reason: string; detail: string });
    expect(quarantine.map((q) => [q.line, q.reason])).toEqual([...expected.entries()]);
    for (const q of quarantine) expect(q.detail.length).toBeGreaterThan(5);
    const manifest = JSON.parse((await deps.store.get(p.manifest))!.toString());
    expect(manifest.quarantine.total).toBe(expected.size);
    expect(manifest.telemetry.validTurns).toBe(cleanLines.length + ODD_VALID.length);

    // The same dataset as the valid rows alone give.
    const ref = await runPipeline(clean, join(dir, 'ref'), spec.config, {
      pipeline: spec.pipeline,
      history: spec.history,
      judge: judgeFor(spec),
      batchSize: spec.judge.batchSize,
      quiet: true,
    });
    expect(manifest.pipeline.assembly).toEqual(
      (ref.manifest.pipeline as { assembly: unknown }).assembly,
    );
    expect((await deps.store.get(p.train))!.toString()).toBe(
      await readFile(join(dir, 'ref', 'train.jsonl'), 'utf8'),
    );
  }, 90_000);
});
