import { OPERATOR_AUDIENCE, OPERATOR_SCOPE } from '@aoa/core';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './oauth.js';
import { callDelegate, type TestSystem } from './system.js';

/** An aoa token the console obtained for a signed-in person, and the key it is bound to (if any). */
export interface OperatorToken {
  accessToken: string;
  jti: string;
  tokenType: string;
  key: TestKey;
}

/**
 * What the web console does for a signed-in member of `sre` (the IdP client sre-bot): it presents the
 * person's IdP token with its own client assertion (the `console` client, not an administrator) to
 * Delegate, for the app `console` in env `ops`. By default an operator token: `aoa:admin` for
 * `urn:aoa:admin`, bound to a fresh key; `bearer` asks for an unbound one.
 */
export async function consoleToken(
  sys: TestSystem,
  request: { scopes?: string[]; audience?: string[]; bearer?: boolean } = {},
): Promise<OperatorToken> {
  const key = await makeKey();
  const response = await callDelegate(
    sys.client,
    {
      subjectToken: await sys.idpToken('sre-bot'),
      child: 'console',
      environment: 'ops',
      scopes: request.scopes ?? [OPERATOR_SCOPE],
      audience: request.audience ?? [OPERATOR_AUDIENCE],
      holderJkt: request.bearer ? '' : key.jkt,
    },
    { 'client-assertion': await clientAssertion('console', sys.keys.console, sys.issuer.issuer) },
  );
  return { accessToken: response.accessToken, jti: response.jti, tokenType: response.tokenType, key };
}

/** Metadata presenting `token` with a fresh DPoP proof by `key` (the token's own by default) for `htu`. */
export async function operatorMetadata(
  token: OperatorToken,
  htu: string,
  key: TestKey = token.key,
): Promise<Record<string, string>> {
  return {
    authorization: `DPoP ${token.accessToken}`,
    dpop: await dpopProof(key, 'POST', htu, token.accessToken),
  };
}
