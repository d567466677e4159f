/**
 * `--complexity-fit quantiles`: the complexity tier thresholds fitted to the input's
 * own score distribution, in a first pass over the file with bounded memory (a
 * fixed-size histogram, shared/strata/strata.ts ScoreHistogram): the 1/3 and 2/3 quantiles,
 * so each tier holds about a third of the rows. The session pipeline stratifies first
 * turns, so only rows with turnIndex 1 are counted there; malformed rows are skipped
 * (the build quarantines them). Reads any input the other commands read (a JSONL,
 * CSV or Parquet file or a folder of parts, adapters/files/input-formats.ts), with the
 * column mapping applied.
 */
import { readFileLines } from '../adapters/files/lines';
import { inputLines, isPlainJsonl, type InputReadOptions } from '../adapters/files/input-formats';
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
  opts: InputReadOptions = {},
): Promise<BalanceConfig> {
  const hist = new ScoreHistogram();
  const renames = Object.entries(opts.columns ?? {}).filter(([f, c]) => c !== undefined && c !== f);
  const add = (line: string) => {
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return;
    const o = obj as Record<string, unknown>;
    for (const [field, column] of renames)
      if (o[field] === undefined && o[column] !== undefined) o[field] = o[column];
    const row = signalRowOf(o);
    if (!row || (firstTurnsOnly && row.turnIndex !== 1)) return;
    hist.add(complexityScore(row, config.complexity));
  };
  if (await isPlainJsonl(input, opts.format))
    await readFileLines(input, add, undefined, {
      maxLineBytes: config.maxMessageChars * 4 + 65_536,
    });
  else for await (const batch of inputLines(input, opts)) for (const l of batch) add(l);
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
