/**
 * Synthetic telemetry for demos, tests and benchmarks. Deterministic by seed.
 *
 * The shape follows the seed document: skewed turn counts (P(3 turns) ≈ 0.30,
 * P(15) ≈ 0.01, a tail past 20), reasoning as the minority class, complexity signals
 * that correlate with the hidden label but overlap, users who pick reasoning models
 * more often for hard conversations, varied messages with some exact repeats
 * ("continue"), and a few incomplete conversations (a logged turn missing).
 */
import type { Label, TelemetryTurn } from '../contracts/rows';
import { Rng } from '../util/prng';

export interface GenerateOptions {
  conversations?: number;
  /** Stop after this many rows instead (the last conversation may be cut short). */
  rows?: number;
  seed: number;
  /** Write the hidden label, making annotated rows (a known-label judge). */
  annotated?: boolean;
  /** Share of conversations with one logged turn missing. */
  incompleteShare?: number;
  /**
   * Signal strength: the share of turns whose cheap signals (requests, tools,
   * duration, tokens) are drawn as the other class's would be. 0 (the default) keeps
   * the signals as strong as they are; higher values make them weaker.
   */
  signalNoise?: number;
}

export type GeneratedTurn = TelemetryTurn & {
  label?: Label;
  clientVersion: string;
  language: string;
};

/** P(turnCount = t) for t = 1..40; sums to 1. */
export const TURN_COUNT_WEIGHTS: readonly number[] = (() => {
  const head = [
    0.04, 0.08, 0.3, 0.14, 0.1, 0.07, 0.05, 0.04, 0.03, 0.025, 0.02, 0.017, 0.014, 0.012, 0.01,
    0.008, 0.007, 0.006, 0.005, 0.004,
  ];
  const rest = 1 - head.reduce((a, b) => a + b, 0);
  return [...head, ...Array.from({ length: 20 }, () => rest / 20)];
})();

const REASONING_MODELS = ['o3', 'o4-mini', 'gpt-5', 'claude-opus-4', 'gemini-2.5-pro'];
const FAST_MODELS = ['gpt-4o-mini', 'gpt-4.1', 'gpt-4o', 'claude-3.5-haiku', 'gemini-2.0-flash'];
const TOOLS = [
  'read_file',
  'edit_file',
  'run_terminal',
  'grep_search',
  'list_dir',
  'run_tests',
  'web_fetch',
  'git_diff',
  'create_file',
  'semantic_search',
];
const LANGS = ['TypeScript', 'Python', 'Go', 'Rust', 'Java', 'C#', 'Kotlin', 'SQL'];
const FILES = [
  'src/server.ts',
  'api/handlers.py',
  'cmd/main.go',
  'lib/parser.rs',
  'app/models/user.rb',
  'pkg/cache/lru.go',
  'src/components/Table.tsx',
  'services/billing.py',
  'src/db/pool.ts',
  'core/scheduler.java',
];
const FNS = [
  'parseConfig',
  'handleRequest',
  'mergeIntervals',
  'retryWithBackoff',
  'computeTotals',
  'loadUsers',
  'flushQueue',
  'renderRow',
  'validateToken',
  'reconcileLedger',
  'buildIndex',
  'syncState',
];
const COMPONENTS = [
  'the connection pool',
  'the job scheduler',
  'the websocket layer',
  'the cache',
  'the auth middleware',
  'the event bus',
  'the ORM session',
  'the file watcher',
];
const SYMPTOMS = [
  'return stale data',
  'deadlock',
  'time out',
  'leak memory',
  'drop messages',
  'throw a null reference',
  'double-charge the customer',
  'hang forever',
];

