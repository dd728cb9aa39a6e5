import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { revoker as pb } from '@aoa/proto';
import { createVerifier, type Verifier, VerifyError } from '@aoa/sdk';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { clientAssertion, dpopProof, makeKey } from './support/oauth.js';
import { callRevoke, startRevoker } from './support/revoker.js';
import { callDelegate, rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

const AUDIENCE = 'https://metrics.internal';
const URL_ = `${AUDIENCE}/api`;

let sys: TestSystem;
let rev: Awaited<ReturnType<typeof startRevoker>>;
let nc: NatsConnection;
let offsetMs = 0;
const clock = { nowMs: () => Date.now() + offsetMs };
let verifier: Verifier;

before(async () => {
  sys = await startSystem();
  rev = await startRevoker(sys);
  nc = await connect({ servers: sys.nats.url });
  verifier = createVerifier({ issuer: sys.issuer.issuer, audience: AUDIENCE, nats: nc, clock });
  await verifier.whenReady();
});
after(async () => {
  verifier?.close();
  await nc?.close();
  await rev?.stop();
  await sys?.stop();
});

/** A bearer token for ci → jobs/staging, and the request that presents it. */
async function ciRequest() {
  const { accessToken, jti } = await callDelegate(
    sys.client,
    {
      subjectToken: await sys.idpToken('ci-runner'),
      child: 'jobs',
      environment: 'staging',
      scopes: ['run:job'],
    },
    { 'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer) },
  );
  const req = { authorization: `Bearer ${accessToken}`, dpop: undefined, method: 'GET', url: URL_ };
  return { accessToken, jti, req };
}

/** Revokes `target` as the administrator and resolves once the verifier's mirror has applied `key`. */
async function revokeApplied(target: Partial<pb.RevokeRequest>, key: string): Promise<void> {
  const changed = new Promise<void>((resolve) => {
    const off = verifier.onRevocationChange((changedKey) => {
      if (changedKey === key) {
        off();
        resolve();
      }
    });
  });
  await callRevoke(
    rev.client,
    { ...target, reason: 'test' },
    { 'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer) },
  );
  await changed;
}

const refusedWith = async (promise: Promise<unknown>, reason: RegExp) =>
  assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof VerifyError, String(error));
    assert.match(error.reason, reason);
    return true;
  });

describe('the verified-token cache', () => {
  it('a cached DPoP-bound token still needs a fresh, unreplayed proof, and expires on time', async () => {
    const holder = await makeKey();
    const { accessToken } = await rootDelegateAsArgocd(sys, {
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
      ttlSeconds: 120,
    });
    const req = async () => ({
      authorization: `DPoP ${accessToken}`,
      dpop: await dpopProof(holder, 'GET', URL_, accessToken),
      method: 'GET',
      url: URL_,
    });
    await verifier.verify(await req()); // now cached
    const proof = await req();
    await verifier.verify(proof);
    await refusedWith(verifier.verify(proof), /replay|already used|jti/i);
    await refusedWith(
      verifier.verify({ ...(await req()), authorization: `Bearer ${accessToken}` }),
      /Bearer/,
    );
    await refusedWith(
      verifier.verify({ ...(await req()), dpop: await dpopProof(await makeKey(), 'GET', URL_, accessToken) }),
      /binding/,
    );
    offsetMs = 130_000; // past exp and the 5 s tolerance: the cache must not keep it alive
    try {
      await refusedWith(verifier.verify(await req()), /expired/);
    } finally {
      offsetMs = 0;
    }
  });

  it('a token found revoked leaves the cache', async () => {
    const cached = async () =>
      (await verifier.registry.getSingleMetric('aoa_verifier_token_cache_entries')?.get())?.values[0]?.value;
    const { jti, req } = await ciRequest();
    const before = await cached();
    assert.equal(typeof before, 'number');
    await verifier.verify(req);
    assert.equal(await cached(), (before as number) + 1);
    await revokeApplied({ jti }, `jti.${jti}`);
    await refusedWith(verifier.verify(req), /revoked \(jti/);
    assert.equal(await cached(), before);
    await refusedWith(verifier.verify(req), /revoked \(jti/);
  });

  it('a cached token is refused once its signing key is revoked', async () => {
    const { accessToken, req } = await ciRequest();
    await verifier.verify(req);
    const kid = JSON.parse(Buffer.from(accessToken.split('.')[0] as string, 'base64url').toString()).kid;
    await revokeApplied({ kid }, `kid.${kid}`);
    await refusedWith(verifier.verify(req), /revoked \(kid/);
  });
});
