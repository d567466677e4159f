/**
 * The telemetry table, declared once: the KQL in queries/ is checked against it (by
 * Kusto's own language service, in test/kusto/), the Kusto source maps result columns
 * by it, and test/kusto/schema.test.ts proves it agrees with {@link TelemetryTurnSchema}.
 *
 * One row per conversation turn. A table with other names is mapped by a stored
 * function called `Telemetry` (see queries/README.md) or by the `KUSTO_TABLE` setting.
 */
import { TURN_FIELDS } from '../contracts/rows';

/** Kusto scalar types the table uses. */
export type KqlType = 'string' | 'long' | 'real' | 'datetime' | 'dynamic';

export interface TelemetryColumn {
  readonly name: (typeof TURN_FIELDS)[number];
  readonly type: KqlType;
  /** What the column holds, for the docs. */
  readonly doc: string;
}

/** The name the queries use for the table. */
export const TELEMETRY_TABLE = 'Telemetry';

export const TELEMETRY_COLUMNS: readonly TelemetryColumn[] = [
  { name: 'conversationId', type: 'string', doc: 'conversation (session) id' },
  { name: 'turnIndex', type: 'long', doc: '1-based position of the turn' },
  { name: 'turnCount', type: 'long', doc: 'turns in the whole conversation' },
  { name: 'userMessage', type: 'string', doc: 'what the user typed' },
  { name: 'model', type: 'string', doc: 'model the user chose' },
  { name: 'numRequests', type: 'long', doc: 'model/tool requests made for the turn' },
  { name: 'turnDurationMs', type: 'real', doc: 'wall time of the turn, milliseconds' },
  { name: 'promptTokenDelta', type: 'long', doc: 'prompt token growth over the turn' },
  { name: 'tools', type: 'dynamic', doc: 'array of tool names used in the turn' },
  { name: 'timestamp', type: 'datetime', doc: 'when the turn started (UTC)' },
];

/** The schema as Kusto writes it: `(conversationId:string, turnIndex:long, ...)`. */
export function telemetrySchemaText(): string {
  return `(${TELEMETRY_COLUMNS.map((c) => `${c.name}:${c.type}`).join(', ')})`;
}

/** The management command that creates (or extends) the table. */
export function createTableCommand(table = TELEMETRY_TABLE): string {
  return `.create-merge table ${table} ${telemetrySchemaText()}`;
}
