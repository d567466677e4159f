/**
 * FileSource: a telemetry export (JSONL, gzipped when the name ends in .gz) on disk or
 * in blob storage, giving the same selection as queries/*.kql for the same parameters
 * (shared/selection.ts says how, and where the shard hash differs from Kusto's).
 *
 * Each pass streams the whole export: planning reads it once, each shard once more and
 * keeps only its own conversations. Lines that are not JSON, or whose conversationId,
 * turnIndex, turnCount or timestamp are unusable, belong to no shard: shard 0
 * quarantines them, so each is reported exactly once per run.
 */
import type { BlobClient } from '@azure/storage-blob';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { forEachLine, InputFileError, openInput } from './lines';
import { MAX_LINE_BYTES } from '../../shared/build/spec';
import { tooLongDetail } from '../../shared/build/batch';
import {
  checkTurn,
  describeProblem,
  type RowProblem,
  type TelemetryTurn,
} from '../../shared/contracts/rows';
import {
  fileShardOf,
  keyProblem,
  Selector,
  type SelectionKey,
} from '../../shared/source/selection';
import {
  planShardCounts,
  ShardPlanError,
  ShardSpecSchema,
  ShardTruncatedError,
  type Selection,
  type ShardLimits,
  type ShardPlan,
  type ShardReadStats,
  type ShardSink,
  type ShardSpec,
  type TelemetrySource,
} from '../../shared/source/telemetry';

export interface FileSourceOptions {
  /** Opens the export afresh for each pass (already gunzipped). */
  open: () => Promise<Readable>;
  /** Shown in quarantine records and errors. */
  name: string;
  maxMessageChars?: number;
}

interface Row {
  value: Record<string, unknown>;
  line: string;
  lineNo: number;
}

type BadLine = {
  lineNo: number;
  line: string;
  problem: RowProblem;
  value: unknown;
  detail?: string;
};

