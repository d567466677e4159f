/**
 * `annotate` in bounded memory: turns are spilled and sorted by conversation
 * (TurnSorter), each conversation becomes samples as it is read back, and samples are
 * judged a batch at a time. It writes the bytes the whole-input way gives (every turn
 * held, ConversationAssembler, annotateSamples), computed here the old way. Before, it
 * held every turn and every sample: out of a 40 MB heap on this input.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { annotateSamples } from '../../shared/judge/annotate';
import { createSignalsJudge } from '../../shared/judge/signals';
import { checkTurn, type TelemetryTurn } from '../../shared/contracts/rows';
import { ConversationAssembler, DEFAULT_HISTORY } from '../../shared/samples/assemble';
import { Redactor } from '../../shared/samples/redact';

const dir = mkdtempSync(join(tmpdir(), 'sftb-annotate-mem-'));
const bin = join(__dirname, '..', '..', 'bin', 'sft-balancer.js');
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'SFT_JUDGE'));

/** The old annotate: every turn held, assembled whole, judged in batches of 1,000. */
async function wholeInput(input: string, pipeline: 'session' | 'conversation') {
  const assembler = new ConversationAssembler();
  const redactor = new Redactor({ enabled: true });
  for (const line of readFileSync(input, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const value = JSON.parse(line) as unknown;
    if (checkTurn(value) === null) assembler.add(redactor.turn(value as TelemetryTurn));
  }
  const { samples } = assembler.samples(pipeline, DEFAULT_HISTORY);
  const result = await annotateSamples(samples, createSignalsJudge(), { batchSize: 1_000 });
  const text = (rows: unknown[]) => rows.map((r) => JSON.stringify(r) + '\n').join('');
  return { annotated: text(result.rows), unlabeled: text(result.unlabeled), samples };
}

describe('annotate in bounded memory', () => {
  it('labels an input whose turns do not fit in the heap, with the bytes of the whole-input way', async () => {
    const input = join(dir, 'telemetry.jsonl');
    execFileSync(process.execPath, [bin, 'generate', '--conversations', '8000', '--out', input]);
    for (const pipeline of ['conversation', 'session'] as const) {
      const out = join(dir, `${pipeline}.jsonl`);
      const r = spawnSync(
        process.execPath,
        [
          '--max-old-space-size=40',
          bin,
          'annotate',
          '--input',
          input,
          '--out',
          out,
          '--pipeline',
          pipeline,
          '--no-cache',
          '-q',
          '--json',
        ],
        { env: { ...env, SFT_SPILL_BYTES: '2000000' }, encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const want = await wholeInput(input, pipeline);
      expect(want.samples.length).toBeGreaterThan(6_000);
      expect(readFileSync(out, 'utf8') === want.annotated, `${pipeline} annotated bytes`).toBe(
        true,
      );
      expect(readFileSync(join(dir, `${pipeline}.unlabeled.jsonl`), 'utf8')).toBe(want.unlabeled);
      const summary = JSON.parse(r.stdout) as { input: { samples: number }; judge: unknown };
      expect(summary.input.samples).toBe(want.samples.length);
      expect(summary.judge).toMatchObject({ samplesJudged: want.samples.length });
    }
  }, 600_000);
});
