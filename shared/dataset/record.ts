/**
 * Dataset lines: how a selected annotated row is written for training.
 */
import {
  LABEL_NAMES,
  TURN_FIELDS,
  defaultSampleId,
  type AnnotatedRow,
  type DatasetLine,
} from '../contracts/rows';
import type { Strata } from '../strata/strata';

const NOT_METADATA = new Set<string>([...TURN_FIELDS, 'label', 'sampleId', 'history']);

/** Fields of a row beyond the contract, kept as metadata (null when there are none). */
export function metadataOf(row: Record<string, unknown>): Record<string, unknown> | null {
  let meta: Record<string, unknown> | null = null;
  for (const k of Object.keys(row)) {
    if (NOT_METADATA.has(k)) continue;
    (meta ??= {})[k] = row[k];
  }
  return meta;
}

export function sampleIdOf(row: AnnotatedRow): string {
  return row.sampleId ?? defaultSampleId(row);
}

/**
 * Chat messages for a sample: the previous user messages (conversation-aware
 * pipeline), oldest first, then the current one. Telemetry holds no assistant
 * replies, so history is user turns only.
 */
export function messagesOf(row: Pick<AnnotatedRow, 'userMessage' | 'history'>) {
  const messages = (row.history ?? []).map((content) => ({ role: 'user' as const, content }));
  messages.push({ role: 'user', content: row.userMessage });
  return messages;
}

export function toDatasetLine(
  row: AnnotatedRow,
  opts: { id: string; strata: Strata; weight: number; duplicateOf?: string },
): DatasetLine {
  const line: DatasetLine = {
    id: opts.id,
    label: row.label,
    labelName: LABEL_NAMES[row.label],
    messages: messagesOf(row),
    strata: opts.strata,
    weight: opts.weight,
    conversationId: row.conversationId,
    turnIndex: row.turnIndex,
    turnCount: row.turnCount,
    model: row.model,
    numRequests: row.numRequests,
    turnDurationMs: row.turnDurationMs,
    promptTokenDelta: row.promptTokenDelta,
    tools: row.tools,
    timestamp: row.timestamp,
  };
  if (opts.duplicateOf !== undefined) {
    line.upsampled = true;
    line.duplicateOf = opts.duplicateOf;
  }
  const meta = metadataOf(row);
  if (meta) line.metadata = meta;
  return line;
}
