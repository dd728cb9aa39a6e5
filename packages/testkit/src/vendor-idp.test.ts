import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify } from 'jose';
import { legacyServiceAccountToken, startVendorIdp, type VendorIdp, type VendorShape } from './vendor-idp.js';

const AUDIENCE = 'api://aoa-issuer';

interface Discovery {
  issuer: string;
  jwks_uri: string;
}

interface KeySet {
  keys: Array<Record<string, unknown>>;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return (await response.json()) as T;
}

/** Verifies as a relying party would: keys from the discovery document's jwks_uri, its issuer, RS256 only. */
async function verifyAgainst(
  discovery: Discovery,
  jwt: string,
  issuer = discovery.issuer,
): Promise<JWTPayload> {
  const keys = createRemoteJWKSet(new URL(discovery.jwks_uri));
  const { payload } = await jwtVerify(jwt, keys, { issuer, audience: AUDIENCE, algorithms: ['RS256'] });
  return payload;
}

/** Starts one IdP of the shape for every test in the enclosing describe. */
function sharedIdp(shape: VendorShape, tenants?: string[]): () => VendorIdp {
  let idp: VendorIdp | undefined;
  before(async () => {
    idp = await startVendorIdp(tenants === undefined ? { shape } : { shape, tenants });
  });
  after(() => idp?.stop());
  return () => {
    assert.ok(idp, 'the IdP started');
    return idp;
  };
}

describe('okta vendor IdP', () => {
  const idp = sharedIdp('okta');

  it('serves both discovery documents under a custom authorization server issuer', async () => {
    assert.match(idp().issuer, /^http:\/\/127\.0\.0\.1:\d+\/oauth2\/aus[A-Za-z0-9]{17}$/);
    const openid = await getJson<Discovery>(`${idp().issuer}/.well-known/openid-configuration`);
    const oauth = await getJson<Discovery>(`${idp().issuer}/.well-known/oauth-authorization-server`);
    assert.equal(openid.issuer, idp().issuer);
    assert.equal(oauth.issuer, idp().issuer);
    assert.equal(openid.jwks_uri, `${idp().issuer}/v1/keys`);
    assert.equal(idp().jwksUri, openid.jwks_uri);
  });

  it('mints an access token with only alg and kid in its header and the reserved claims', async () => {
    const jwt = await idp().token({ audience: AUDIENCE });
    assert.deepEqual(Object.keys(decodeProtectedHeader(jwt)).sort(), ['alg', 'kid']);
    assert.equal(decodeProtectedHeader(jwt).alg, 'RS256');
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}/.well-known/oauth-authorization-server`),
      jwt,
    );
    assert.equal(payload.ver, 1);
    assert.match(String(payload.jti), /^AT\.[\w-]{43}$/);
    assert.match(String(payload.cid), /^0oa[A-Za-z0-9]{17}$/);
    assert.match(String(payload.uid), /^00u[A-Za-z0-9]{17}$/);
    assert.ok(Array.isArray(payload.scp));
    assert.match(String(payload.sub), /@/);
    assert.ok(Array.isArray(payload.groups));
  });

  it('overrides a claim and removes one given as undefined', async () => {
    const jwt = await idp().token({ audience: AUDIENCE, claims: { groups: ['aoa-admins'], uid: undefined } });
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}/.well-known/openid-configuration`),
      jwt,
    );
    assert.deepEqual(payload.groups, ['aoa-admins']);
    assert.equal('uid' in payload, false);
  });
});