const REASONING_TEMPLATES: ((r: Rng) => string)[] = [
  (r) =>
    `Why does ${r.pick(FNS)} in ${r.pick(FILES)} ${r.pick(SYMPTOMS)} when traffic spikes above ${r.int(2, 90) * 100} rps? Walk me through the root cause.`,
  (r) =>
    `Design a ${r.pick(['rate limiter', 'plugin system', 'retry policy', 'caching layer', 'permissions model'])} for ${r.pick(COMPONENTS)} and compare the trade-offs of ${r.pick(['a token bucket', 'a sliding window', 'optimistic locking', 'an event log'])} versus ${r.pick(['a leaky bucket', 'pessimistic locking', 'a snapshot table', 'polling'])}.`,
  (r) =>
    `Refactor ${r.pick(FILES)} to break the circular dependency between ${r.pick(FNS)} and ${r.pick(FNS)} without changing the public API; there are ${r.int(3, 40)} call sites.`,
  (r) =>
    `Investigate the intermittent failure in ${r.pick(FNS)}.test — it fails about 1 in ${r.int(5, 60)} runs on CI; I suspect a race condition in ${r.pick(COMPONENTS)}.`,
  (r) =>
    `Plan the migration of ${r.pick(COMPONENTS)} from ${r.pick(['MySQL', 'Redis', 'a monolith', 'callbacks'])} to ${r.pick(['Postgres', 'Kafka', 'microservices', 'async/await'])} with zero downtime, ${r.int(2, 12)} services depend on it.`,
  (r) =>
    `Optimize ${r.pick(FNS)}: it is O(n^2) on ${r.int(1, 50)}M rows and times out. Propose a better algorithm and prove it handles the edge cases.`,
  (r) =>
    `Debug the memory leak in ${r.pick(COMPONENTS)} that appears after ${r.int(1, 100) * 1000} requests; heap snapshots attached show ${r.int(10, 900)} MB retained.`,
  (r) =>
    `What edge cases am I missing in ${r.pick(FNS)} (${r.pick(LANGS)})? Think about concurrency, empty input and overflow around ${2 ** r.int(8, 31)}.`,
  (r) =>
    `Review the security of ${r.pick(['/api/login', '/api/upload', '/admin/export', '/webhooks/stripe'])}: could a user escalate privileges through ${r.pick(['the role header', 'a crafted JWT', 'path traversal', 'mass assignment'])}? Line ${r.int(10, 900)}.`,
  (r) =>
    `Our ${r.pick(LANGS)} build went from ${r.int(1, 5)} to ${r.int(6, 30)} minutes after the last merge. Investigate why and suggest a strategy to bring it back.`,
];

const FAST_TEMPLATES: ((r: Rng) => string)[] = [
  (r) => `Rename ${r.pick(FNS)} to ${r.pick(FNS)}${r.int(2, 9)} in ${r.pick(FILES)}.`,
  (r) =>
    `Fix the typo in the ${r.pick(['README', 'CHANGELOG', 'docstring', 'error message'])} on line ${r.int(1, 400)}.`,
  (r) =>
    `Add an import for ${r.pick(['lodash', 'numpy', 'fmt', 'serde', 'zod', 'requests'])} in ${r.pick(FILES)}.`,
  (r) =>
    `What is the syntax for a ${r.pick(['switch expression', 'list comprehension', 'generic constraint', 'match arm', 'lambda'])} in ${r.pick(LANGS)}?`,
  (r) => `Format ${r.pick(FILES)} with the project's formatter.`,
  (r) => `Add a docstring to ${r.pick(FNS)} in ${r.pick(FILES)}.`,
  (r) =>
    `Convert this ${r.pick(['JSON', 'YAML', 'CSV', 'TOML'])} snippet to ${r.pick(['YAML', 'JSON', 'a TypeScript type', 'a Python dict'])}: ${r.int(2, 30)} keys.`,
  (r) =>
    `Show me how to ${r.pick(['read a file', 'parse a date', 'sort a list', 'split a string', 'start a server'])} in ${r.pick(LANGS)}.`,
  (r) => `Sort the imports in ${r.pick(FILES)}.`,
  (r) =>
    `Remove the unused variable ${r.pick(['tmp', 'result', 'i', 'ctx', 'err'])}${r.int(1, 99)} in ${r.pick(FILES)}.`,
  (r) =>
    `Bump ${r.pick(['react', 'express', 'pytest', 'tokio', 'spring-boot'])} to ${r.int(1, 20)}.${r.int(0, 30)}.`,
  (r) =>
    r.pick([
      'continue',
      'yes, do it',
      'thanks, now run the tests',
      'ok',
      'go on',
      'looks good, commit it',
    ]),
];

const PREFIXES = ['', '', '', 'quick one: ', 'hey, ', 'can you ', 'please ', 'ok so ', 'next: '];
const SUFFIXES: ((r: Rng) => string)[] = [
  () => '',
  () => '',
  (r) => ` (see PR #${r.int(100, 99_999)})`,
  (r) => ` — ticket ${r.pick(['ENG', 'OPS', 'WEB', 'DATA'])}-${r.int(10, 9_999)}`,
  (r) =>
    ` on branch ${r.pick(['feature', 'fix', 'chore'])}/${r.pick(FNS).toLowerCase()}-${r.int(1, 999)}`,
  (r) => ` in the ${r.pick(LANGS)} service, build ${r.int(1_000, 99_999)}`,
];