/** Opens a blob for reading, gunzipping `*.gz`. */
export async function openBlob(blob: BlobClient): Promise<Readable> {
  try {
    const res = await blob.download();
    const body = res.readableStreamBody as Readable | undefined;
    if (!body) throw new Error('blob download returned no body');
    return blob.name.endsWith('.gz') ? body.pipe(createGunzip()) : body;
  } catch (cause) {
    throw new InputFileError(`cannot read blob ${blob.url}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

export class FileSource implements TelemetrySource {
  readonly kind = 'file' as const;
  private readonly maxMessageChars: number;

  constructor(private readonly opts: FileSourceOptions) {
    this.maxMessageChars = opts.maxMessageChars ?? 32_000;
  }

  static fromPath(path: string, maxMessageChars?: number): FileSource {
    return new FileSource({ open: () => openInput(path), name: path, maxMessageChars });
  }

  static fromBlob(blob: BlobClient, maxMessageChars?: number): FileSource {
    return new FileSource({ open: () => openBlob(blob), name: blob.url, maxMessageChars });
  }

  /**
   * One pass: key-valid rows to `onRow`, the rest to `onBad`; the number of lines with
   * bytes that are not valid UTF-8. A line over MAX_LINE_BYTES is read only that far
   * and set aside as `line_too_long` with its size.
   */
  private async scan(
    onRow: (key: SelectionKey, row: Row, bytes: number) => void,
    onBad: (bad: BadLine) => void,
  ): Promise<number> {
    const stream = await this.opts.open();
    let invalidUtf8 = 0;
    await forEachLine(
      stream,
      (line, lineNo, _at, len, badUtf8) => {
        // Cut short, or exactly one byte over (a trailing CR does not count).
        if (
          len > MAX_LINE_BYTES &&
          (len > MAX_LINE_BYTES + 1 || Buffer.byteLength(line) > MAX_LINE_BYTES)
        ) {
          onBad({
            lineNo,
            line: line.slice(0, 500),
            problem: { reason: 'line_too_long' },
            value: undefined,
            detail: tooLongDetail(len),
          });
          return;
        }
        if (badUtf8) invalidUtf8++;
        if (line.trim().length === 0) return;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          onBad({ lineNo, line, problem: { reason: 'invalid_json' }, value: undefined });
          return;
        }
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          onBad({ lineNo, line, problem: { reason: 'not_an_object' }, value });
          return;
        }
        const obj = value as Record<string, unknown>;
        const problem = keyProblem(obj);
        if (problem) {
          onBad({ lineNo, line, problem, value });
          return;
        }
        onRow(
          obj as unknown as SelectionKey,
          { value: obj, line, lineNo },
          Buffer.byteLength(line) + 1,
        );
      },
      0,
      { maxLineBytes: MAX_LINE_BYTES, checkUtf8: true },
    );
    return invalidUtf8;
  }

  async planShards(selection: Selection, limits?: Partial<ShardLimits>): Promise<ShardPlan> {
    const selector = new Selector<Row>(selection, { shardCount: 1, shard: -1, keepRows: false });
    await this.scan(
      (key, row, bytes) => selector.add(key, row, bytes),
      () => undefined,
    );
    const result = selector.finish();
    const thresholds =
      selection.query === 'sft_stratified_by_turn_count' ? result.thresholds : undefined;
    return planShardCounts(
      'file',
      selection,
      limits,
      (n) => {
        const counts = Array.from({ length: n }, (_, index) => ({ index, rows: 0, bytes: 0 }));
        for (const c of result.conversations) {
          const s = counts[fileShardOf(c.conversationId, n)]!;
          s.rows += c.rowCount;
          s.bytes += c.bytes;
        }
        return Promise.resolve(counts);
      },
      thresholds,
    );
  }

  async readShard(specInput: ShardSpec, sink: ShardSink): Promise<ShardReadStats> {
    const spec = ShardSpecSchema.parse(specInput);
    const { index, shardCount } = spec;
    const selector = new Selector<Row>(spec.selection, {
      shardCount,
      shard: index,
      thresholds: spec.thresholds,
      keepRows: true,
    });
    const stats: ShardReadStats = {
      shard: index,
      rows: 0,
      turns: 0,
      quarantined: 0,
      quarantinedByReason: {},
    };
    const quarantine = (
      lineNo: number,
      line: string,
      problem: RowProblem,
      value: unknown,
      detail?: string,
    ) => {
      stats.quarantined++;
      stats.quarantinedByReason[problem.reason] =
        (stats.quarantinedByReason[problem.reason] ?? 0) + 1;
      sink.onQuarantine({
        shard: index,
        origin: this.opts.name,
        line: lineNo,
        reason: problem.reason,
        ...(problem.field !== undefined ? { field: problem.field } : {}),
        detail:
          detail ??
          (problem.reason === 'not_an_object'
            ? 'line is not a JSON object'
            : describeProblem(value, problem, false)),
        raw: line.length > 500 ? `${line.slice(0, 500)}…` : line,
        ...(value !== undefined ? { row: value } : {}),
      });
    };
    const bad: BadLine[] = [];
    const invalidUtf8 = await this.scan(
      (key, row, bytes) => selector.add(key, row, bytes),
      (b) => {
        if (index === 0) bad.push(b);
      },
    );
    const result = selector.finish();
    const rows = result.conversations.reduce((a, c) => a + c.rows.length, 0);
    if (spec.expectedRows !== undefined && rows !== spec.expectedRows)
      throw rows < spec.expectedRows
        ? new ShardTruncatedError(
            index,
            shardCount,
            `${rows} rows, the plan counted ${spec.expectedRows}`,
          )
        : new ShardPlanError(
            `shard ${index} of ${shardCount}: ${rows} rows, the plan counted ${spec.expectedRows}; ` +
              `${this.opts.name} changed since planning: plan again`,
          );
    for (const b of bad) quarantine(b.lineNo, b.line, b.problem, b.value, b.detail);
    // Counted once per run, like the bad lines: by shard 0.
    if (index === 0 && invalidUtf8 > 0) stats.invalidUtf8Lines = invalidUtf8;
    for (const conv of result.conversations)
      for (const row of conv.rows) {
        stats.rows++;
        const problem = checkTurn(row.value, this.maxMessageChars);
        if (problem) {
          quarantine(row.lineNo, row.line, problem, row.value);
          continue;
        }
        stats.turns++;
        sink.onTurn(row.value as TelemetryTurn);
      }
    return stats;
  }
}
