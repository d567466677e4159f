/**
 * Builds the telemetry source the settings choose (kusto | file) with its real
 * clients, and adapts any source to a stream of JSONL lines for a plan step that
 * routes lines into its own shards.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { BlobClient, BlobServiceClient } from '@azure/storage-blob';
import { FileSource } from '../files/source';
import { KustoSource } from '../kusto/source';
import {
  shardSpecs,
  type QueryName,
  type Selection,
  type ShardLimits,
  type ShardPlan,
  type SourceQuarantineRecord,
  type TelemetrySource,
} from '../../shared/source/telemetry';
import { loadSourceSettings, type SourceSettings } from '../../shared/source/settings';
import { isPermanent, PermanentError } from '../../shared/errors';

/** A local Kusto (the Kustainer emulator, a test server): plain http on loopback, no auth. */
function isLoopbackHttp(uri: string): boolean {
  const u = new URL(uri);
  return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

export interface SourceDeps {
  /**
   * Default: DefaultAzureCredential (managed identity in Azure, developer login
   * locally); none for a loopback http Kusto such as the Kustainer emulator.
   */
  credential?: TokenCredential | null;
  /** For `blob:CONTAINER/NAME`: the app's storage account. */
  blobService?: BlobServiceClient;
  maxMessageChars?: number;
  runId?: string;
}

/** The source the settings name, with real clients. */
export function createTelemetrySource(
  settings: SourceSettings,
  deps: SourceDeps = {},
): TelemetrySource {
  if (settings.source === 'kusto') {
    const credential =
      deps.credential !== undefined
        ? deps.credential
        : isLoopbackHttp(settings.kusto.clusterUri)
          ? null
          : new DefaultAzureCredential();
    return new KustoSource({
      ...settings.kusto,
      credential,
      ...(deps.maxMessageChars !== undefined ? { maxMessageChars: deps.maxMessageChars } : {}),
      ...(deps.runId !== undefined ? { runId: deps.runId } : {}),
    });
  }
  const credential = deps.credential === undefined ? new DefaultAzureCredential() : deps.credential;
  const loc = settings.file;
  switch (loc.kind) {
    case 'path':
      return FileSource.fromPath(loc.path, deps.maxMessageChars);
    case 'url':
      if (credential === null) throw new Error(`reading ${loc.url} needs a credential`);
      return FileSource.fromBlob(new BlobClient(loc.url, credential), deps.maxMessageChars);
    case 'container':
      if (!deps.blobService)
        throw new Error(`blob:${loc.container}/${loc.name} needs the app's blob service client`);
      return FileSource.fromBlob(
        deps.blobService.getContainerClient(loc.container).getBlobClient(loc.name),
        deps.maxMessageChars,
      );
  }
}

export interface SelectedLines {
  readonly name: string;
  /** Plans the selection (once) and returns the bytes it selected. */
  size(): Promise<number>;
  /** Selected rows as JSONL lines, a shard at a time, numbered from 1. */
  lines(): AsyncIterable<{ line: string; lineNo: number }[]>;
  /** The plan, once `size` or `lines` has run. */
  readonly plan: ShardPlan | undefined;
}

/**
 * A source's selection as JSONL lines: every selected row, valid or not (a row the
 * source quarantined is passed on as its raw JSON, so the consumer's own validation
 * sets it aside and counts it; nothing is dropped here).
 */
export function selectedLines(
  source: TelemetrySource,
  selection: Selection,
  limits?: Partial<ShardLimits>,
): SelectedLines {
  let plan: ShardPlan | undefined;
  const ensurePlan = async () => (plan ??= await source.planShards(selection, limits));
  return {
    name: `${source.kind}:${selection.query}`,
    get plan() {
      return plan;
    },
    async size() {
      return (await ensurePlan()).totals.bytes;
    },
    async *lines() {
      const p = await ensurePlan();
      let lineNo = 0;
      for (const spec of shardSpecs(p)) {
        const batch: { line: string; lineNo: number }[] = [];
        await source.readShard(spec, {
          onTurn: (t) => batch.push({ line: JSON.stringify(t), lineNo: ++lineNo }),
          onQuarantine: (q: SourceQuarantineRecord) =>
            batch.push({ line: rowLine(q), lineNo: ++lineNo }),
        });
        yield batch;
      }
    },
  };
}

/**
 * A quarantined source row as a line for the batch to quarantine again. A row too deep
 * for JSON.stringify (thousands of levels; `too_deep` starts at 65) goes as its raw
 * text, which the batch quarantines as it finds it: nothing may crash on depth.
 */
function rowLine(q: SourceQuarantineRecord): string {
  if (q.row === undefined) return q.raw;
  try {
    return JSON.stringify(q.row);
  } catch {
    return q.raw;
  }
}

/** A permanent failure of a Kusto line source; `cause` is the typed failure (settings, query, plan, a cut shard). */
export class KustoSourceError extends PermanentError {}

/**
 * The plan step's Kusto source (`SFT_SOURCE=kusto:QUERY`): the query's selection over
 * the SFT_KUSTO_* settings and window, as JSONL lines. The build's workers assemble
 * conversations themselves, so the session query is read with every turn of the
 * conversations it selects (their first turns are what the session pipeline keeps).
 * Permanent failures (settings, a rejected query, a plan that cannot fit, a cut shard)
 * come out as a KustoSourceError naming the query, so the build fails with the reason
 * instead of retrying; throttling that outlasts the retries (a TransientError) and
 * anything unclassified are rethrown as they are, for the queue.
 */
export function kustoLineSource(
  query: QueryName,
  env: Record<string, string | undefined> = process.env,
  deps: SourceDeps = {},
): SelectedLines {
  let inner: SelectedLines | undefined;
  const open = () => {
    if (!inner) {
      const settings = loadSourceSettings({
        ...env,
        SFT_TELEMETRY_SOURCE: 'kusto',
        SFT_QUERY: query,
      });
      const selection: Selection =
        settings.selection.query === 'sft_session_router_first_turns'
          ? { ...settings.selection, turns: 'all' }
          : settings.selection;
      inner = selectedLines(createTelemetrySource(settings, deps), selection);
    }
    return inner;
  };
  const wrap = (err: unknown): unknown =>
    err instanceof Error && isPermanent(err)
      ? new KustoSourceError(`kusto:${query}: ${err.message}`, { cause: err })
      : err;
  return {
    name: `kusto:${query}`,
    get plan() {
      return inner?.plan;
    },
    async size() {
      try {
        return await open().size();
      } catch (err) {
        throw wrap(err);
      }
    },
    async *lines() {
      try {
        yield* open().lines();
      } catch (err) {
        throw wrap(err);
      }
    },
  };
}
