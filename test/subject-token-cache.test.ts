import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { until } from './support/auditor.js';
import { clientAssertion, makeKey, type TestKey } from './support/oauth.js';
import { callDelegate, startSystem, type TestSystem } from './support/system.js';

// The issuer keeps a verified subject token (the parent's IdP token, presented again for every child)
// until it expires or the key that signed it leaves the IdP's JWKS. The IdP's JWKS is fetched again
// once older than AOA_IDP_JWKS_MAX_AGE, here 1 s.

let sys: TestSystem;
let holder: TestKey;

before(async () => {
  sys = await startSystem({ AOA_IDP_JWKS_MAX_AGE: '1s' });
  holder = await makeKey();
});

after(async () => {
  sys?.idp.withdrawKeys(false);
  await sys?.stop();
});

const delegate = async (subjectToken: string) =>
  callDelegate(
    sys.client,
    {
      subjectToken,
      child: 'dashboards',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
    },
    { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
  );

describe('the verified subject-token cache', () => {
  it('stops trusting a cached IdP token once its key leaves the JWKS', async () => {
    const subjectToken = await sys.idpToken('argocd-sa');
    await delegate(subjectToken);
    // Served from the cache: the JWKS could not be read now, and the token is still accepted.
    sys.idp.breakJwks(true);
    await delegate(subjectToken);
    sys.idp.breakJwks(false);
    sys.idp.withdrawKeys(true);
    const refusal = await until('the cached token refused', async () =>
      delegate(subjectToken).then(
        () => undefined,
        (error: { code?: number; details?: string }) => error,
      ),
    );
    assert.equal(refusal.code, status.UNAUTHENTICATED, refusal.details);
    sys.idp.withdrawKeys(false);
    await until('the key published again, the token accepted', async () =>
      delegate(subjectToken).then(
        () => true,
        () => false,
      ),
    );
  });
});
