/**
 * Dataset formats (pure): what a balanced dataset becomes for training.
 * - formats: the format list (`--format chat,classifier,parquet`; `jsonl` always)
 * - router-input: history + message joined into the router's input text
 * - chat: `{"messages": [system, user, assistant]}` examples, their checks and tallies
 * - chat-check: OpenAI's chat fine-tuning cookbook checks and token count
 * - classifier: `{"text", "label"}` examples
 * - table: the flat row of a columnar (Parquet) split
 * - card: the README.md dataset card with Hugging Face front matter
 * - yaml: the small YAML writer behind the card
 * - settings: system prompt, label words, chat token limit, license (flag, setting, field)
 */
export { OUTPUT_FORMATS, UnknownFormatError, parseFormats, type OutputFormat } from './formats';
export { DEFAULT_TURN_SEPARATOR, joinTurns, turnsOf } from './router-input';
export {
  ChatOptionsSchema,
  ChatTally,
  DEFAULT_CHAT_MAX_TOKENS,
  DEFAULT_LABEL_WORDS,
  OPENAI_MIN_EXAMPLES,
  chatOutcome,
  defaultSystemPrompt,
  toChatExample,
  type ChatExample,
  type ChatMessage,
  type ChatOptions,
  type ChatOptionsInput,
  type ChatOutcome,
  type ChatSplitReport,
} from './chat';
export {
  CHAT_FORMAT_ERRORS,
  assistantTokens,
  chatTokens,
  checkChatExample,
  utf8Length,
  type ChatCheck,
  type ChatFormatError,
  type ChatMessageLike,
  type TokenLength,
} from './chat-check';
export { toClassifierExample, type ClassifierExample } from './classifier';
export {
  STRATUM_PREFIX,
  tableColumns,
  tableRowOf,
  type ColumnType,
  type TableColumn,
  type TableRow,
  type TableValue,
} from './table';
export {
  cardFrontMatter,
  datasetCard,
  sizeCategory,
  type CardConfig,
  type DatasetCardInput,
} from './card';
export { toYaml, type YamlValue } from './yaml';
export {
  ChatMaxTokensSchema,
  DEFAULT_LICENSE,
  DatasetSettingError,
  DatasetSettingsSchema,
  LabelWordsSchema,
  LicenseSchema,
  MAX_LABEL_WORD_CHARS,
  MAX_SYSTEM_PROMPT_BYTES,
  SystemPromptSchema,
  splitLabelWords,
  type DatasetSettings,
} from '../contracts/dataset-settings';
