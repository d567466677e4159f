/**
 * Data contracts: the shapes that cross a boundary (telemetry rows, annotated rows,
 * dataset lines, the manifest). Types come from the schemas with z.infer.
 *
 * Telemetry turns are validated on the hot path by {@link checkTurn}, a hand-written
 * twin of {@link TelemetryTurnSchema} that allocates nothing; zod explains a failure.
 * test/contracts/contracts.test.ts proves the two agree on a table of good and bad rows.
 */
import { z } from 'zod';

export const LABEL_REASONING = 0 as const;
export const LABEL_NON_REASONING = 1 as const;
export const LabelSchema = z.union([z.literal(0), z.literal(1)]);
export type Label = z.infer<typeof LabelSchema>;
export const LABEL_NAMES = ['reasoning', 'non_reasoning'] as const;

const digitsAt = (s: string, i: number, n: number): number => {
  let v = 0;
  for (let j = i; j < i + n; j++) {
    const c = s.charCodeAt(j) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
};

/** Days in month `m` (1-12) of year `y` (Gregorian). */
export const daysIn = (y: number, m: number) =>
  m === 2
    ? y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)
      ? 29
      : 28
    : m === 4 || m === 6 || m === 9 || m === 11
      ? 30
      : 31;

/**
 * True for an ISO-8601 date-time with a zone that names a real instant:
 * YYYY-MM-DDTHH:MM[:SS[.fraction]] then Z or ±HH[:]MM. Checked by hand, without a
 * regex or Date.parse, because it runs on every row.
 */
export function isIsoTimestamp(s: string): boolean {
  if (s.length < 17 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84)
    return false;
  const y = digitsAt(s, 0, 4);
  const mo = digitsAt(s, 5, 2);
  const d = digitsAt(s, 8, 2);
  const h = digitsAt(s, 11, 2);
  const mi = digitsAt(s, 14, 2);
  if (
    y < 0 ||
    mo < 1 ||
    mo > 12 ||
    d < 1 ||
    d > daysIn(y, mo) ||
    h < 0 ||
    h > 23 ||
    mi < 0 ||
    mi > 59
  )
    return false;
  if (s.charCodeAt(13) !== 58) return false;
  let i = 16;
  if (s.charCodeAt(i) === 58) {
    const sec = digitsAt(s, i + 1, 2);
    if (sec < 0 || sec > 59) return false;
    i += 3;
    if (s.charCodeAt(i) === 46) {
      let n = 0;
      i++;
      while (n < 10 && digitsAt(s, i, 1) >= 0) {
        i++;
        n++;
      }
      if (n < 1 || n > 9) return false;
    }
  }
  if (i === s.length - 1 && s.charCodeAt(i) === 90) return true; // Z
  const sign = s.charCodeAt(i);
  if (sign !== 43 && sign !== 45) return false;
  const oh = digitsAt(s, i + 1, 2);
  const colon = s.charCodeAt(i + 3) === 58 ? 1 : 0;
  const om = digitsAt(s, i + 3 + colon, 2);
  return oh >= 0 && oh <= 23 && om >= 0 && om <= 59 && i + 5 + colon === s.length;
}

/** Fields of a telemetry turn; anything else on a row is kept as metadata. */
export const TURN_FIELDS = [
  'conversationId',
  'turnIndex',
  'turnCount',
  'userMessage',
  'model',
  'numRequests',
  'turnDurationMs',
  'promptTokenDelta',
  'tools',
  'timestamp',
] as const;

const finite = () => z.number().refine(Number.isFinite, 'must be a finite number');

const turnShape = {
  conversationId: z.string().min(1),
  turnIndex: finite().pipe(z.number().int().min(1)),
  turnCount: finite().pipe(z.number().int().min(1)),
  userMessage: z.string(),
  model: z.string().min(1),
  numRequests: finite().pipe(z.number().int().min(0)),
  turnDurationMs: finite().pipe(z.number().min(0)),
  promptTokenDelta: finite().pipe(z.number().int()),
  tools: z.array(z.string()),
  timestamp: z.string().refine(isIsoTimestamp, 'must be an ISO-8601 timestamp with a zone'),
};

