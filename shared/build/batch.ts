/**
 * One judge batch, pure: the lines of a shard in, samples, quarantined rows and
 * annotated rows out. The judge comes in as an interface; the caller reads and
 * writes the blobs.
 */
import { annotateSamples, type Unlabeled } from '../judge/annotate';
import type { QuarantineRecord } from '../balance/balancer';
import {
  checkAnnotated,
  checkTurn,
  describeProblem,
  rowShape,
  type AnnotatedRow,
  type RowShape,
  type TelemetryTurn,
} from '../contracts/rows';
import type { BalanceConfig } from '../contracts/config';
import {
  MAX_LINE_BYTES,
  conversationIdOf,
  inWindow,
  parseShardLine,
  type BatchSummary,
  type BuildSpec,
} from './spec';
import type { Judge } from '../judge/types';
import type { JudgeStats } from '../judge/usage';
import { ConversationAssembler, type AssemblyStats, type Sample } from '../samples/assemble';
import { Redactor, type RedactionCounts } from '../samples/redact';

const utf8 = new TextEncoder();

/** The quarantine detail of a line over MAX_LINE_BYTES: its size, never its content. */
export function tooLongDetail(bytes: number): string {
  return `line is ${bytes} bytes, over the limit of ${MAX_LINE_BYTES} bytes`;
}

/**
 * A telemetry line checked: the turn, or why it was set aside. Blank lines give null.
 * With a redactor, a valid turn comes back redacted and a quarantined line's raw text
 * is redacted before it is cut to 500 characters (so no half-cut secret survives).
 */
/** What a telemetry turn must carry for a config (and a time window, which needs timestamps). */
export function telemetryShape(
  config: Pick<BalanceConfig, 'stratify' | 'columns'>,
  window?: { from?: string | undefined; to?: string | undefined },
): RowShape {
  return rowShape({
    annotated: false,
    stratify: config.stratify,
    window: window !== undefined && (window.from !== undefined || window.to !== undefined),
    columns: config.columns,
  });
}

