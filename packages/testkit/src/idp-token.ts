import type { IdpClient } from './idp-adapter.js';

/**
 * POSTs a client_credentials request with client_secret_basic (id and secret form-encoded first, as
 * RFC 6749 section 2.3.1 says) and returns the access token. A refusal becomes an Error carrying the
 * HTTP status and the OAuth `error`; a provider-side failure adds the provider's own error as cause.
 */
export async function requestClientCredentialsToken(
  tokenEndpoint: string,
  client: IdpClient,
  resource: string,
  scope: string | undefined,
  lastServerError: { error?: unknown },
): Promise<string> {
  const credentials = `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`;
  const body = new URLSearchParams({ grant_type: 'client_credentials', resource });
  if (scope !== undefined) body.set('scope', scope);
  lastServerError.error = undefined;
  const response = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(credentials).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body,
  });
  const text = await response.text();
  const parsed = parseJson(text);
  const accessToken = parsed?.access_token;
  if (response.ok && typeof accessToken === 'string') return accessToken;
  const oauthError = typeof parsed?.error === 'string' ? parsed.error : 'no OAuth error in body';
  const description = typeof parsed?.error_description === 'string' ? `: ${parsed.error_description}` : '';
  const cause = lastServerError.error;
  throw new Error(
    `test IdP refused a token for ${client.clientId} (HTTP ${response.status}, ${oauthError}${description})`,
    cause === undefined ? undefined : { cause },
  );
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