const withinCount = (t: { turnIndex: number; turnCount: number }) => t.turnIndex <= t.turnCount;
const withinCountError = { message: 'turnIndex exceeds turnCount', path: ['turnIndex'] };

export const TelemetryTurnSchema = z.looseObject(turnShape).refine(withinCount, withinCountError);
export type TelemetryTurn = z.infer<typeof TelemetryTurnSchema>;

/** A telemetry turn with its label and, optionally, the judge details that came with it. */
export const AnnotatedRowSchema = z
  .looseObject({
    ...turnShape,
    label: LabelSchema,
    sampleId: z.string().min(1).optional(),
    /** Previous user messages, oldest first (conversation-aware pipeline). */
    history: z.array(z.string()).optional(),
  })
  .refine(withinCount, withinCountError);
export type AnnotatedRow = z.infer<typeof AnnotatedRowSchema>;

/** The id a sample goes by when the row does not name one. */
export function defaultSampleId(turn: Pick<TelemetryTurn, 'conversationId' | 'turnIndex'>): string {
  return `${turn.conversationId}:${turn.turnIndex}`;
}

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string(),
});

export const DatasetLineSchema = z.looseObject({
  id: z.string(),
  label: LabelSchema,
  labelName: z.enum(LABEL_NAMES),
  messages: z.array(ChatMessageSchema).min(1),
  strata: z.record(z.string(), z.string()),
  weight: z.number().positive(),
  conversationId: z.string(),
  turnIndex: z.number().int(),
  turnCount: z.number().int(),
  model: z.string(),
  numRequests: z.number().int(),
  turnDurationMs: z.number(),
  promptTokenDelta: z.number().int(),
  tools: z.array(z.string()),
  /** Absent when the input row had none (no time window could apply to it). */
  timestamp: z.string().optional(),
  upsampled: z.boolean().optional(),
  duplicateOf: z.string().optional(),
});
export type DatasetLine = z.infer<typeof DatasetLineSchema>;

/**
 * Why a row was set aside: stable codes (the manifest counts by them), each with what
 * it means. The one list: the QuarantineReason type is derived from it and
 * docs/quarantine.md is tested to name every code.
 */
export const QUARANTINE_REASONS = {
  invalid_json: 'the line is not valid JSON',
  not_an_object: 'the line is JSON but not an object (an array, a string, a number, null)',
  missing_field: 'a required field is absent',
  wrong_type: 'a field has the wrong type (a string for a number, a fraction for an integer)',
  out_of_range: 'a field is out of its range (negative, empty, beyond a limit)',
  non_finite_number: 'a number field is NaN or infinite',
  bad_timestamp: 'the timestamp is not an ISO 8601 date-time',
  turn_index_exceeds_turn_count: 'turnIndex is not below turnCount',
  message_too_long: 'the user message is longer than --max-message-chars (default 32,000)',
  line_too_long:
    'the line is longer than the line limit (1 MiB, MAX_LINE_BYTES, in a build; balance --max-line-bytes); its size is in the detail',
  too_deep:
    'an extra field is nested deeper than 64 levels (MAX_VALUE_DEPTH); the field is named in the detail',
  invalid_label: 'an annotated row whose label is neither 0 nor 1',
  duplicate_sample_id: 'an annotated row whose id was already seen',
  csv_ragged_row:
    'a CSV record with more or fewer fields than the header; the detail names the file, record and counts',
  csv_unterminated_quote:
    'a CSV record whose quoted field never closes before the end of the file; the detail names the file and record',
  parquet_unreadable:
    'a Parquet row group that cannot be decoded (a truncated or corrupt file); the detail names the file and rows',
} as const;

export type QuarantineReason = keyof typeof QUARANTINE_REASONS;

export interface RowProblem {
  reason: QuarantineReason;
  field?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Deepest nesting of arrays and objects an extra field may have. A deeper row is
 * quarantined `too_deep`: the JSON writers (JSON.stringify) and any recursive walk
 * would overflow the stack on it (V8 fails near 10,000 levels), and no telemetry
 * field needs more.
 */
export const MAX_VALUE_DEPTH = 64;

/** Whether `v` nests arrays/objects more than `max` levels; iterative (no stack to overflow). */
export function nestsDeeperThan(v: unknown, max: number): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const stack: { o: object; d: number }[] = [{ o: v, d: 1 }];
  for (let top = stack.pop(); top; top = stack.pop()) {
    if (top.d > max) return true;
    const items: unknown[] = Array.isArray(top.o) ? top.o : Object.values(top.o);
    for (const x of items)
      if (typeof x === 'object' && x !== null) stack.push({ o: x, d: top.d + 1 });
  }
  return false;
}