/** A message: a template, dressed with the prefixes and trailers real users type. */
function composeMessage(r: Rng, templates: readonly ((r: Rng) => string)[]): string {
  const body = r.pick(templates)(r);
  if (body.length < 30 && !body.includes(' in ')) return body; // "continue", "ok": left bare
  return r.pick(PREFIXES) + body + r.pick(SUFFIXES)(r);
}

const logNormal = (r: Rng, median: number, sigma: number) =>
  Math.exp(Math.log(median) + sigma * r.normal());

/** Telemetry turns, conversation by conversation, deterministic for a seed. */
export function* generateTelemetry(opts: GenerateOptions): Generator<GeneratedTurn> {
  const rng = new Rng(opts.seed);
  const maxConversations = opts.conversations ?? Infinity;
  const maxRows = opts.rows ?? Infinity;
  if (maxConversations === Infinity && maxRows === Infinity) {
    throw new RangeError('generateTelemetry needs conversations or rows');
  }
  const incompleteShare = opts.incompleteShare ?? 0.05;
  const start = Date.UTC(2026, 9, 1);
  let rows = 0;
  for (let c = 0; c < maxConversations && rows < maxRows; c++) {
    const turnCount = rng.weighted(TURN_COUNT_WEIGHTS) + 1;
    const difficulty = rng.next() ** 1.6;
    const family = rng.chance(0.15 + 0.55 * difficulty) ? REASONING_MODELS : FAST_MODELS;
    let model = rng.pick(family);
    const conversationId = `conv-${opts.seed}-${c.toString(36).padStart(6, '0')}`;
    const dropped = rng.chance(incompleteShare) ? rng.int(1, turnCount) : 0;
    const clientVersion = `1.${rng.int(90, 105)}.${rng.int(0, 9)}`;
    const language = rng.pick(LANGS);
    let t = start + Math.floor(rng.next() * 30 * 86_400_000);
    for (let turnIndex = 1; turnIndex <= turnCount && rows < maxRows; turnIndex++) {
      const pReasoning =
        0.06 + 0.5 * difficulty + (turnCount > 10 ? 0.08 : 0) + (turnIndex === 1 ? 0.05 : 0);
      const reasoning = rng.chance(Math.min(0.95, pReasoning));
      // Drawn only when asked for, so the default stream (and every seed's data) is unchanged.
      const looks = opts.signalNoise ? reasoning !== rng.chance(opts.signalNoise) : reasoning;
      // Users mislead the cheap signals: some hard asks look short, some easy ones long.
      const ambiguous = rng.chance(0.12);
      const templates = reasoning !== ambiguous ? REASONING_TEMPLATES : FAST_TEMPLATES;
      const userMessage = composeMessage(rng, templates);
      if (rng.chance(0.1)) model = rng.pick(rng.chance(0.5) ? REASONING_MODELS : FAST_MODELS);
      const numRequests = Math.max(
        0,
        Math.round(looks ? logNormal(rng, 8, 0.6) : logNormal(rng, 1.6, 0.7) - 0.5),
      );
      const typePool = looks ? rng.int(2, 6) : rng.int(1, 2);
      const tools = Array.from(
        { length: numRequests },
        () => TOOLS[(rng.int(0, typePool - 1) + c) % TOOLS.length]!,
      );
      const turnDurationMs = Math.round(
        looks ? logNormal(rng, 45_000, 0.7) : logNormal(rng, 8_000, 0.7),
      );
      let promptTokenDelta = Math.round(
        looks ? logNormal(rng, 4_000, 0.8) : logNormal(rng, 700, 0.8),
      );
      if (rng.chance(0.03)) promptTokenDelta = -promptTokenDelta; // context trimmed
      t += turnDurationMs + rng.int(5, 120) * 1000;
      if (turnIndex === dropped) continue;
      const turn: GeneratedTurn = {
        conversationId,
        turnIndex,
        turnCount,
        userMessage,
        model,
        numRequests,
        turnDurationMs,
        promptTokenDelta,
        tools,
        timestamp: new Date(t).toISOString(),
        clientVersion,
        language,
      };
      if (opts.annotated) turn.label = reasoning ? 0 : 1;
      rows++;
      yield turn;
    }
  }
}
