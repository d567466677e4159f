/**
 * Credentials of the Azure OpenAI judge, failing politely: no credential, an expired
 * one or a refused token becomes one line saying what was tried and what to do
 * (`az login`, the role to grant), not an SDK stack trace after long timeouts.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { JudgeConfigError } from '../../shared/judge/llm';
import { politeTokenCredential } from '../identity/polite';
import type { JudgeSettings, OpenAIJudgeSettings } from '../../shared/judge/settings';

/** Entra ID scope of Azure OpenAI (Cognitive Services). */
export const COGNITIVE_SERVICES_SCOPE = 'https://cognitiveservices.azure.com/.default';

/** The role the identity needs on the Azure OpenAI account. */
export const OPENAI_ROLE = 'Cognitive Services OpenAI User';

/** What DefaultAzureCredential tries, in its order. */
const TRIED =
  'DefaultAzureCredential: environment (AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET), ' +
  'workload identity, managed identity, Azure CLI, Azure Developer CLI, Azure PowerShell';

/** No usable Entra credential for the judge (exit 1 with this one line). */
export class JudgeCredentialError extends JudgeConfigError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JudgeCredentialError';
  }
}

/** The first line of an error's message, without the SDK's troubleshooting links. */
function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n').find((l) => l.trim() !== '') ?? text).trim().slice(0, 200);
}

/** The one line for a credential that could not give a token for `endpoint`. */
export function credentialLine(endpoint: string, err: unknown): string {
  return (
    `no Azure credential for the Azure OpenAI judge at ${endpoint} ` +
    `(tried ${TRIED}: ${firstLine(err)}); ` +
    `run "az login" (locally) or give the app a managed identity, and grant it the role ` +
    `"${OPENAI_ROLE}" on the Azure OpenAI account; or set JUDGE_API_KEY`
  );
}

/** The one line for a 401/403 from Azure OpenAI or OpenAI. */
export function refusedLine(s: OpenAIJudgeSettings, status: number, detail: string): string {
  const where =
    s.provider === 'azure'
      ? (s.endpoint ?? s.baseURL ?? 'Azure OpenAI')
      : (s.baseURL ?? 'api.openai.com');
  if (s.provider === 'azure' && !s.apiKey)
    return (
      `Azure OpenAI at ${where} refused the identity's token (HTTP ${status}: ${detail}): ` +
      `grant the signed-in user or the app's identity the role "${OPENAI_ROLE}" on the account ` +
      `(az role assignment create --role "${OPENAI_ROLE}" ...), or "az login" again if the session expired`
    );
  return (
    `${s.provider === 'azure' ? 'Azure OpenAI' : 'OpenAI'} at ${where} refused the API key (HTTP ${status}: ${detail}): ` +
    `check JUDGE_API_KEY (or ${s.provider === 'azure' ? 'AZURE_OPENAI_API_KEY' : 'OPENAI_API_KEY'})`
  );
}

/**
 * A credential whose failures are one-line JudgeCredentialErrors and whose token
 * requests give up after `timeoutMs` (DefaultAzureCredential may otherwise wait on
 * an unreachable managed identity endpoint).
 */
export function politeCredential(
  inner: TokenCredential,
  endpoint: string,
  timeoutMs = 20_000,
): TokenCredential {
  return politeTokenCredential(
    inner,
    timeoutMs,
    (err) => new JudgeCredentialError(credentialLine(endpoint, err), { cause: err }),
  );
}

/** The Azure OpenAI judges of these settings that authenticate with Entra ID (no key). */
function entraJudges(s: JudgeSettings): OpenAIJudgeSettings[] {
  if (s.kind === 'openai') return s.provider === 'azure' && !s.apiKey ? [s] : [];
  if (s.kind === 'panel') return s.judges.flatMap((j) => entraJudges(j));
  return [];
}

/**
 * Gets a token for every Azure OpenAI judge of the settings before any work, so a
 * missing or expired credential fails at once (JudgeCredentialError), not after the
 * telemetry was read or a build was queued. No call to the model is made.
 */
export async function checkJudgeCredential(
  settings: JudgeSettings,
  opts: { credential?: TokenCredential; timeoutMs?: number } = {},
): Promise<void> {
  const judges = entraJudges(settings);
  if (judges.length === 0) return;
  const credential = opts.credential ?? new DefaultAzureCredential();
  for (const j of judges) {
    const where = j.endpoint ?? j.baseURL ?? '(no endpoint)';
    await politeCredential(credential, where, opts.timeoutMs).getToken(COGNITIVE_SERVICES_SCOPE);
  }
}
