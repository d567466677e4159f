/**
 * `run --source kusto:QUERY`: the CLI reads Kusto through the app's own path
 * (kustoLineSource → KustoSource, DefaultAzureCredential; a loopback http cluster is
 * queried without a token). The flags map onto the settings the app reads
 * (SFT_KUSTO_CLUSTER_URI, SFT_KUSTO_DATABASE, SFT_WINDOW_START/END/DAYS), so a flag
 * and a setting mean one thing. The runner plans the build from Kusto as the app does;
 * `--in-process` streams the selected rows into a file in the output's staging
 * directory first, then runs the pipeline on it.
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { KustoSource } from '../adapters/kusto/source';
// The Azure SDKs behind the Kusto source load on first use: every other command (balance
// among them) would pay ~0.5 s of CPU at startup for clients it never makes.
const telemetryAdapters = () => import('../adapters/source/telemetry.js');
import type { BalanceConfig } from '../shared/contracts/config';
import { QUERY_NAMES, type QueryName } from '../shared/source/telemetry';
import { loadSourceSettings, trailingWindow } from '../shared/source/settings';
import { UsageError } from './args';
// @azure/identity too: loaded with the Kusto adapters, only when a Kusto source is used.
const credentialAdapters = () => import('../adapters/kusto/credential.js');

/** The credential the CLI reads a cluster with: none on loopback http, else a polite DefaultAzureCredential. */
async function cliKustoDeps(env: Record<string, string | undefined>) {
  const cluster = env.SFT_KUSTO_CLUSTER_URI!;
  const { isLoopbackHttpCluster, politeKustoCredential } = await credentialAdapters();
  const { DefaultAzureCredential } = await import('@azure/identity');
  return {
    credential: isLoopbackHttpCluster(cluster)
      ? null
      : politeKustoCredential(new DefaultAzureCredential(), cluster),
  };
}