const FIXED_FIELDS = new Set<string>(TURN_FIELDS);

function checkInt(
  row: Record<string, unknown>,
  field: string,
  min: number | null,
): RowProblem | null {
  const v = row[field];
  if (v === undefined) return { reason: 'missing_field', field };
  if (typeof v !== 'number') return { reason: 'wrong_type', field };
  if (!Number.isFinite(v)) return { reason: 'non_finite_number', field };
  if (!Number.isInteger(v)) return { reason: 'wrong_type', field };
  if (min !== null && v < min) return { reason: 'out_of_range', field };
  return null;
}

function checkString(
  row: Record<string, unknown>,
  field: string,
  nonEmpty: boolean,
): RowProblem | null {
  const v = row[field];
  if (v === undefined) return { reason: 'missing_field', field };
  if (typeof v !== 'string') return { reason: 'wrong_type', field };
  if (nonEmpty && v.length === 0) return { reason: 'out_of_range', field };
  return null;
}

/**
 * Validates a parsed telemetry turn without allocating; null when it is valid.
 * Agrees with {@link TelemetryTurnSchema} (see the contracts test); `maxMessageChars`
 * adds the size limit the schema does not know.
 */
export function checkTurn(
  value: unknown,
  maxMessageChars = Infinity,
  shape?: RowShape,
): RowProblem | null {
  if (!isObject(value)) {
    const inputError = inputErrorOf(value);
    return { reason: inputError ? inputError.reason : 'not_an_object' };
  }
  const row = value;
  if (shape) {
    const p = shapeRow(row, shape);
    if (p) return p;
  }
  const p =
    checkString(row, 'conversationId', true) ??
    checkInt(row, 'turnIndex', 1) ??
    checkInt(row, 'turnCount', 1) ??
    checkString(row, 'userMessage', false) ??
    checkString(row, 'model', true) ??
    checkInt(row, 'numRequests', 0) ??
    checkInt(row, 'promptTokenDelta', null);
  if (p) return p;
  const d = row.turnDurationMs;
  if (d === undefined) return { reason: 'missing_field', field: 'turnDurationMs' };
  if (typeof d !== 'number') return { reason: 'wrong_type', field: 'turnDurationMs' };
  if (!Number.isFinite(d)) return { reason: 'non_finite_number', field: 'turnDurationMs' };
  if (d < 0) return { reason: 'out_of_range', field: 'turnDurationMs' };
  const tools = row.tools;
  if (tools === undefined) return { reason: 'missing_field', field: 'tools' };
  if (!Array.isArray(tools)) return { reason: 'wrong_type', field: 'tools' };
  for (const t of tools) if (typeof t !== 'string') return { reason: 'wrong_type', field: 'tools' };
  const ts = row.timestamp;
  if (ts === undefined && shape && !shape.required.has('timestamp')) {
    // absent and not needed: no time window can be applied to this row
  } else if (ts === undefined) return { reason: 'missing_field', field: 'timestamp' };
  else if (typeof ts !== 'string') return { reason: 'wrong_type', field: 'timestamp' };
  else if (!isIsoTimestamp(ts)) return { reason: 'bad_timestamp', field: 'timestamp' };
  if ((row.turnIndex as number) > (row.turnCount as number))
    return { reason: 'turn_index_exceeds_turn_count', field: 'turnIndex' };
  if ((row.userMessage as string).length > maxMessageChars)
    return { reason: 'message_too_long', field: 'userMessage' };
  for (const k in row)
    if (!FIXED_FIELDS.has(k) && nestsDeeperThan(row[k], MAX_VALUE_DEPTH))
      return { reason: 'too_deep', field: k };
  return null;
}