describe('entra-v2 vendor IdP', () => {
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const idp = sharedIdp('entra-v2', [tenantA, tenantB]);

  it('serves two tenants on one port, each with its own issuer, and both sign with one key', async () => {
    const a = await getJson<Discovery>(`${idp().issuer}/.well-known/openid-configuration`);
    const b = await getJson<Discovery>(`${idp().issuerFor(tenantB)}/.well-known/openid-configuration`);
    assert.equal(a.issuer, `${new URL(idp().issuer).origin}/${tenantA}/v2.0`);
    assert.equal(b.issuer, idp().issuerFor(tenantB));
    assert.equal(a.jwks_uri, `${new URL(idp().issuer).origin}/${tenantA}/discovery/v2.0/keys`);

    const fromA = await verifyAgainst(a, await idp().token({ audience: AUDIENCE }));
    const fromB = await verifyAgainst(b, await idp().token({ audience: AUDIENCE, tenant: tenantB }));
    assert.equal(fromA.tid, tenantA);
    assert.equal(fromB.tid, tenantB);
    assert.notEqual(fromA.iss, fromB.iss);
    assert.notEqual(fromA.oid, fromB.oid, 'a user has another object id in each tenant');
  });

  it('mints a v2.0 access token with a kid-only JWT header and the documented claims', async () => {
    const jwt = await idp().token({ audience: AUDIENCE });
    const header = decodeProtectedHeader(jwt);
    assert.deepEqual(header, { alg: 'RS256', typ: 'JWT', kid: header.kid });
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}/.well-known/openid-configuration`),
      jwt,
    );
    assert.equal(payload.ver, '2.0');
    assert.equal(payload.nbf, payload.iat);
    for (const claim of ['aio', 'azp', 'azpacr', 'name', 'preferred_username', 'rh', 'scp', 'uti']) {
      assert.equal(typeof payload[claim], 'string', claim);
    }
    assert.match(String(payload.oid), /^[0-9a-f-]{36}$/);
    assert.notEqual(payload.sub, payload.oid, 'sub is pairwise, not the object id');
    assert.ok(Array.isArray(payload.roles));
    assert.ok((payload.groups as string[]).every((group) => /^[0-9a-f-]{36}$/.test(group)));
  });

  it('publishes tenant-independent metadata with the template issuer and keys that carry their issuer', async () => {
    const origin = new URL(idp().issuer).origin;
    assert.equal(idp().templateIssuer, `${origin}/{tenantid}/v2.0`);
    const common = await getJson<Discovery>(`${origin}/common/v2.0/.well-known/openid-configuration`);
    assert.equal(common.issuer, idp().templateIssuer);
    const commonKeys = await getJson<KeySet>(common.jwks_uri);
    assert.deepEqual(
      commonKeys.keys.map((key) => key.issuer),
      [idp().templateIssuer],
    );
    const tenantKeys = await getJson<KeySet>(idp().jwksUri);
    assert.deepEqual(
      tenantKeys.keys.map((key) => key.issuer),
      [idp().issuer],
    );

    // As Microsoft documents multi-tenant validation: substitute tid into the template, then match exactly.
    const jwt = await idp().token({ audience: AUDIENCE, tenant: tenantB });
    const payload = await verifyAgainst(common, jwt, common.issuer.replace('{tenantid}', tenantB));
    assert.equal(payload.tid, tenantB);
  });

  it('produces a groups overage token through claim overrides', async () => {
    const endpoint = `https://graph.microsoft.com/v1.0/users/${randomUUID()}/getMemberObjects`;
    const jwt = await idp().token({
      audience: AUDIENCE,
      claims: { groups: undefined, _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint } } },
    });
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}/.well-known/openid-configuration`),
      jwt,
    );
    assert.equal('groups' in payload, false);
    assert.deepEqual(payload._claim_names, { groups: 'src1' });
    assert.deepEqual(payload._claim_sources, { src1: { endpoint } });
  });

  it('refuses a tenant it does not serve', async () => {
    await assert.rejects(idp().token({ audience: AUDIENCE, tenant: randomUUID() }), TypeError);
  });
});

describe('entra-v1 vendor IdP', () => {
  const idp = sharedIdp('entra-v1');

  it('has an sts.windows.net-shaped issuer with its trailing slash and its discovery below it', async () => {
    assert.match(idp().issuer, /^http:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]{36}\/$/);
    const discovery = await getJson<Discovery>(`${idp().issuer}.well-known/openid-configuration`);
    assert.equal(discovery.issuer, idp().issuer);
    assert.equal(discovery.jwks_uri, `${idp().issuer}discovery/keys`);
  });

  it('mints a v1.0 access token whose header carries x5t equal to kid', async () => {
    const jwt = await idp().token({ audience: AUDIENCE });
    const header = decodeProtectedHeader(jwt);
    assert.equal(header.typ, 'JWT');
    assert.equal(header.alg, 'RS256');
    assert.equal(header.x5t, header.kid);
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}.well-known/openid-configuration`),
      jwt,
    );
    assert.equal(payload.ver, '1.0');
    assert.match(String(payload.appid), /^[0-9a-f-]{36}$/);
    assert.equal(payload.upn, payload.unique_name);
    assert.equal(payload.tid, new URL(idp().issuer).pathname.split('/')[1]);
  });

  it('publishes v1 common metadata, whose keys name no issuer', async () => {
    const origin = new URL(idp().issuer).origin;
    const common = await getJson<Discovery>(`${origin}/common/.well-known/openid-configuration`);
    assert.equal(common.issuer, `${origin}/{tenantid}/`);
    assert.equal(common.issuer, idp().templateIssuer);
    const keys = await getJson<KeySet>(common.jwks_uri);
    assert.equal(keys.keys.length, 1);
    assert.equal(keys.keys[0]?.issuer, undefined);
    assert.equal(keys.keys[0]?.x5t, keys.keys[0]?.kid);
  });

  it('replaces groups with hasgroups through claim overrides', async () => {
    const jwt = await idp().token({ audience: AUDIENCE, claims: { groups: undefined, hasgroups: true } });
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}.well-known/openid-configuration`),
      jwt,
    );
    assert.equal('groups' in payload, false);
    assert.equal(payload.hasgroups, true);
  });
});

describe('github-actions vendor IdP', () => {
  const idp = sharedIdp('github-actions');

  it('serves discovery at the root with its keys at /.well-known/jwks', async () => {
    const discovery = await getJson<Discovery>(`${idp().issuer}/.well-known/openid-configuration`);
    assert.equal(discovery.issuer, idp().issuer);
    assert.equal(discovery.jwks_uri, `${idp().issuer}/.well-known/jwks`);
  });

  it('mints a job token with typ JWT, x5t and kid, and numeric ids as strings', async () => {
    const jwt = await idp().token({ audience: AUDIENCE });
    const header = decodeProtectedHeader(jwt);
    assert.equal(header.typ, 'JWT');
    assert.equal(header.alg, 'RS256');
    assert.equal(typeof header.x5t, 'string');
    assert.equal(typeof header.kid, 'string');
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}/.well-known/openid-configuration`),
      jwt,
    );
    assert.equal(payload.sub, 'repo:octo-org/octo-repo:environment:prod');
    for (const id of [
      'actor_id',
      'repository_id',
      'repository_owner_id',
      'run_id',
      'run_number',
      'run_attempt',
    ]) {
      assert.match(String(payload[id]), /^\d+$/, id);
      assert.equal(typeof payload[id], 'string', id);
    }
    assert.equal(payload.runner_environment, 'github-hosted');
    assert.match(String(payload.job_workflow_ref), /^[^/]+\/[^/]+\/\.github\/workflows\/.+@refs\/heads\//);
    assert.ok(
      typeof payload.nbf === 'number' && typeof payload.iat === 'number' && payload.nbf < payload.iat,
    );
  });

  it('moves sub with the claims it is made of, and takes an immutable-id sub as given', async () => {
    const discovery = await getJson<Discovery>(`${idp().issuer}/.well-known/openid-configuration`);
    const branch = await idp().token({ audience: AUDIENCE, claims: { environment: undefined } });
    assert.equal((await verifyAgainst(discovery, branch)).sub, 'repo:octo-org/octo-repo:ref:refs/heads/main');
    const colon = await idp().token({ audience: AUDIENCE, claims: { environment: 'Production:V1' } });
    assert.equal(
      (await verifyAgainst(discovery, colon)).sub,
      'repo:octo-org/octo-repo:environment:Production%3AV1',
    );
    const sub = 'repo:octo-org@65/octo-repo@74:ref:refs/heads/main';
    const immutable = await idp().token({ audience: AUDIENCE, claims: { sub } });
    assert.equal((await verifyAgainst(discovery, immutable)).sub, sub);
  });
});