export const KUSTO_RUN_OPTIONS = {
  source: { type: 'string' },
  'kusto-cluster': { type: 'string' },
  'kusto-database': { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  window: { type: 'string' },
} as const;

export const KUSTO_RUN_HELP = `  --source kusto:QUERY      read telemetry from Kusto instead of --input: QUERY is a query of
                            queries/ (sft_session_router_first_turns, sft_stratified_by_turn_count;
                            a file name or path ending .kql works too); authenticated with
                            DefaultAzureCredential (az login locally)
  --kusto-cluster URL       cluster (or SFT_KUSTO_CLUSTER_URI)
  --kusto-database DB       database (or SFT_KUSTO_DATABASE)
  --from ISO --to ISO       conversations whose first turn lies in [from, to) (or SFT_WINDOW_START/END)
  --window DAYS             otherwise the DAYS whole UTC days before today (or SFT_WINDOW_DAYS; default 7)`;

/** `kusto:queries/x.kql`, `kusto:x.kql` or `kusto:x` → the query name, or a usage error. */
export function kustoQueryOf(source: string): QueryName {
  if (!source.startsWith('kusto:'))
    throw new UsageError(`--source: "${source}" is not kusto:QUERY (a file is read with --input)`);
  const name = basename(source.slice(6)).replace(/\.kql$/, '');
  if (!(QUERY_NAMES as readonly string[]).includes(name))
    throw new UsageError(`--source: unknown query "${name}"; one of ${QUERY_NAMES.join(', ')}`);
  return name as QueryName;
}

/**
 * The settings a kusto run reads, from flags over the environment, with the window
 * resolved to explicit instants (the build id and a resumed run see the same window).
 * Checked here, so a missing cluster is a usage error before any work.
 */
export function kustoEnvOf(
  v: Record<string, unknown>,
  env: Record<string, string | undefined>,
  now = new Date(),
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  const str = (k: string) => (typeof v[k] === 'string' ? v[k] : undefined);
  if (str('kusto-cluster')) out.SFT_KUSTO_CLUSTER_URI = str('kusto-cluster');
  if (str('kusto-database')) out.SFT_KUSTO_DATABASE = str('kusto-database');
  if (str('window') !== undefined && (str('from') ?? str('to')) !== undefined)
    throw new UsageError('give --from/--to or --window, not both');
  if (str('from') !== undefined || str('to') !== undefined) {
    if (!str('from') || !str('to')) throw new UsageError('--from and --to go together');
    for (const k of ['from', 'to'])
      if (Number.isNaN(Date.parse(str(k)!)))
        throw new UsageError(`--${k}: "${str(k)}" is not an ISO date or instant`);
    out.SFT_WINDOW_START = new Date(str('from')!).toISOString();
    out.SFT_WINDOW_END = new Date(str('to')!).toISOString();
  } else if (!out.SFT_WINDOW_START && !out.SFT_WINDOW_END) {
    const days = Number(str('window') ?? out.SFT_WINDOW_DAYS ?? 7);
    if (!Number.isInteger(days) || days < 1)
      throw new UsageError(`--window must be a positive number of days, got "${str('window')}"`);
    const w = trailingWindow(now, days);
    out.SFT_WINDOW_START = w.start;
    out.SFT_WINDOW_END = w.end;
  }
  try {
    loadSourceSettings({ ...out, SFT_TELEMETRY_SOURCE: 'kusto' }, now);
  } catch (err) {
    throw new UsageError(
      (err as Error).message
        .replace('SFT_KUSTO_CLUSTER_URI', '--kusto-cluster (SFT_KUSTO_CLUSTER_URI)')
        .replace('SFT_KUSTO_DATABASE', '--kusto-database (SFT_KUSTO_DATABASE)'),
    );
  }
  return out;
}

/** The selected rows of a Kusto query written to `path` as JSONL (bounded memory). */
export async function kustoToFile(
  query: QueryName,
  path: string,
  env: Record<string, string | undefined>,
): Promise<number> {
  const { kustoLineSource } = await telemetryAdapters();
  const source = kustoLineSource(query, env, await cliKustoDeps(env));
  const out = createWriteStream(path);
  let n = 0;
  try {
    for await (const batch of source.lines()) {
      const text = batch.map((l) => l.line + '\n').join('');
      n += batch.length;
      if (!out.write(text)) await once(out, 'drain');
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  return n;
}

/** A `run --source kusto:QUERY`: what the runner and --in-process need, or null without --source. */
export function kustoRunOf(v: Record<string, unknown>) {
  if (typeof v.source !== 'string') {
    for (const f of Object.keys(KUSTO_RUN_OPTIONS))
      if (v[f] !== undefined) throw new UsageError(`--${f} needs --source kusto:QUERY`);
    return null;
  }
  if (v.input !== undefined) throw new UsageError('give --input or --source, not both');
  if (v['no-upload'] === true) throw new UsageError('--no-upload is for --input files');
  const query = kustoQueryOf(v.source);
  const env = kustoEnvOf(v, process.env);
  // The plan step opens its source with the process's settings, as the app does.
  for (const k of [
    'SFT_KUSTO_CLUSTER_URI',
    'SFT_KUSTO_DATABASE',
    'SFT_WINDOW_START',
    'SFT_WINDOW_END',
  ])
    process.env[k] = env[k];
  const identity = JSON.stringify({
    query,
    cluster: env.SFT_KUSTO_CLUSTER_URI,
    database: env.SFT_KUSTO_DATABASE,
    table: env.SFT_KUSTO_TABLE ?? 'Telemetry',
    from: env.SFT_WINDOW_START,
    to: env.SFT_WINDOW_END,
    span: env.SFT_MAX_CONVERSATION_SPAN_MS ?? null,
  });
  let staged: string | undefined;
  return {
    query,
    env,
    runner: { source: { kind: 'kusto' as const, path: query }, sourceIdentity: identity },
    /** --in-process: the selected rows staged in a file of their own (removed by unstage). */
    async stage(): Promise<string> {
      staged = mkdtempSync(join(tmpdir(), 'sftb-kusto-'));
      const path = join(staged, `kusto-${query}.jsonl`);
      await kustoToFile(query, path, env);
      return path;
    },
    /** Before any work: a token for the cluster, or one line naming the credential (exit 1). */
    checkCredential: async (): Promise<void> =>
      (await credentialAdapters()).checkKustoCredential(env.SFT_KUSTO_CLUSTER_URI!),
    unstage(): void {
      if (staged) rmSync(staged, { recursive: true, force: true });
    },
    /** --complexity-fit quantiles from Kusto: the profile query (fitComplexityToKusto). */
    async fit(config: BalanceConfig, flags: Record<string, unknown>): Promise<BalanceConfig> {
      if (flags['complexity-fit'] === undefined) return config;
      if (flags['complexity-thresholds'] !== undefined)
        throw new UsageError('give --complexity-thresholds or --complexity-fit, not both');
      return fitComplexityToKusto(config, env);
    },
  };
}

/**
 * `--complexity-fit quantiles` over Kusto: the complexity-profile query
 * (queries/sft_complexity_signal_profile.kql, KustoSource.profileSignals) gives each
 * signal's percentiles over the window's first turns; each signal's ramp becomes its
 * [p10, p90], so every signal spreads over the score's range on this data. The tier
 * cut points stay as given: the profile has no joint distribution to take terciles of.
 */
export async function fitComplexityToKusto(
  config: BalanceConfig,
  env: Record<string, string | undefined>,
): Promise<BalanceConfig> {
  const settings = loadSourceSettings({ ...env, SFT_TELEMETRY_SOURCE: 'kusto' });
  const { createTelemetrySource } = await telemetryAdapters();
  const source = createTelemetrySource(settings, await cliKustoDeps(env)) as KustoSource;
  const profile = await source.profileSignals(settings.selection.window);
  const complexity = { ...config.complexity };
  let rows = 0;
  for (const p of profile) {
    rows = Math.max(rows, p.n);
    if (p.p90 > p.p10) complexity[p.signal] = [p.p10, p.p90];
  }
  complexity.fitted = {
    method: 'quantiles',
    rows,
    source: 'first turns in Kusto (signal ramps at p10-p90 of the profile query)',
  };
  return { ...config, complexity };
}