/** {@link checkTurn} plus the fields an annotated row adds. */
export function checkAnnotated(
  value: unknown,
  maxMessageChars = Infinity,
  shape?: RowShape,
): RowProblem | null {
  const p = checkTurn(value, maxMessageChars, shape);
  if (p) return p;
  const row = value as Record<string, unknown>;
  if (row.label === undefined) return { reason: 'missing_field', field: 'label' };
  if (row.label !== 0 && row.label !== 1) return { reason: 'invalid_label', field: 'label' };
  const id = row.sampleId;
  if (id !== undefined && (typeof id !== 'string' || id.length === 0))
    return { reason: 'wrong_type', field: 'sampleId' };
  const h = row.history;
  if (h !== undefined) {
    if (!Array.isArray(h)) return { reason: 'wrong_type', field: 'history' };
    for (const m of h) if (typeof m !== 'string') return { reason: 'wrong_type', field: 'history' };
  }
  return null;
}

/** A readable sentence for a problem, from zod where it has one. */
export function describeProblem(value: unknown, problem: RowProblem, annotated: boolean): string {
  if (problem.reason === 'invalid_json') return 'line is not valid JSON';
  if (problem.reason === 'message_too_long')
    return 'userMessage is longer than the configured limit';
  if (problem.reason === 'line_too_long') return 'line is longer than the limit on a row';
  if (problem.reason === 'too_deep')
    return `${problem.field ?? 'a field'} nests more than ${MAX_VALUE_DEPTH} levels of arrays/objects`;
  if (problem.reason === 'duplicate_sample_id') return 'a row with this sampleId was already read';
  const inputError = inputErrorOf(value);
  if (inputError) return inputError.detail;
  if (problem.reason === 'missing_field' && problem.field) return `${problem.field} is absent`;
  const schema = annotated ? AnnotatedRowSchema : TelemetryTurnSchema;
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue) {
      const path = issue.path.join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    }
  }
  return problem.field ? `${problem.field}: ${problem.reason}` : problem.reason;
}

/**
 * Fields a row may be mapped onto with a column mapping (`--columns`, `--label-field`):
 * the contract's fields, the label, and an annotated row's own id and history.
 */
export const MAPPABLE_FIELDS = [...TURN_FIELDS, 'label', 'sampleId', 'history'] as const;
export type MappableField = (typeof MAPPABLE_FIELDS)[number];

/** Renames: the contract field → the column of the input that holds it. */
export type ColumnMap = Partial<Record<MappableField, string>>;

/**
 * What a row must carry for one configuration, computed once ({@link rowShape}), and
 * the column renames to apply first. A field not in `required` may be absent: it gets
 * the default in {@link ROW_DEFAULTS} (the timestamp stays absent).
 */
export interface RowShape {
  required: ReadonlySet<string>;
  /** [column, field] pairs, for the renames. */
  renames: readonly (readonly [string, string])[];
}

/**
 * Defaults for absent optional fields, written to the dataset line as they are.
 * A row known by `id` (or `sampleId`) alone is a one-turn conversation of its own:
 * conversationId = that id, turnIndex = turnCount = 1.
 */
export const ROW_DEFAULTS = {
  model: 'unknown',
  numRequests: 0,
  turnDurationMs: 0,
  promptTokenDelta: 0,
} as const;

/**
 * The first element of the line the CSV and Parquet readers write for a record they
 * could not read (a ragged record, an unterminated quote, an undecodable row group):
 * `[INPUT_ERROR_TAG, reason, detail, raw]`, see {@link inputErrorLine}. The marker is
 * a JSON array, never an object, so no column of a real row (whatever its name) can
 * be mistaken for it; a real line shaped like it is not a row either (not_an_object).
 */
export const INPUT_ERROR_TAG = 'sft:input-error';

/** The line standing for a record the readers could not read. */
export function inputErrorLine(reason: QuarantineReason, detail: string, raw: string): string {
  return JSON.stringify([INPUT_ERROR_TAG, reason, detail, raw]);
}

