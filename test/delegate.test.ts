import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { callDelegate, callIntrospect, startSystem, type TestSystem } from './support/system.js';

let sys: TestSystem;
let holder: TestKey;

before(async () => {
  sys = await startSystem();
  holder = await makeKey();
});
after(async () => {
  await sys?.stop();
});

const argocdProof = async (overrides?: Parameters<typeof clientAssertion>[3]) => ({
  'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer, overrides),
});

async function rootDelegation(request: Record<string, unknown> = {}) {
  return callDelegate(
    sys.client,
    {
      subjectToken: await sys.idpToken('argocd-sa'),
      child: 'dashboards',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
      ...request,
    },
    await argocdProof(),
  );
}

/** Sub-delegates from `parent` (held by `parentKey`) to `child`, proving with a DPoP proof. */
async function subDelegate(parent: string, parentKey: TestKey, request: Record<string, unknown>) {
  const htu = `${sys.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`;
  return callDelegate(
    sys.client,
    { subjectToken: parent, ...request },
    { dpop: await dpopProof(parentKey, 'POST', htu, parent) },
  );
}

async function expectCode(promise: Promise<unknown>, code: status, message?: RegExp) {
  await assert.rejects(promise, (error: { code: number; details: string }) => {
    assert.equal(
      error.code,
      code,
      `expected gRPC ${status[code]}, got ${status[error.code]}: ${error.details}`,
    );
    if (message) assert.match(error.details, message);
    return true;
  });
}