describe('gitlab vendor IdP', () => {
  const idp = sharedIdp('gitlab');

  it('mints a CI/CD ID token with the documented claims and a project_path subject', async () => {
    const discovery = await getJson<Discovery>(`${idp().issuer}/.well-known/openid-configuration`);
    assert.equal(discovery.jwks_uri, `${idp().issuer}/oauth/discovery/keys`);
    const jwt = await idp().token({ audience: AUDIENCE });
    const header = decodeProtectedHeader(jwt);
    assert.deepEqual(header, { alg: 'RS256', typ: 'JWT', kid: header.kid });
    const payload = await verifyAgainst(discovery, jwt);
    assert.equal(payload.sub, 'project_path:my-group/my-project:ref_type:branch:ref:main');
    for (const id of ['namespace_id', 'project_id', 'user_id', 'pipeline_id', 'job_id']) {
      assert.match(String(payload[id]), /^\d+$/, id);
    }
    assert.equal(typeof payload.runner_id, 'number');
    assert.equal(payload.ref_protected, 'true');
    assert.equal(payload.iat, Number(payload.nbf) + 5);
  });

  it('follows a ref override in sub', async () => {
    const jwt = await idp().token({ audience: AUDIENCE, claims: { ref: 'v1.2.0', ref_type: 'tag' } });
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}/.well-known/openid-configuration`),
      jwt,
    );
    assert.equal(payload.sub, 'project_path:my-group/my-project:ref_type:tag:ref:v1.2.0');
  });
});

describe('kubernetes vendor IdP', () => {
  const idp = sharedIdp('kubernetes');

  it('serves discovery whose jwks_uri is <issuer>/openid/v1/jwks', async () => {
    const discovery = await getJson<Discovery>(`${idp().issuer}/.well-known/openid-configuration`);
    assert.equal(discovery.issuer, idp().issuer);
    assert.equal(discovery.jwks_uri, `${idp().issuer}/openid/v1/jwks`);
  });

  it('mints a projected service-account token: no typ, aud an array, bound to a pod and node', async () => {
    const jwt = await idp().token({ audience: AUDIENCE });
    const header = decodeProtectedHeader(jwt);
    assert.deepEqual(Object.keys(header).sort(), ['alg', 'kid']);
    assert.match(String(header.kid), /^[\w-]{43}$/);
    const payload = await verifyAgainst(
      await getJson(`${idp().issuer}/.well-known/openid-configuration`),
      jwt,
    );
    assert.deepEqual(payload.aud, [AUDIENCE]);
    const scope = payload['kubernetes.io'] as Record<string, { name: string; uid: string }> & {
      namespace: string;
    };
    assert.equal(payload.sub, `system:serviceaccount:${scope.namespace}:${scope.serviceaccount?.name}`);
    assert.ok(scope.pod?.uid && scope.node?.name);
    assert.equal(payload.nbf, payload.iat);
  });

  it('signs a legacy secret-based token with the same key, told apart only by its issuer', async () => {
    const discovery = await getJson<Discovery>(`${idp().issuer}/.well-known/openid-configuration`);
    const legacy = await legacyServiceAccountToken(idp(), {
      'kubernetes.io/serviceaccount/namespace': 'ops',
    });
    const projected = await idp().token({ audience: AUDIENCE });
    assert.equal(decodeProtectedHeader(legacy).kid, decodeProtectedHeader(projected).kid);
    const { payload } = await jwtVerify(legacy, createRemoteJWKSet(new URL(discovery.jwks_uri)), {
      issuer: 'kubernetes/serviceaccount',
    });
    assert.equal(payload.sub, 'system:serviceaccount:ops:deployer');
    assert.equal(typeof payload['kubernetes.io/serviceaccount/service-account.uid'], 'string');
    assert.match(String(payload['kubernetes.io/serviceaccount/secret.name']), /^deployer-token-/);
    assert.equal(payload.exp, undefined);
  });

  it('refuses a legacy token for an IdP of another shape', async () => {
    await using other = await startVendorIdp({ shape: 'terraform-cloud' });
    await assert.rejects(legacyServiceAccountToken(other), TypeError);
  });
});

describe('terraform-cloud vendor IdP', () => {
  const idp = sharedIdp('terraform-cloud');

  it('mints a run-phase token whose sub and full workspace follow the run phase', async () => {
    const discovery = await getJson<Discovery>(`${idp().issuer}/.well-known/openid-configuration`);
    assert.equal(discovery.jwks_uri, `${idp().issuer}/.well-known/jwks`);
    const jwt = await idp().token({ audience: AUDIENCE, claims: { terraform_run_phase: 'plan' } });
    const header = decodeProtectedHeader(jwt);
    assert.deepEqual(header, { alg: 'RS256', typ: 'JWT', kid: header.kid });
    const payload = await verifyAgainst(discovery, jwt);
    const workspace = 'organization:my-org:project:Default Project:workspace:my-workspace';
    assert.equal(payload.sub, `${workspace}:run_phase:plan`);
    assert.equal(payload.terraform_full_workspace, workspace);
    assert.match(String(payload.terraform_organization_id), /^org-[1-9A-HJ-NP-Za-km-z]{16}$/);
    assert.match(String(payload.terraform_workspace_id), /^ws-/);
    assert.match(String(payload.terraform_project_id), /^prj-/);
    assert.match(String(payload.terraform_run_id), /^run-/);
  });
});

describe('startVendorIdp', () => {
  it('refuses tenants for a shape that has none, and an unknown shape', async () => {
    await assert.rejects(startVendorIdp({ shape: 'okta', tenants: [randomUUID()] }), TypeError);
    await assert.rejects(startVendorIdp({ shape: 'auth0' as VendorShape }), TypeError);
  });

  it('has issuerFor only for entra shapes', async () => {
    await using idp = await startVendorIdp({ shape: 'gitlab' });
    assert.throws(() => idp.issuerFor(randomUUID()), TypeError);
    assert.equal(idp.templateIssuer, undefined);
  });
});
