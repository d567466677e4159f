/**
 * Kusto credentials failing politely on the command line: no credential, an expired
 * one or a refused token (@azure/identity's CredentialUnavailableError,
 * AuthenticationError, AggregateAuthenticationError) becomes one line that names the
 * credential tried, the cluster and what to do (`az login`, the database role), not a
 * multi-line SDK message or a stack. The CLI checks before any work (checkKustoCredential)
 * and wraps the credential the query uses (politeKustoCredential) for a token that
 * expires mid-run.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { PermanentError } from '../../shared/errors';
import { politeTokenCredential } from '../identity/polite';

/** The database role a reading identity needs (or AllDatabasesViewer on the cluster). */
export const KUSTO_ROLE = 'Viewer';

/** What DefaultAzureCredential tries, in its order. */
export const DEFAULT_CREDENTIAL_CHAIN =
  'DefaultAzureCredential (environment AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, ' +
  'workload identity, managed identity, Azure CLI, Azure Developer CLI, Azure PowerShell)';

/** No usable Entra credential for Kusto (exit 1 with this one line). */
export class KustoCredentialError extends PermanentError {}

/** The Entra scope of a cluster: `https://CLUSTER.REGION.kusto.windows.net/.default`. */
export const kustoScope = (clusterUri: string) => `${new URL(clusterUri).origin}/.default`;

/** The first non-empty line of an error's message, without the SDK's troubleshooting links. */
function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = (text.split('\n').find((l) => l.trim() !== '') ?? text).trim();
  return line.replace(/\s*To troubleshoot, visit \S+\.?/g, '').slice(0, 200);
}

/** The one line for a credential that gave no token for `clusterUri`. */
export function kustoCredentialLine(clusterUri: string, err: unknown, tried: string): string {
  const kind = err instanceof Error ? err.name : 'Error';
  return (
    `no Azure credential for Kusto at ${new URL(clusterUri).origin}: ${tried} failed ` +
    `(${kind}: ${firstLine(err)}); run "az login" (locally) or give the app a managed identity, ` +
    `and grant it the role "${KUSTO_ROLE}" on the database ` +
    `(.add database DB viewers ('aaduser=...') or ('aadapp=...'))`
  );
}

/**
 * A credential whose failures are one-line KustoCredentialErrors and whose token
 * requests give up after `timeoutMs` (a managed identity endpoint out of reach may
 * otherwise hold the run for minutes).
 */
export function politeKustoCredential(
  inner: TokenCredential,
  clusterUri: string,
  opts: { tried?: string; timeoutMs?: number } = {},
): TokenCredential {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const tried = opts.tried ?? DEFAULT_CREDENTIAL_CHAIN;
  return politeTokenCredential(
    inner,
    timeoutMs,
    (err) => new KustoCredentialError(kustoCredentialLine(clusterUri, err, tried), { cause: err }),
  );
}

/** True for a loopback http cluster (the local emulator), which is queried without a token. */
export function isLoopbackHttpCluster(clusterUri: string): boolean {
  const u = new URL(clusterUri);
  return u.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
}

/**
 * Gets a token for the cluster before any work, so a missing or expired credential
 * fails at once with one line (KustoCredentialError), not after a build was queued.
 * No query is sent. A loopback http cluster needs no token and is skipped.
 */
export async function checkKustoCredential(
  clusterUri: string,
  opts: { credential?: TokenCredential; tried?: string; timeoutMs?: number } = {},
): Promise<void> {
  if (isLoopbackHttpCluster(clusterUri)) return;
  const credential = opts.credential ?? new DefaultAzureCredential();
  await politeKustoCredential(credential, clusterUri, opts).getToken(kustoScope(clusterUri));
}