/** The reason and sentence of an {@link inputErrorLine} parsed; null for anything else. */
export function inputErrorOf(value: unknown): { reason: QuarantineReason; detail: string } | null {
  if (!Array.isArray(value) || value.length !== 4 || value[0] !== INPUT_ERROR_TAG) return null;
  const [, reason, detail] = value as unknown[];
  if (typeof detail !== 'string' || typeof reason !== 'string') return null;
  return {
    reason: reason in QUARANTINE_REASONS ? (reason as QuarantineReason) : 'invalid_json',
    detail,
  };
}

/** Which stratifiers read which fields ({@link strataNeeding} answers the other way). */
const STRATUM_FIELDS: Record<string, readonly string[]> = {
  turnBucket: ['turnCount'],
  position: ['turnIndex', 'turnCount'],
  modelFamily: ['model'],
  complexity: ['numRequests', 'turnDurationMs', 'promptTokenDelta'],
};

/**
 * The shape of a row for a configuration: the user message always; the label for
 * annotated rows; conversationId, turnIndex and turnCount for telemetry (the
 * pipelines assemble conversations); each stratifier's fields; the timestamp only
 * when a time window is applied.
 */
export function strataNeeding(field: string): string[] {
  return Object.keys(STRATUM_FIELDS).filter((s) => STRATUM_FIELDS[s]!.includes(field));
}

export function rowShape(opts: {
  annotated: boolean;
  stratify: readonly string[];
  window?: boolean;
  columns?: ColumnMap | undefined;
}): RowShape {
  const required = new Set<string>(['userMessage']);
  if (opts.annotated) required.add('label');
  else for (const f of ['conversationId', 'turnIndex', 'turnCount']) required.add(f);
  for (const s of opts.stratify) for (const f of STRATUM_FIELDS[s] ?? []) required.add(f);
  if (opts.window) required.add('timestamp');
  const renames = Object.entries(opts.columns ?? {})
    .filter(([field, column]) => column !== undefined && column !== field)
    .map(([field, column]) => [column, field] as const);
  return { required, renames };
}

/** An unknown target in a column mapping: the message names it (a usage error for the CLI). */
export function checkColumnMap(map: Record<string, string>): string | null {
  for (const [field, column] of Object.entries(map)) {
    if (!(MAPPABLE_FIELDS as readonly string[]).includes(field))
      return `unknown field "${field}" in the column mapping (fields: ${MAPPABLE_FIELDS.join(', ')})`;
    if (typeof column !== 'string' || column.length === 0)
      return `the column for "${field}" in the column mapping is empty`;
  }
  return null;
}

/**
 * Applies a shape to a parsed row in place: renames mapped columns, takes `id` as the
 * sampleId, fills the defaults of absent optional fields. A required field that is
 * absent is `missing_field` (naming the column when it was mapped); everything else
 * is left to the checks that follow.
 */
export function shapeRow(row: Record<string, unknown>, shape: RowShape): RowProblem | null {
  for (const [column, field] of shape.renames) {
    if (row[column] !== undefined && row[field] === undefined) {
      row[field] = row[column];
      delete row[column];
    }
  }
  const req = shape.required;
  if (row.sampleId === undefined && row.conversationId === undefined) {
    const id = row.id;
    if (typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) {
      row.sampleId = String(id);
      delete row.id;
    }
  }
  if (row.conversationId === undefined && typeof row.sampleId === 'string') {
    row.conversationId = row.sampleId;
    if (row.turnIndex === undefined) row.turnIndex = 1;
    if (row.turnCount === undefined && !req.has('turnCount')) row.turnCount = 1;
  }
  for (const f of req) {
    if (row[f] === undefined) {
      const mapped = shape.renames.find(([, field]) => field === f);
      return { reason: 'missing_field', field: mapped ? mapped[0] : f };
    }
  }
  if (row.turnCount === undefined && typeof row.turnIndex === 'number')
    row.turnCount = row.turnIndex; // at least as many turns as this one's index
  if (row.tools === undefined) row.tools = [];
  if (row.model === undefined) row.model = ROW_DEFAULTS.model;
  if (row.numRequests === undefined) row.numRequests = ROW_DEFAULTS.numRequests;
  if (row.turnDurationMs === undefined) row.turnDurationMs = ROW_DEFAULTS.turnDurationMs;
  if (row.promptTokenDelta === undefined) row.promptTokenDelta = ROW_DEFAULTS.promptTokenDelta;
  return null;
}
