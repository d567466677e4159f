/**
 * Entra ID (@azure/identity) tokens with a deadline, shared by the judge's and the Kusto
 * source's credentials: a token request gives up after `timeoutMs` (DefaultAzureCredential
 * may otherwise wait on an unreachable managed identity endpoint), and any failure is
 * handed to `wrap`, which turns it into the caller's one-line typed error.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';

export function politeTokenCredential(
  inner: TokenCredential,
  timeoutMs: number,
  wrap: (err: unknown) => Error,
): TokenCredential {
  return {
    async getToken(scopes, options): Promise<AccessToken | null> {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no token within ${Math.round(timeoutMs / 1000)} s`)),
          timeoutMs,
        );
        timer.unref();
      });
      try {
        const token = await Promise.race([inner.getToken(scopes, options), timeout]);
        if (!token) throw new Error('the credential returned no token');
        return token;
      } catch (err) {
        throw wrap(err);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
