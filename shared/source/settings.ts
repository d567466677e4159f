/**
 * Settings that choose and configure the telemetry source (`SFT_TELEMETRY_SOURCE`:
 * kusto | file) and the selection it extracts. Parsed once at the edge from the app
 * settings (environment); no keys: Kusto and blob storage are reached with the
 * managed identity in Azure (AZURE_CLIENT_ID names a user-assigned one) and with the
 * developer's login locally.
 */
import { z } from 'zod';
import { QUERY_NAMES, SelectionSchema, SOURCE_KINDS, type Selection } from './telemetry';
import { PermanentError } from '../errors';

const DAY_MS = 86_400_000;

const int = (min: number) => z.coerce.number().pipe(z.number().int().min(min));

/** `file:PATH`, `blob:CONTAINER/NAME`, or an https blob URL. */
export const FileLocationSchema = z.string().transform((s, ctx) => {
  if (s.startsWith('file:') && s.length > 5) return { kind: 'path' as const, path: s.slice(5) };
  const m = /^blob:([a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?)\/(.+)$/.exec(s);
  if (m) return { kind: 'container' as const, container: m[1]!, name: m[2]! };
  if (/^https:\/\/[^/]+\/[^/]+\/.+/.test(s)) return { kind: 'url' as const, url: s };
  ctx.addIssue({
    code: 'custom',
    message:
      'expected file:PATH, blob:CONTAINER/NAME or https://ACCOUNT.blob.core.windows.net/CONTAINER/NAME',
  });
  return z.NEVER;
});
export type FileLocation = z.infer<typeof FileLocationSchema>;

const EnvSchema = z.object({
  SFT_TELEMETRY_SOURCE: z.enum(SOURCE_KINDS).default('file'),
  SFT_KUSTO_CLUSTER_URI: z.url({ protocol: /^https?$/ }).optional(),
  SFT_KUSTO_DATABASE: z.string().min(1).optional(),
  SFT_KUSTO_TABLE: z.string().min(1).default('Telemetry'),
  SFT_KUSTO_SERVER_TIMEOUT_MS: int(1_000).default(600_000),
  SFT_KUSTO_MAX_RETRIES: int(0).default(5),
  SFT_TELEMETRY_FILE: FileLocationSchema.optional(),
  SFT_QUERY: z.enum(QUERY_NAMES).default('sft_session_router_first_turns'),
  /** An explicit window; otherwise the SFT_WINDOW_DAYS whole UTC days before today. */
  SFT_WINDOW_START: z.string().optional(),
  SFT_WINDOW_END: z.string().optional(),
  SFT_WINDOW_DAYS: int(1).default(7),
  SFT_MAX_CONVERSATION_SPAN_MS: int(1).default(DAY_MS),
  /** JSON array of {name, min, max, cap} for the stratified query. */
  SFT_BUCKETS: z.string().optional(),
  SFT_SELECTION_SEED: z.string().min(1).default('42'),
});

export const KustoSettingsSchema = z.object({
  clusterUri: z.string(),
  database: z.string(),
  table: z.string(),
  serverTimeoutMs: z.number().int(),
  maxRetries: z.number().int(),
});
export type KustoSettings = z.infer<typeof KustoSettingsSchema>;

export type SourceSettings =
  | { source: 'kusto'; kusto: KustoSettings; selection: Selection }
  | { source: 'file'; file: FileLocation; selection: Selection };

export class SourceSettingsError extends PermanentError {}

/** The `days` whole UTC days before `now`'s day: [today - days, today). */
export function trailingWindow(now: Date, days: number): { start: string; end: string } {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return {
    start: new Date(today - days * DAY_MS).toISOString(),
    end: new Date(today).toISOString(),
  };
}

/** Reads the source settings; a missing or malformed one is a SourceSettingsError naming it. */
export function loadSourceSettings(
  env: Record<string, string | undefined> = process.env,
  now: Date = new Date(),
): SourceSettings {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new SourceSettingsError(`${issue.path.join('.')}: ${issue.message}`, {
      cause: parsed.error,
    });
  }
  const e = parsed.data;
  const window =
    e.SFT_WINDOW_START || e.SFT_WINDOW_END
      ? { start: e.SFT_WINDOW_START ?? '', end: e.SFT_WINDOW_END ?? '' }
      : trailingWindow(now, e.SFT_WINDOW_DAYS);
  let buckets: unknown;
  if (e.SFT_BUCKETS !== undefined) {
    try {
      buckets = JSON.parse(e.SFT_BUCKETS);
    } catch (cause) {
      throw new SourceSettingsError('SFT_BUCKETS: not JSON', { cause });
    }
  }
  const sel = SelectionSchema.safeParse({
    query: e.SFT_QUERY,
    window: { ...window, maxConversationSpanMs: e.SFT_MAX_CONVERSATION_SPAN_MS },
    ...(e.SFT_QUERY === 'sft_stratified_by_turn_count'
      ? { seed: e.SFT_SELECTION_SEED, ...(buckets !== undefined ? { buckets } : {}) }
      : {}),
  });
  if (!sel.success) {
    const issue = sel.error.issues[0]!;
    throw new SourceSettingsError(`selection ${issue.path.join('.')}: ${issue.message}`, {
      cause: sel.error,
    });
  }
  if (e.SFT_TELEMETRY_SOURCE === 'kusto') {
    if (!e.SFT_KUSTO_CLUSTER_URI || !e.SFT_KUSTO_DATABASE)
      throw new SourceSettingsError(
        'SFT_TELEMETRY_SOURCE=kusto needs SFT_KUSTO_CLUSTER_URI and SFT_KUSTO_DATABASE',
      );
    return {
      source: 'kusto',
      selection: sel.data,
      kusto: {
        clusterUri: e.SFT_KUSTO_CLUSTER_URI,
        database: e.SFT_KUSTO_DATABASE,
        table: e.SFT_KUSTO_TABLE,
        serverTimeoutMs: e.SFT_KUSTO_SERVER_TIMEOUT_MS,
        maxRetries: e.SFT_KUSTO_MAX_RETRIES,
      },
    };
  }
  if (!e.SFT_TELEMETRY_FILE)
    throw new SourceSettingsError('SFT_TELEMETRY_SOURCE=file needs SFT_TELEMETRY_FILE');
  return { source: 'file', selection: sel.data, file: e.SFT_TELEMETRY_FILE };
}

