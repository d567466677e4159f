/**
 * `--complexity-fit quantiles`: the complexity tier thresholds fitted to the input's
 * own score distribution, in a first pass over the file with bounded memory (a
 * fixed-size histogram, shared/strata/strata.ts ScoreHistogram): the 1/3 and 2/3 quantiles,
 * so each tier holds about a third of the rows. The session pipeline stratifies first
 * turns, so only rows with turnIndex 1 are counted there; malformed rows are skipped
 * (the build quarantines them).
 */
import { readFileLines } from '../adapters/files/lines';
import type { BalanceConfig } from '../shared/contracts/config';
import { ScoreHistogram, complexityScore, type SignalRow } from '../shared/strata/strata';

const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);

/** A row's signals, or null when a field the score needs is missing or not a number. */
export function signalRowOf(obj: Record<string, unknown>): SignalRow | null {
  const turnIndex = num(obj.turnIndex);
  const turnCount = num(obj.turnCount);
  const numRequests = num(obj.numRequests);
  const turnDurationMs = num(obj.turnDurationMs);
  const promptTokenDelta = num(obj.promptTokenDelta);
  if (
    turnIndex === null ||
    turnCount === null ||
    numRequests === null ||
    turnDurationMs === null ||
    promptTokenDelta === null
  )
    return null;
  const tools = Array.isArray(obj.tools) ? obj.tools.filter((t) => typeof t === 'string') : [];
  return {
    turnIndex,
    turnCount,
    model: typeof obj.model === 'string' ? obj.model : '',
    numRequests,
    turnDurationMs,
    promptTokenDelta,
    tools,
  };
}

/** The config with its tiers at the input's score terciles, marked as fitted. */
export async function fitComplexityToFile(
  config: BalanceConfig,
  input: string,
  firstTurnsOnly: boolean,
): Promise<BalanceConfig> {
  const hist = new ScoreHistogram();
  await readFileLines(
    input,
    (line) => {
      if (line.trim() === '') return;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        return;
      }
      if (typeof obj !== 'object' || obj === null) return;
      const row = signalRowOf(obj as Record<string, unknown>);
      if (!row || (firstTurnsOnly && row.turnIndex !== 1)) return;
      hist.add(complexityScore(row, config.complexity));
    },
    undefined,
    { maxLineBytes: config.maxMessageChars * 4 + 65_536 },
  );
  return {
    ...config,
    complexity: {
      ...config.complexity,
      tiers: hist.thresholds(),
      fitted: {
        method: 'quantiles',
        rows: hist.rows,
        source: firstTurnsOnly ? 'first turns of the input' : 'rows of the input',
      },
    },
  };
}