describe('root delegation', () => {
  it('exchanges an IdP token and a client assertion for a key-bound child token with the contract claims', async () => {
    const response = await rootDelegation({ audience: ['https://dashboards.internal'], ttlSeconds: 300 });
    assert.equal(response.tokenType, 'DPoP');
    assert.deepEqual(response.scopes, ['read:metrics']);
    assert.equal(response.issuedTokenType, 'urn:ietf:params:oauth:token-type:access_token');
    const header = decodeProtectedHeader(response.accessToken);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'EdDSA');
    assert.ok(header.kid);
    const claims = decodeJwt(response.accessToken);
    assert.equal(claims.iss, sys.issuer.issuer);
    assert.equal(claims.sub, 'idp:corp:argocd-sa');
    assert.deepEqual(claims.act, { sub: 'app:dashboards' });
    assert.equal(claims.client_id, 'client:argocd');
    assert.equal(claims.env, 'prod');
    assert.deepEqual(claims.aud, ['https://dashboards.internal']);
    assert.equal(claims.scope, 'read:metrics');
    assert.deepEqual(claims.cnf, { jkt: holder.jkt });
    assert.deepEqual(claims.aoa_lineage, []);
    assert.equal(claims.jti, response.jti);
    assert.equal(claims.exp, response.expiresAt);
    assert.ok((claims.exp as number) - (claims.iat as number) <= 300);
    assert.equal(typeof claims.aoa_iat_ms, 'number');
  });

  it('issues tokens that an independent client verifies through the published jwks_uri', async () => {
    const metadata = (await (
      await fetch(`http://127.0.0.1:${sys.issuer.httpPort}/.well-known/oauth-authorization-server`)
    ).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    assert.equal(metadata.issuer, sys.issuer.issuer);
    const { accessToken } = await rootDelegation();
    const { payload } = await jwtVerify(accessToken, createRemoteJWKSet(new URL(metadata.jwks_uri)), {
      issuer: metadata.issuer,
      audience: 'https://dashboards.internal',
      typ: 'at+jwt',
    });
    assert.equal(payload.sub, 'idp:corp:argocd-sa');
  });

  it('grants every audience of the child when none is asked for', async () => {
    const claims = decodeJwt((await rootDelegation()).accessToken);
    assert.deepEqual(claims.aud, ['https://dashboards.internal', 'https://metrics.internal']);
  });

  it('issues a bearer token only where the rule allows it', async () => {
    const response = await callDelegate(
      sys.client,
      {
        subjectToken: await sys.idpToken('ci-runner'),
        child: 'jobs',
        environment: 'staging',
        scopes: ['run:job'],
      },
      { 'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer) },
    );
    assert.equal(response.tokenType, 'Bearer');
    assert.equal(decodeJwt(response.accessToken).cnf, undefined);
    await expectCode(rootDelegation({ holderJkt: '' }), status.PERMISSION_DENIED, /holder_jkt is required/);
  });
});

describe('delegation chains', () => {
  it('builds a three-level chain with the nested act and the lineage, only ever narrowing', async () => {
    const root = await rootDelegation({ scopes: ['read:metrics', 'write:dashboards'] });
    const jobsKey = await makeKey('ES256');
    const child = await subDelegate(root.accessToken, holder, {
      child: 'jobs',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: jobsKey.jkt,
    });
    const reportsKey = await makeKey();
    const grandchild = await subDelegate(child.accessToken, jobsKey, {
      child: 'reports',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: reportsKey.jkt,
    });
    const rootClaims = decodeJwt(root.accessToken);
    const childClaims = decodeJwt(child.accessToken);
    const claims = decodeJwt(grandchild.accessToken);
    assert.equal(claims.sub, 'idp:corp:argocd-sa');
    assert.deepEqual(claims.act, {
      sub: 'app:reports',
      act: { sub: 'app:jobs', act: { sub: 'app:dashboards' } },
    });
    assert.equal(claims.client_id, 'app:jobs');
    assert.equal(childClaims.client_id, 'app:dashboards');
    const lineage = claims.aoa_lineage as Array<Record<string, unknown>>;
    assert.deepEqual(
      lineage.map((l) => [l.jti, l.app, l.env]),
      [
        [root.jti, 'dashboards', 'prod'],
        [child.jti, 'jobs', 'prod'],
      ],
    );
    assert.equal(lineage[0]?.iat_ms, rootClaims.aoa_iat_ms);
    assert.equal(lineage[0]?.kid, decodeProtectedHeader(root.accessToken).kid);
    assert.deepEqual(claims.aud, ['https://metrics.internal']);
    assert.ok((claims.exp as number) <= (childClaims.exp as number));
    assert.ok((childClaims.exp as number) <= (rootClaims.exp as number));
    assert.equal(grandchild.depth, 2);
  });

  it('refuses a child more scope, another environment, more life or more depth than its parent', async () => {
    const root = await rootDelegation({ scopes: ['read:metrics'], ttlSeconds: 120 });
    const jobsKey = await makeKey();
    await expectCode(
      subDelegate(root.accessToken, holder, {
        child: 'jobs',
        environment: 'prod',
        scopes: ['run:job'],
        holderJkt: jobsKey.jkt,
      }),
      status.PERMISSION_DENIED,
      /run:job/,
    );
    await expectCode(
      subDelegate(root.accessToken, holder, {
        child: 'jobs',
        environment: 'staging',
        scopes: ['read:metrics'],
        holderJkt: jobsKey.jkt,
      }),
      status.PERMISSION_DENIED,
      /environment/,
    );
    await expectCode(
      subDelegate(root.accessToken, holder, {
        child: 'jobs',
        environment: 'prod',
        scopes: ['read:metrics'],
        ttlSeconds: 600,
        holderJkt: jobsKey.jkt,
      }),
      status.PERMISSION_DENIED,
      /remaining lifetime/,
    );
    const child = await subDelegate(root.accessToken, holder, {
      child: 'jobs',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: jobsKey.jkt,
    });
    const reportsKey = await makeKey();
    const grandchild = await subDelegate(child.accessToken, jobsKey, {
      child: 'reports',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: reportsKey.jkt,
    });
    await expectCode(
      subDelegate(grandchild.accessToken, reportsKey, {
        child: 'reports',
        environment: 'prod',
        scopes: ['read:metrics'],
        holderJkt: reportsKey.jkt,
      }),
      status.PERMISSION_DENIED,
      /may not be delegated further/,
    );
  });

  it('refuses a subject token presented without a proof by its bound key', async () => {
    const root = await rootDelegation();
    const other = await makeKey();
    const request = { child: 'jobs', environment: 'prod', scopes: ['read:metrics'], holderJkt: other.jkt };
    await expectCode(subDelegate(root.accessToken, other, request), status.UNAUTHENTICATED, /not the key/);
    await expectCode(
      callDelegate(sys.client, { subjectToken: root.accessToken, ...request }, {}),
      status.UNAUTHENTICATED,
      /bearer token alone mints nothing/,
    );
    await expectCode(
      callDelegate(sys.client, { subjectToken: root.accessToken, ...request }, await argocdProof()),
      status.UNAUTHENTICATED,
      /DPoP/,
    );
  });

  it('refuses an unbound aoa token as a subject token', async () => {
    const bearer = await callDelegate(
      sys.client,
      {
        subjectToken: await sys.idpToken('ci-runner'),
        child: 'jobs',
        environment: 'staging',
        scopes: ['run:job'],
      },
      { 'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer) },
    );
    await expectCode(
      subDelegate(bearer.accessToken, holder, {
        child: 'reports',
        environment: 'staging',
        scopes: ['run:job'],
      }),
      status.UNAUTHENTICATED,
      /unbound/,
    );
  });

  it('refuses a replayed DPoP proof and a proof for another URL or without ath', async () => {
    const root = await rootDelegation();
    const jobsKey = await makeKey();
    const request = {
      subjectToken: root.accessToken,
      child: 'jobs',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: jobsKey.jkt,
    };
    const htu = `${sys.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`;
    const proof = await dpopProof(holder, 'POST', htu, root.accessToken);
    await callDelegate(sys.client, request, { dpop: proof });
    await expectCode(callDelegate(sys.client, request, { dpop: proof }), status.UNAUTHENTICATED, /replay/);
    await expectCode(
      callDelegate(sys.client, request, {
        dpop: await dpopProof(holder, 'POST', 'http://elsewhere/x', root.accessToken),
      }),
      status.UNAUTHENTICATED,
      /htu/,
    );
    await expectCode(
      callDelegate(sys.client, request, { dpop: await dpopProof(holder, 'POST', htu) }),
      status.UNAUTHENTICATED,
      /ath/,
    );
    await expectCode(
      callDelegate(sys.client, request, {
        dpop: await dpopProof(holder, 'POST', htu, root.accessToken, {
          claims: { iat: Math.floor(Date.now() / 1000) - 3600 },
        }),
      }),
      status.UNAUTHENTICATED,
      /stale/,
    );
  });
});

describe('introspection', () => {
  it('answers active with claims for the requester, and inactive for anyone else or anything invalid', async () => {
    const { accessToken, jti } = await rootDelegation();
    const mine = await callIntrospect(sys.client, accessToken, await argocdProof());
    assert.equal(mine.active, true);
    assert.equal(mine.jti, jti);
    assert.equal(mine.actor, 'app:dashboards');
    const ciAssertion = await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer);
    assert.deepEqual(await callIntrospect(sys.client, accessToken, { 'client-assertion': ciAssertion }), {
      ...(await callIntrospect(sys.client, 'not-a-token', await argocdProof())),
    });
    const notMine = await callIntrospect(sys.client, accessToken, {
      'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer),
    });
    assert.equal(notMine.active, false);
    assert.equal(notMine.jti, '');
    const admin = await callIntrospect(sys.client, accessToken, {
      'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer),
    });
    assert.equal(admin.active, true);
    await expectCode(callIntrospect(sys.client, accessToken, {}), status.UNAUTHENTICATED);
  });
});