export function parseTelemetryLine(
  line: string,
  lineNo: number,
  maxMessageChars: number,
  redactor?: Redactor,
  /** The line's whole size in the input when `line` was cut short (see MAX_LINE_BYTES). */
  bytes?: number,
  /** What a turn must carry (renames, defaults); strict when absent. */
  shape?: RowShape,
): { turn: TelemetryTurn } | { quarantine: QuarantineRecord } | null {
  if (line.trim().length === 0) return null;
  const rawOf = () => (redactor ? redactor.text(line.slice(0, 65_536)) : line).slice(0, 500);
  let size = bytes ?? 0;
  if (
    size > MAX_LINE_BYTES ||
    (line.length * 3 > MAX_LINE_BYTES && (size = utf8.encode(line).length) > MAX_LINE_BYTES)
  ) {
    return {
      quarantine: {
        line: lineNo,
        reason: 'line_too_long',
        detail: tooLongDetail(size),
        raw: rawOf(),
      },
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return {
      quarantine: {
        line: lineNo,
        reason: 'invalid_json',
        detail: 'line is not valid JSON',
        raw: rawOf(),
      },
    };
  }
  const problem = checkTurn(value, maxMessageChars, shape);
  if (problem) {
    const rec: QuarantineRecord = {
      line: lineNo,
      reason: problem.reason,
      detail: describeProblem(value, problem, false),
      raw: rawOf(),
    };
    if (problem.field) rec.field = problem.field;
    return { quarantine: rec };
  }
  const turn = value as TelemetryTurn;
  return { turn: redactor ? redactor.turn(turn) : turn };
}

export interface PreparedShard {
  rows: number;
  turns: number;
  outsideWindow: number;
  quarantine: QuarantineRecord[];
  samples: Sample[];
  assembly: AssemblyStats;
  /** What redaction replaced, by kind (empty when it is off). */
  redactions: RedactionCounts;
}

/** A shard line already split: its source line number, text, and whole size when cut. */
export interface ShardLine {
  lineNo: number;
  raw: string;
  bytes?: number;
}

/**
 * Reads a shard's lines (`LINENO<TAB>RAW`, or {@link ShardLine}s), quarantines bad rows and builds samples.
 * With `conversations`, only the lines of those conversations are read (a wave batch
 * needs a few samples of its shard; a conversation's samples depend on its turns
 * alone, so they come out the same), and the counts describe those lines only.
 */
export function prepareShard(
  lines: Iterable<string | ShardLine>,
  spec: BuildSpec,
  conversations?: ReadonlySet<string>,
): PreparedShard {
  const assembler = new ConversationAssembler();
  const quarantine: QuarantineRecord[] = [];
  const redactor = new Redactor({ enabled: spec.redact });
  const shape = telemetryShape(spec.config, spec.window);
  let rows = 0;
  let turns = 0;
  let outsideWindow = 0;
  for (const text of lines) {
    if (typeof text === 'string' && text.length === 0) continue;
    const { lineNo, raw, bytes } = typeof text === 'string' ? parseShardLine(text) : text;
    if (conversations) {
      const id = conversationIdOf(raw, spec.config.columns?.conversationId);
      if (id === null || !conversations.has(id)) continue;
    }
    const r = parseTelemetryLine(raw, lineNo, spec.config.maxMessageChars, redactor, bytes, shape);
    if (r === null) continue;
    rows++;
    if ('quarantine' in r) {
      quarantine.push(r.quarantine);
      continue;
    }
    if (!inWindow(r.turn.timestamp, spec.window)) {
      outsideWindow++;
      continue;
    }
    turns++;
    assembler.add(r.turn);
  }
  const { samples, stats } = assembler.samples(spec.pipeline, spec.history);
  quarantine.sort((a, b) => a.line - b.line);
  return {
    rows,
    turns,
    outsideWindow,
    quarantine,
    samples,
    assembly: stats,
    redactions: redactor.summary().byKind,
  };
}

export interface JudgedShard extends PreparedShard {
  annotated: AnnotatedRow[];
  unlabeled: Unlabeled[];
  judgeCalls: number;
}

/** Judges a prepared shard. A judge that throws fails the batch (the queue retries it). */
export async function judgeShard(
  prepared: PreparedShard,
  judge: Judge,
  batchSize: number,
): Promise<JudgedShard> {
  const result = await annotateSamples(prepared.samples, judge, { batchSize });
  return {
    ...prepared,
    annotated: result.rows,
    unlabeled: result.unlabeled,
    judgeCalls: result.calls,
  };
}

/** A batch's summary before judging: its shard's counts, nothing labelled yet. */
export function batchSummaryOf(
  buildId: string,
  shardId: string,
  prepared: PreparedShard,
  attempt: number,
): BatchSummary {
  return {
    buildId,
    shardId,
    rows: prepared.rows,
    turns: prepared.turns,
    outsideWindow: prepared.outsideWindow,
    quarantined: prepared.quarantine.length,
    quarantineByReason: countBy(prepared.quarantine, (q) => q.reason),
    assembly: prepared.assembly,
    samples: prepared.samples.length,
    labelled: 0,
    unlabeled: 0,
    unlabeledByCause: {},
    judgeCalls: 0,
    redactions: prepared.redactions,
    attempt,
  };
}

/** A shard that read no lines: the counts of a wave batch (the scan round counted them). */
export const EMPTY_SHARD: PreparedShard = {
  rows: 0,
  turns: 0,
  outsideWindow: 0,
  quarantine: [],
  samples: [],
  assembly: { conversations: 0, complete: 0, incomplete: 0, duplicateTurns: 0 },
  redactions: {},
};

/** A judge's tokens and cost for the batch summary (its stats are this shard's own). */
export function judgeUsageOf(stats: JudgeStats | undefined): Pick<BatchSummary, 'usage'> {
  if (!stats || stats.calls === 0) return {};
  return {
    usage: {
      promptTokens: stats.promptTokens,
      cachedTokens: stats.cachedTokens,
      completionTokens: stats.completionTokens,
      estimatedCost: stats.estimatedCost,
    },
  };
}

/**
 * A judged batch's summary. A wave batch (wave > 0) reads no new telemetry: its row
 * counts are the scan round's, so they are zero here and the wave is named.
 */
export function judgedBatchSummary(b: {
  buildId: string;
  shardId: string;
  wave: number;
  attempt: number;
  prepared: PreparedShard;
  /** Samples the batch held (judged plus those missing from the shard). */
  held: number;
  labelled: number;
  unlabeled: readonly Unlabeled[];
  judgeCalls: number;
  stats: JudgeStats | undefined;
}): BatchSummary {
  const counted = b.wave === 0 ? b.prepared : EMPTY_SHARD;
  return {
    ...batchSummaryOf(b.buildId, b.shardId, counted, b.attempt),
    samples: b.held,
    labelled: b.labelled,
    unlabeled: b.unlabeled.length,
    unlabeledByCause: countBy(b.unlabeled, (u) => u.error),
    judgeCalls: b.judgeCalls,
    ...judgeUsageOf(b.stats),
    ...(b.wave > 0 ? { wave: b.wave } : {}),
  };
}

/** Counts by key, keys sorted (stable JSON). */
export function countBy<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const it of items) out[key(it)] = (out[key(it)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort());
}

/**
 * A batch's committed annotated rows (JSONL), checked line by line; a string naming
 * the first problem when a line is not what a batch writes (the fan-in then judges
 * the batch again rather than publish without it).
 */
const BATCH_ROW_SHAPE = rowShape({ annotated: true, stratify: [] });

export function parseBatchRows(text: string): AnnotatedRow[] | string {
  const rows: AnnotatedRow[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    if (lines[n]!.length === 0) continue;
    let v: unknown;
    try {
      v = JSON.parse(lines[n]!);
    } catch {
      return `are corrupt: line ${n + 1} is not JSON`;
    }
    // Rows this build wrote: complete but for a timestamp the input may not have had.
    const problem = checkAnnotated(v, Infinity, BATCH_ROW_SHAPE);
    if (problem) return `are corrupt: line ${n + 1} is not an annotated row (${problem.reason})`;
    rows.push(v as AnnotatedRow);
  }
  return rows;
}

/** The conversation of a sample id (`conversationId:turnIndex`). */
export function conversationOfSampleId(sampleId: string): string {
  const i = sampleId.lastIndexOf(':');
  return i < 0 ? sampleId : sampleId.slice(0, i);
}
