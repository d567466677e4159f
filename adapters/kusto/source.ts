/**
 * KustoSource: the seed's queries (queries/*.kql) run in Azure Data Explorer through
 * azure-kusto-data, one query per shard, with an @azure/identity credential, a client
 * request id per attempt, a server timeout, retries when throttled or briefly
 * unavailable, and every returned row validated into a telemetry turn (bad rows are
 * quarantined with their reason). A result cut at Kusto's limits is never used: it is
 * a ShardTruncatedError naming the shard.
 */
import {
  Client as KustoClient,
  ClientRequestProperties,
  KustoConnectionStringBuilder,
  type KustoResponseDataSet,
} from 'azure-kusto-data';
import { isTransient, isTransientStatus, statusOf } from '../../shared/errors';
import type { TokenCredential } from '@azure/identity';
import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkTurn, describeProblem, type TelemetryTurn } from '../../shared/contracts/rows';
import {
  planShardCounts,
  ShardPlanError,
  ShardSpecSchema,
  ShardTruncatedError,
  SourceQueryError,
  SourceTransientError,
  ThresholdSchema,
  type QueryName,
  type Selection,
  type ShardCount,
  type ShardLimits,
  type ShardPlan,
  type ShardReadStats,
  type ShardSink,
  type ShardSpec,
  type TelemetrySource,
  type Threshold,
  KUSTO_MAX_ROWS,
} from '../../shared/source/telemetry';
import {
  countQuery,
  queryParameters,
  shardParameters,
  thresholdQuery,
  withTable,
} from '../../shared/source/kql';
import { TELEMETRY_TABLE } from '../../shared/source/schema';

export interface KustoSourceOptions {
  /** https://CLUSTER.REGION.kusto.windows.net (http://127.0.0.1:PORT in tests). */
  clusterUri: string;
  database: string;
  /** Table the queries read as `Telemetry` (default: Telemetry). */
  table?: string;
  /** Managed identity in Azure, developer login locally; null sends no token (loopback only). */
  credential: TokenCredential | null;
  /** Kusto's `servertimeout` for each query (default 10 minutes). */
  serverTimeoutMs?: number;
  /** Attempts after the first when throttled or unavailable (default 5). */
  maxRetries?: number;
  /** First backoff; doubles each retry, with jitter (default 1 s). */
  retryBaseMs?: number;
  maxMessageChars?: number;
  /** Folder holding the .kql files (default: the repo's queries/). */
  queriesDir?: string;
  /** Correlates the client request ids of one run (default: a new uuid). */
  runId?: string;
  sleep?: (ms: number) => Promise<void>;
}

const APP = 'sft-balancer';

export const SignalProfileSchema = z.object({
  signal: z.enum(['numRequests', 'turnDurationMs', 'toolDiversity', 'promptTokenDelta']),
  n: z.number().int(),
  p10: z.number(),
  p25: z.number(),
  p50: z.number(),
  p75: z.number(),
  p90: z.number(),
});
export type SignalProfile = z.infer<typeof SignalProfileSchema>;

/**
 * The package's queries/: the nearest one above this module, whether run from source
 * (adapters/kusto/) or compiled (dist/adapters/kusto/).
 */
