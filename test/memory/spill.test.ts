/**
 * The bounded-memory `run --in-process` (issue 13, item 11): turns sorted by
 * conversation through spilled runs, conversations assembled as they are read back,
 * and the same samples, stats and output bytes as holding everything.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TurnSorter } from '../../adapters/files/turn-spill';
import type { TelemetryTurn } from '../../shared/contracts/rows';
import {
  ConversationAssembler,
  SortedAssembler,
  turnStub,
  type Sample,
} from '../../shared/samples/assemble';
import { shuffled, turn } from '../support/rows';

const dir = mkdtempSync(join(tmpdir(), 'sftb-mem-'));
const bin = join(__dirname, '..', '..', 'bin', 'sft-balancer.js');

/** Conversations with gaps, turnCount disagreements and repeated turns, shuffled. */
function telemetry(n: number): TelemetryTurn[] {
  const turns: TelemetryTurn[] = [];
  for (let c = 0; c < n; c++) {
    const id = `conv-${(c * 7919) % n}-${c % 3 === 0 ? 'é' : 'x'}`;
    const count = 1 + (c % 6);
    for (let i = 1; i <= count; i++) {
      if (c % 11 === 5 && i === count) continue; // a missing last turn
      const t = turn({
        conversationId: id,
        turnIndex: i,
        turnCount: c % 13 === 7 && i === 1 ? count + 1 : count,
        userMessage: `${id} says ${i}`,
      });
      turns.push(t);
      if (c % 5 === 2) turns.push({ ...t, userMessage: `${t.userMessage} again` });
      // A repeated later turn that disagrees on turnCount: which one is kept decides completeness.
      if (c % 17 === 3 && i === count && i > 1) turns.push({ ...t, turnCount: count + 1 });
    }
  }
  return shuffled(turns, 5);
}

const tmpSpills = () =>
  readdirSync(tmpdir()).filter((f) => f.startsWith('sft-balancer-turns-')).length;

describe('TurnSorter', () => {
  it('hands turns back in (conversationId, turnIndex) order through spilled runs, then removes them', () => {
    const turns = telemetry(3000);
    const before = tmpSpills();
    const sorter = new TurnSorter(20_000);
    for (const t of turns) sorter.add(t);
    expect(sorter.spilledRuns).toBeGreaterThan(10);
    expect(tmpSpills()).toBe(before + 1);
    const out = [...sorter.sorted()];
    expect(tmpSpills()).toBe(before);
    expect(out).toHaveLength(turns.length);
    for (let i = 1; i < out.length; i++) {
      const a = out[i - 1]!;
      const b = out[i]!;
      const ok =
        a.conversationId < b.conversationId ||
        (a.conversationId === b.conversationId && a.turnIndex <= b.turnIndex);
      expect(
        ok,
        `${a.conversationId}/${a.turnIndex} before ${b.conversationId}/${b.turnIndex}`,
      ).toBe(true);
    }
    const key = (t: TelemetryTurn) => JSON.stringify(t);
    expect(out.map(key).sort()).toEqual(turns.map(key).sort());
  });

  it('removes its spilled runs when the reader stops early', () => {
    const before = tmpSpills();
    const sorter = new TurnSorter(5_000);
    for (const t of telemetry(500)) sorter.add(t);
    const it = sorter.sorted();
    it.next();
    it.return(undefined);
    expect(tmpSpills()).toBe(before);
  });
});

describe('SortedAssembler', () => {
  for (const pipeline of ['session', 'conversation'] as const) {
    it(`gives the ${pipeline} samples and stats of the whole-input assembler`, () => {
      const turns = telemetry(2000);
      const whole = new ConversationAssembler();
      for (const t of turns) whole.add(t);
      const expected = whole.samples(pipeline);
      const sorter = new TurnSorter(30_000);
      // As the session job does: later turns as stubs without their text.
      for (const t of turns)
        sorter.add(pipeline === 'session' && t.turnIndex !== 1 ? turnStub(t) : t);
      const got: Sample[] = [];
      const a = new SortedAssembler(pipeline, { historyTurns: 2, historyTokenBudget: 1500 }, (s) =>
        got.push(...s),
      );
      const history = { historyTurns: 2, historyTokenBudget: 1500 };
      const wholeH = new ConversationAssembler();
      for (const t of turns) wholeH.add(t);
      const expectedH = wholeH.samples(pipeline, history);
      for (const t of sorter.sorted()) a.add(t);
      const stats = a.end();
      expect(stats).toEqual(expectedH.stats);
      expect(stats.duplicateTurns).toBeGreaterThan(0);
      expect(stats.incomplete).toBeGreaterThan(0);
      expect(got).toEqual(expectedH.samples);
      expect(expected.stats).toEqual(expectedH.stats);
    });
  }

  it('refuses turns that are not sorted by conversation', () => {
    const a = new SortedAssembler(
      'session',
      { historyTurns: 3, historyTokenBudget: 1500 },
      () => {},
    );
    a.add(turn({ conversationId: 'b', turnIndex: 1, turnCount: 1 }));
    expect(() => a.add(turn({ conversationId: 'a', turnIndex: 1, turnCount: 1 }))).toThrow(
      /out of order/,
    );
  });
});

describe('run --in-process in bounded memory', () => {
  const input = join(dir, 'telemetry.jsonl');
  const files = [
    'train.jsonl',
    'annotated.jsonl',
    'unlabeled.jsonl',
    'quarantine.jsonl',
    'manifest.json',
  ];
  const run = (out: string, pipeline: string, env: Record<string, string>, heapMb?: number) =>
    spawnSync(
      process.execPath,
      [
        ...(heapMb ? [`--max-old-space-size=${heapMb}`] : []),
        bin,
        'run',
        '--in-process',
        '-q',
        '--input',
        input,
        '--out',
        out,
        '--total',
        '2000',
        '--pipeline',
        pipeline,
      ],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
    );

  it('builds a conversation dataset whose whole input does not fit in the heap, same bytes as unspilled', () => {
    execFileSync(process.execPath, [
      bin,
      'generate',
      '--conversations',
      '30000',
      '--out',
      input,
      '-q',
    ]);
    // The old run held every turn and every sample: it ran out of a 96 MB heap here.
    const small = run(join(dir, 'small'), 'conversation', { SFT_SPILL_BYTES: '2000000' }, 96);
    expect(small.stderr).toBe('');
    expect(small.status).toBe(0);
    const big = run(join(dir, 'big'), 'conversation', { SFT_SPILL_BYTES: String(1 << 30) });
    expect(big.status).toBe(0);
    for (const f of files) {
      expect(readFileSync(join(dir, 'small', f)).equals(readFileSync(join(dir, 'big', f))), f).toBe(
        true,
      );
    }
    expect(existsSync(join(dir, 'small', 'annotated.jsonl.tmp'))).toBe(false);
  }, 300_000);
});
