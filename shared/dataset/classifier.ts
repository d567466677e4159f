/**
 * The `classifier` format: `{"text", "label"}` lines for encoder routers (BERT-style
 * sequence classification, Hugging Face text-classification). `text` is the router
 * input ({@link joinTurns}: earlier user messages, oldest first, then the message to
 * route, joined by the separator); `label` is 0 (reasoning) or 1 (non-reasoning), as
 * in train.jsonl. Line i of classifier/train.jsonl is line i of train.jsonl.
 */
import type { DatasetLine, Label } from '../contracts/rows';
import { DEFAULT_TURN_SEPARATOR, joinTurns, turnsOf } from './router-input';

export interface ClassifierExample {
  text: string;
  label: Label;
}

export function toClassifierExample(
  line: Pick<DatasetLine, 'messages' | 'label'>,
  separator = DEFAULT_TURN_SEPARATOR,
): ClassifierExample {
  const { history, message } = turnsOf(line);
  return { text: joinTurns(history, message, separator), label: line.label };
}