export function defaultQueriesDir(): string {
  for (let dir = dirname(__dirname); ; dir = dirname(dir)) {
    const candidate = join(dir, 'queries');
    if (existsSync(join(candidate, 'sft_session_router_first_turns.kql'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`queries/ not found above ${__dirname}`);
  }
}

/** The text of queries/NAME.kql. */
export function readQuery(name: QueryName, dir = defaultQueriesDir()): string {
  return readFileSync(join(dir, `${name}.kql`), 'utf8');
}

const TRUNCATION = /E_QUERY_RESULT_SET_TOO_LARGE|80DA0003|LimitsExceeded|truncat/i;
interface AxiosLike {
  isAxiosError?: boolean;
  code?: string;
  message?: string;
  response?: { status?: number; data?: unknown; headers?: Record<string, unknown> };
}

function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const ax = err as AxiosLike & { inner?: AxiosLike };
  const data = ax.response?.data ?? ax.inner?.response?.data;
  const detail =
    data === undefined ? '' : ` ${typeof data === 'string' ? data : JSON.stringify(data)}`;
  return `${err.message}${detail}`;
}

type Failure = { kind: 'retry'; afterMs?: number } | { kind: 'truncated' } | { kind: 'permanent' };

/**
 * Sorts an SDK error: throttled/unavailable (retry), a truncation, or permanent. The
 * HTTP status decides as everywhere (shared/errors: 408, 429, 5xx retry); the SDK's
 * ThrottlingError carries its 429 response as `inner`.
 */
export function classifyKustoError(err: unknown): Failure {
  const e = err as AxiosLike & { inner?: AxiosLike };
  const response = e.response ?? e.inner?.response;
  const status = statusOf(err);
  if (status !== undefined && isTransientStatus(status)) {
    const ra = Number(response?.headers?.['retry-after']);
    return Number.isFinite(ra) && ra > 0
      ? { kind: 'retry', afterMs: ra * 1000 }
      : { kind: 'retry' };
  }
  if (status === undefined && isTransient(err)) return { kind: 'retry' };
  // A truncation arrives after 200 OK, as a partial failure; an HTTP error never is one.
  if (status === undefined && TRUNCATION.test(errorText(err))) return { kind: 'truncated' };
  return { kind: 'permanent' };
}

export class KustoSource implements TelemetrySource {
  readonly kind = 'kusto' as const;
  private readonly client: KustoClient;
  private readonly opts: Required<Omit<KustoSourceOptions, 'credential' | 'queriesDir'>> & {
    queriesDir: string;
  };

  constructor(options: KustoSourceOptions) {
    const url = new URL(options.clusterUri);
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
    if (options.credential === null && !loopback)
      throw new Error(
        `a credential is required for ${url.origin}; only a loopback test server may go without`,
      );
    if (url.protocol !== 'https:' && !loopback)
      throw new Error(`Kusto cluster URI must be https: ${options.clusterUri}`);
    const kcsb =
      options.credential === null
        ? new KustoConnectionStringBuilder(`Data Source=${options.clusterUri}`)
        : KustoConnectionStringBuilder.withTokenCredential(options.clusterUri, options.credential);
    kcsb.initialCatalog = options.database;
    this.client = new KustoClient(kcsb);
    this.opts = {
      clusterUri: options.clusterUri,
      database: options.database,
      table: options.table ?? TELEMETRY_TABLE,
      serverTimeoutMs: options.serverTimeoutMs ?? 10 * 60_000,
      maxRetries: options.maxRetries ?? 5,
      retryBaseMs: options.retryBaseMs ?? 1_000,
      maxMessageChars: options.maxMessageChars ?? 32_000,
      queriesDir: options.queriesDir ?? defaultQueriesDir(),
      runId: options.runId ?? randomUUID(),
      sleep: options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    };
  }

  close(): void {
    this.client.close();
  }

  private text(name: QueryName): string {
    return withTable(readQuery(name, this.opts.queriesDir), this.opts.table);
  }

  /** Runs one query with retries; `what` names it in the client request id and errors. */
  private async run(
    what: string,
    query: string,
    parameters: Record<string, string>,
    onTruncated: (cause: unknown) => Error,
  ): Promise<KustoResponseDataSet> {
    for (let attempt = 0; ; attempt++) {
      const props = new ClientRequestProperties();
      props.clientRequestId = `${APP}.${what};${this.opts.runId};${attempt}`;
      props.application = APP;
      props.setTimeout(this.opts.serverTimeoutMs);
      for (const [k, v] of Object.entries(parameters)) props.setParameter(k, v);
      try {
        return await this.client.execute(this.opts.database, query, props);
      } catch (err) {
        const f = classifyKustoError(err);
        if (f.kind === 'truncated') throw onTruncated(err);
        if (f.kind === 'permanent')
          throw new SourceQueryError(`Kusto rejected ${what}: ${errorText(err)}`, { cause: err });
        if (attempt >= this.opts.maxRetries)
          throw new SourceTransientError(
            `Kusto ${what} still throttled or unavailable after ${attempt + 1} attempts: ${errorText(err)}`,
            { cause: err },
          );
        const backoff = this.opts.retryBaseMs * 2 ** attempt;
        await this.opts.sleep(Math.min(f.afterMs ?? backoff * (0.5 + Math.random() / 2), 60_000));
      }
    }
  }

  async planShards(selection: Selection, limits?: Partial<ShardLimits>): Promise<ShardPlan> {
    const text = this.text(selection.query);
    let thresholds: Record<string, Threshold | null> | undefined;
    if (selection.query === 'sft_stratified_by_turn_count') {
      const res = await this.run(
        'planShards.thresholds',
        thresholdQuery(text),
        queryParameters(selection, 1, -1),
        (cause) => new ShardPlanError('the threshold query was truncated', { cause }),
      );
      const rows = primaryRows(res);
      thresholds = {};
      for (const b of selection.buckets) thresholds[b.name] = null;
      for (const r of rows) {
        const bucket = String(r.bucket);
        thresholds[bucket] = ThresholdSchema.parse({
          key: r.sampleKey,
          conversationId: r.conversationId,
        });
      }
    }
    const counter = async (n: number): Promise<ShardCount[]> => {
      const res = await this.run(
        `planShards.count${n}`,
        countQuery(text),
        queryParameters(selection, n, -1, thresholds),
        (cause) => new ShardPlanError(`the count query for ${n} shards was truncated`, { cause }),
      );
      return primaryRows(res).map((r) => ({
        index: Number(r.shardIndex),
        rows: Number(r.rows),
        bytes: Number(r.bytes),
      }));
    };
    return planShardCounts('kusto', selection, limits, counter, thresholds);
  }

  /**
   * Percentiles of the complexity signals over first turns of complete conversations
   * (queries/sft_complexity_signal_profile.kql), to set the balance config's
   * `complexity` thresholds from the data; `shardCount`/`shard` sample a part.
   */
  async profileSignals(
    window: Selection['window'],
    shardCount = 1,
    shard = -1,
  ): Promise<SignalProfile[]> {
    const text = withTable(
      readFileSync(join(this.opts.queriesDir, 'sft_complexity_signal_profile.kql'), 'utf8'),
      this.opts.table,
    );
    const params = queryParameters(
      { query: 'sft_session_router_first_turns', window, turns: 'first' },
      shardCount,
      shard,
    );
    delete params.allTurns; // the profile declares no such parameter
    const res = await this.run(
      'profileSignals',
      text,
      params,
      (cause) => new SourceQueryError('the profile query was truncated', { cause }),
    );
    return primaryRows(res).map((r) => SignalProfileSchema.parse(r));
  }

  async readShard(specInput: ShardSpec, sink: ShardSink): Promise<ShardReadStats> {
    const spec = ShardSpecSchema.parse(specInput);
    const { index, shardCount } = spec;
    const truncated = (
      cause: unknown,
      why = 'Kusto truncated the result (over 500,000 rows or 64 MB); plan more shards',
    ) =>
      new ShardTruncatedError(index, shardCount, why, cause === undefined ? undefined : { cause });
    const res = await this.run(
      `readShard.${index}of${shardCount}`,
      this.text(spec.selection.query),
      shardParameters(spec),
      truncated,
    );
    const table = primaryTable(res);
    const names = table.columns.map((c) => c.name ?? '');
    const raw = table._rows as unknown[];
    const stats: ShardReadStats = {
      shard: index,
      rows: 0,
      turns: 0,
      quarantined: 0,
      quarantinedByReason: {},
    };
    // Check the whole result before handing any row on: a cut result is never used.
    for (const row of raw)
      if (!Array.isArray(row))
        throw TRUNCATION.test(JSON.stringify(row))
          ? truncated(new Error(JSON.stringify(row)))
          : new SourceQueryError(
              `shard ${index} of ${shardCount}: Kusto reported ${JSON.stringify(row)}`,
            );
    if (raw.length >= KUSTO_MAX_ROWS)
      throw truncated(undefined, `${raw.length} rows: at Kusto's row limit, presumed cut`);
    if (spec.expectedRows !== undefined && raw.length !== spec.expectedRows)
      throw raw.length < spec.expectedRows
        ? truncated(
            undefined,
            `${raw.length} rows, the plan counted ${spec.expectedRows}: the result was cut`,
          )
        : new ShardPlanError(
            `shard ${index} of ${shardCount}: ${raw.length} rows, the plan counted ${spec.expectedRows}; ` +
              'the data changed since planning: plan again',
          );
    const origin = `kusto:${this.opts.database}`;
    for (const row of raw as unknown[][]) {
      stats.rows++;
      const obj: Record<string, unknown> = {};
      for (let i = 0; i < names.length; i++)
        if (row[i] !== null && row[i] !== undefined) obj[names[i]!] = row[i];
      const problem = checkTurn(obj, this.opts.maxMessageChars);
      if (problem) {
        stats.quarantined++;
        stats.quarantinedByReason[problem.reason] =
          (stats.quarantinedByReason[problem.reason] ?? 0) + 1;
        const text = JSON.stringify(obj);
        sink.onQuarantine({
          shard: index,
          origin,
          line: stats.rows,
          reason: problem.reason,
          ...(problem.field !== undefined ? { field: problem.field } : {}),
          detail: describeProblem(obj, problem, false),
          raw: text.length > 500 ? `${text.slice(0, 500)}…` : text,
          row: obj,
        });
        continue;
      }
      stats.turns++;
      sink.onTurn(obj as TelemetryTurn);
    }
    return stats;
  }
}

function primaryTable(res: KustoResponseDataSet) {
  const t = res.primaryResults[0];
  if (!t) throw new SourceQueryError('Kusto returned no primary result');
  return t;
}

function primaryRows(res: KustoResponseDataSet): Record<string, unknown>[] {
  const t = primaryTable(res);
  const names = t.columns.map((c) => c.name ?? '');
  return (t._rows as unknown[]).map((row) => {
    if (!Array.isArray(row)) throw new SourceQueryError(`Kusto reported ${JSON.stringify(row)}`);
    const o: Record<string, unknown> = {};
    names.forEach((n, i) => (o[n] = (row as unknown[])[i]));
    return o;
  });
}
