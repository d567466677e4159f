/**
 * The flat table a dataset split becomes in columnar formats (Parquet): one row per
 * dataset line, UTF-8 strings, an integer label, one column per stratum, the weight,
 * the ids and the signals. Pure: the Parquet adapter maps these column types to
 * physical types, and a reader of such files can check a schema against it.
 */
import type { DatasetLine } from '../contracts/rows';
import { DEFAULT_TURN_SEPARATOR, joinTurns, turnsOf } from './router-input';

export type ColumnType = 'string' | 'int32' | 'double' | 'boolean' | 'string_list';

export interface TableColumn {
  name: string;
  type: ColumnType;
  nullable: boolean;
  /** Free text: min/max statistics on it help no query, so writers may skip them. */
  freeText?: boolean;
}

/** Prefix of the stratum columns: `stratum_turnBucket`, `stratum_position`, ... */
export const STRATUM_PREFIX = 'stratum_';

const col = (name: string, type: ColumnType, nullable = false, freeText = false): TableColumn => ({
  name,
  type,
  nullable,
  ...(freeText ? { freeText } : {}),
});

/** The columns of a split's table, given the build's stratifier names. */
export function tableColumns(strata: readonly string[]): TableColumn[] {
  return [
    col('id', 'string'),
    col('text', 'string', false, true),
    col('message', 'string', false, true),
    col('history', 'string_list', false, true),
    col('label', 'int32'),
    col('labelName', 'string'),
    ...strata.map((s) => col(`${STRATUM_PREFIX}${s}`, 'string', true)),
    col('weight', 'double'),
    col('conversationId', 'string'),
    col('turnIndex', 'int32'),
    col('turnCount', 'int32'),
    col('model', 'string'),
    col('numRequests', 'int32'),
    col('turnDurationMs', 'double'),
    col('promptTokenDelta', 'int32'),
    col('tools', 'string_list'),
    col('timestamp', 'string'),
    col('upsampled', 'boolean'),
    col('duplicateOf', 'string', true),
    col('metadata', 'string', true, true),
  ];
}

export type TableValue = string | number | boolean | string[] | null;
export type TableRow = Record<string, TableValue>;

/**
 * A dataset line as a table row. `text` is the router input (as in the classifier
 * format); `metadata`, when the line has any, is its JSON text.
 */
export function tableRowOf(
  line: DatasetLine,
  strata: readonly string[],
  separator = DEFAULT_TURN_SEPARATOR,
): TableRow {
  const { history, message } = turnsOf(line);
  const row: TableRow = {
    id: line.id,
    text: joinTurns(history, message, separator),
    message,
    history,
    label: line.label,
    labelName: line.labelName,
  };
  for (const s of strata) row[`${STRATUM_PREFIX}${s}`] = line.strata[s] ?? null;
  Object.assign(row, {
    weight: line.weight,
    conversationId: line.conversationId,
    turnIndex: line.turnIndex,
    turnCount: line.turnCount,
    model: line.model,
    numRequests: line.numRequests,
    turnDurationMs: line.turnDurationMs,
    promptTokenDelta: line.promptTokenDelta,
    tools: line.tools,
    timestamp: line.timestamp,
    upsampled: line.upsampled === true,
    duplicateOf: line.duplicateOf ?? null,
    metadata: line.metadata === undefined ? null : JSON.stringify(line.metadata),
  });
  return row;
}