/** What each setting means, for the README and `--help`. */
export const SOURCE_SETTINGS_HELP: Record<string, string> = {
  SFT_TELEMETRY_SOURCE: 'kusto | file (default file)',
  SFT_KUSTO_CLUSTER_URI: 'https://CLUSTER.REGION.kusto.windows.net',
  SFT_KUSTO_DATABASE: 'database holding the telemetry table',
  SFT_KUSTO_TABLE: 'table the queries read as Telemetry (default Telemetry)',
  SFT_KUSTO_SERVER_TIMEOUT_MS: 'Kusto servertimeout per query (default 600000)',
  SFT_KUSTO_MAX_RETRIES: 'retries when throttled or unavailable (default 5)',
  SFT_TELEMETRY_FILE: 'file:PATH | blob:CONTAINER/NAME | https blob URL (JSONL, .gz ok)',
  SFT_QUERY: 'sft_session_router_first_turns | sft_stratified_by_turn_count',
  SFT_WINDOW_START: 'ISO instant: first turns at or after it (with SFT_WINDOW_END)',
  SFT_WINDOW_END: 'ISO instant: first turns before it',
  SFT_WINDOW_DAYS: 'otherwise: the N whole UTC days before today (default 7)',
  SFT_MAX_CONVERSATION_SPAN_MS: 'later turns read up to end + this (default 1 day)',
  SFT_BUCKETS: 'stratified: JSON [{name,min,max,cap}] (default A 3-5, B 6-10, C 11-20, ~25k)',
  SFT_SELECTION_SEED: 'stratified: seed of the per-bucket picks (default 42)',
};
