/**
 * The text a router reads for one sample: the user's earlier messages in the
 * conversation (oldest first), then the message to route, joined by one separator.
 * The chat format's user message and the classifier's `text` are this same string, so
 * one function builds the router's input at training and at serving time.
 */
import type { DatasetLine } from '../contracts/rows';

/**
 * Between two user messages. A line of its own that ordinary prompts do not contain,
 * so a model (or a person) can tell where one message ends and the next begins.
 */
export const DEFAULT_TURN_SEPARATOR = '\n\n[next user message]\n\n';

/** History (oldest first) and the current message, joined by `separator`. */
export function joinTurns(
  history: readonly string[],
  message: string,
  separator = DEFAULT_TURN_SEPARATOR,
): string {
  return history.length === 0 ? message : [...history, message].join(separator);
}

/** A dataset line's user messages split into the history and the message to route. */
export function turnsOf(line: Pick<DatasetLine, 'messages'>): {
  history: string[];
  message: string;
} {
  const user = line.messages.filter((m) => m.role === 'user').map((m) => m.content);
  const message = user.pop() ?? '';
  return { history: user, message };
}
