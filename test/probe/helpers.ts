/** Synthetic dataset lines for the probe tests: the text, the signals or neither carry the label. */
import { Rng } from '../../shared/util/prng';
import type { ProbeLine } from '../../shared/probe';

const HARD = ['why', 'design', 'deadlock', 'migrate', 'prove', 'race', 'tradeoffs', 'investigate'];
const EASY = ['rename', 'typo', 'format', 'import', 'bump', 'sort', 'docstring', 'unused'];
const FILLER = [
  'the',
  'cache',
  'server',
  'in',
  'parser',
  'module',
  'please',
  'file',
  'config',
  'user',
  'handler',
  'queue',
  'test',
  'build',
  'branch',
  'api',
  'table',
  'list',
  'service',
  'code',
];

export type LabelSource = 'text' | 'signals' | 'random';

export interface SyntheticOptions {
  n: number;
  seed: number;
  source: LabelSource;
  /** Turns per conversation (ids conv-<k>). */
  turnsPerConversation?: number;
  idPrefix?: string;
}

/**
 * Lines whose label follows the text (a cue word of its class), the signals (numRequests
 * and duration, the text drawn from both cue lists alike) or nothing (a coin).
 */
export function syntheticLines(o: SyntheticOptions): ProbeLine[] {
  const rng = new Rng(o.seed);
  const per = o.turnsPerConversation ?? 3;
  const out: ProbeLine[] = [];
  for (let i = 0; i < o.n; i++) {
    const label: 0 | 1 = rng.chance(0.5) ? 0 : 1;
    const words: string[] = [];
    for (let k = 0; k < 8; k++) words.push(rng.pick(FILLER));
    const cue =
      o.source === 'text'
        ? rng.pick(label === 0 ? HARD : EASY)
        : rng.pick(rng.chance(0.5) ? HARD : EASY);
    words.splice(rng.int(0, words.length), 0, cue);
    const hardSignals = o.source === 'signals' ? label === 0 : rng.chance(0.5);
    const numRequests = hardSignals ? rng.int(6, 14) : rng.int(0, 3);
    const conv = Math.floor(i / per);
    const turnIndex = (i % per) + 1;
    out.push({
      id: `${o.idPrefix ?? 's'}-${i}`,
      label,
      messages: [{ role: 'user', content: words.join(' ') }],
      strata: { turnBucket: ['A', 'B', 'C'][conv % 3]! },
      conversationId: `${o.idPrefix ?? 's'}-conv-${conv}`,
      turnIndex,
      turnCount: per,
      model: rng.chance(0.5) ? 'o3' : 'gpt-4o-mini',
      numRequests,
      turnDurationMs: hardSignals ? rng.int(30_000, 90_000) : rng.int(1_000, 9_000),
      promptTokenDelta: rng.int(-100, 5_000),
      tools: Array.from({ length: numRequests }, () =>
        rng.pick(['read_file', 'edit_file', 'grep']),
      ),
      metadata: { judge: 'test-judge', confidence: 0.9, rationale: `cue ${cue}` },
    });
  }
  return out;
}
