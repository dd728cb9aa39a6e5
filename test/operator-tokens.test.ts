import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUCKETS, bucketStream, OPERATOR_AUDIENCE, OPERATOR_SCOPE } from '@aoa/core';
import { auditor as auditorPb, type events, rotator as rotatorPb } from '@aoa/proto';
import { startNats } from '@aoa/testkit';
import { Metadata, status } from '@grpc/grpc-js';
import { startAuditor, systemAccess, type TestAuditor } from './support/auditor.js';
import { probeBus } from './support/bus.js';
import { clientAssertion, dpopProof, makeKey } from './support/oauth.js';
import { consoleToken, type OperatorToken, operatorMetadata } from './support/operator.js';
import { callListRevocations, callRevoke, startRevoker } from './support/revoker.js';
import { callRotator, createGrantAsAdmin, startRotator } from './support/rotator.js';
import { rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

// An operator token: an aoa token for `urn:aoa:admin` with scope `aoa:admin`, DPoP-bound, which the
// web console obtains through Delegate for a signed-in person (policy decides who). With a DPoP proof
// by its key it makes the call an administrator's at the auditor, the rotator and the revoker.

const OPERATOR = 'operator:idp:corp:sre-bot';

let sys: TestSystem;
let rev: Awaited<ReturnType<typeof startRevoker>>;
let rot: Awaited<ReturnType<typeof startRotator>>;
let auditor: TestAuditor;
let auditDir: string;
let operator: OperatorToken;
/** A token of argocd's (another client), which operators may revoke. */
let victimJti: string;

before(async () => {
  sys = await startSystem();
  rev = await startRevoker(sys);
  rot = await startRotator(sys);
  auditDir = await mkdtemp(join(tmpdir(), 'aoa-operator-audit-'));
  auditor = await startAuditor(sys.nats.url, auditDir, {}, systemAccess(sys));
  operator = await consoleToken(sys);
  victimJti = (
    await rootDelegateAsArgocd(sys, { scopes: ['read:metrics'], holderJkt: (await makeKey()).jkt })
  ).jti;
});

after(async () => {
  await auditor?.stop();
  await rot?.stop();
  await rev?.stop();
  await sys?.stop();
  if (auditDir) await rm(auditDir, { recursive: true, force: true });
});

const toMetadata = (md: Record<string, string>): Metadata => {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(md)) metadata.set(key, value);
  return metadata;
};

const verifyChain = (md: Record<string, string>) =>
  new Promise<auditorPb.VerifyChainResponse>((resolve, reject) =>
    auditor.client.verifyChain({}, toMetadata(md), (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );

const query = (request: Partial<auditorPb.QueryRequest>, md: Record<string, string>) =>
  new Promise<events.AuditEvent[]>((resolve, reject) => {
    const out: events.AuditEvent[] = [];
    const call = auditor.client.query(auditorPb.QueryRequest.fromPartial(request), toMetadata(md));
    call.on('data', (event: events.AuditEvent) => out.push(event));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });

const listGrants = (md: Record<string, string>) =>
  callRotator<rotatorPb.ListGrantsRequest, rotatorPb.ListGrantsResponse>(
    rot.client,
    rot.client.listGrants,
    rotatorPb.ListGrantsRequest.fromPartial({}),
    md,
  );

/** One administrator-only call per service, the `htu` its proof must name, and another method's. */
interface Target {
  service: string;
  htu(): string;
  otherHtu(): string;
  call(md: Record<string, string>): Promise<unknown>;
}

const targets: Target[] = [
  {
    service: 'auditor (VerifyChain)',
    htu: () => `${auditor.grpcUrl}/aoa.v1.Auditor/VerifyChain`,
    otherHtu: () => `${auditor.grpcUrl}/aoa.v1.Auditor/Lineage`,
    call: verifyChain,
  },
  {
    service: 'rotator (ListGrants)',
    htu: () => `${rot.rotator.grpcUrl}/aoa.v1.Rotator/ListGrants`,
    otherHtu: () => `${rot.rotator.grpcUrl}/aoa.v1.Rotator/DeleteGrant`,
    // Only administrators' answers are checked: the refusals below must refuse outright.
    call: listGrants,
  },
  {
    service: "revoker (Revoke of another client's jti)",
    htu: () => `${rev.revoker.grpcUrl}/aoa.v1.Revoker/Revoke`,
    otherHtu: () => `${rev.revoker.grpcUrl}/aoa.v1.Revoker/ListRevocations`,
    call: (md) => callRevoke(rev.client, { jti: victimJti, reason: 'operator test' }, md),
  },
];

/** Asserts a gRPC refusal with `code`, whose message matches `message` and holds no token. */
async function refused(promise: Promise<unknown>, code: status, message?: RegExp, token?: OperatorToken) {
  await assert.rejects(promise, (error: { code: number; details: string }) => {
    assert.equal(error.code, code, `expected ${status[code]}, got ${status[error.code]}: ${error.details}`);
    if (message) assert.match(error.details, message);
    if (token) assert.equal(error.details.includes(token.accessToken), false, 'no token in the message');
    return true;
  });
}

/** Polls `check` until it passes: a revocation reaches each service's mirror through a KV watch. */
async function eventually(check: () => Promise<void>, attempts = 400): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      return await check();
    } catch (error) {
      if (i >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

describe('an operator token makes its holder an administrator', () => {
  it('is issued through Delegate to a policy-chosen person for the console: key-bound, aoa:admin for urn:aoa:admin', async () => {
    assert.equal(operator.tokenType, 'DPoP');
    const claims = JSON.parse(Buffer.from(operator.accessToken.split('.')[1] ?? '', 'base64url').toString());
    assert.deepEqual(claims.aud, [OPERATOR_AUDIENCE]);
    assert.equal(claims.scope, OPERATOR_SCOPE);
    assert.equal(claims.client_id, 'client:console');
    assert.equal(claims.sub, 'idp:corp:sre-bot');
    assert.equal(claims.cnf.jkt, operator.key.jkt);
  });

  it('at the auditor: VerifyChain and Query answer, and the log names the person, never the token', async () => {
    const htu = (method: string) => `${auditor.grpcUrl}/aoa.v1.Auditor/${method}`;
    const chain = await verifyChain(await operatorMetadata(operator, htu('VerifyChain')));
    assert.equal(chain.ok, true, chain.problems.join('; '));
    // The operator token's own delegation, once the auditor has stored it.
    await eventually(async () => {
      const found = await query(
        { types: ['delegation.issued'] },
        await operatorMetadata(operator, htu('Query')),
      );
      assert.ok(found.some((event) => event.data?.jti === operator.jti));
    });
    assert.match(auditor.logs.text(), new RegExp(`"by":"${OPERATOR}"`));
    assert.equal(auditor.logs.text().includes(operator.accessToken), false);
  });

  it('at the rotator: ListGrants lists every grant (not only its own), and DeleteGrant is audited by the person', async () => {
    const grant = await createGrantAsAdmin(sys, rot.client, { tokenTtlSeconds: 60 });
    const htu = (method: string) => `${rot.rotator.grpcUrl}/aoa.v1.Rotator/${method}`;
    const listed = await listGrants(await operatorMetadata(operator, htu('ListGrants')));
    assert.ok(listed.grants.some((g) => g.id === grant.id && g.parentClient === 'ops'));
    // A parent client sees only its own: the operator saw what only an administrator sees.
    const argocd = await listGrants({
      'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
    });
    assert.equal(
      argocd.grants.some((g) => g.id === grant.id),
      false,
    );
    await callRotator<rotatorPb.DeleteGrantRequest, rotatorPb.DeleteGrantResponse>(
      rot.client,
      rot.client.deleteGrant,
      { grantId: grant.id },
      await operatorMetadata(operator, htu('DeleteGrant')),
    );
    const bus = await probeBus(sys.nats.url);
    try {
      const deleted = await bus.lastAudit('grant.deleted');
      assert.equal(deleted?.event.data.grant_id, grant.id);
      assert.equal(deleted?.event.data.by, OPERATOR);
    } finally {
      await bus.close();
    }
  });

  it("at the revoker: revokes another client's token and lists every revocation, its own named by the person", async () => {
    const adminJti = (
      await rootDelegateAsArgocd(sys, { scopes: ['read:metrics'], holderJkt: (await makeKey()).jkt })
    ).jti;
    await callRevoke(
      rev.client,
      { jti: adminJti },
      { 'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer) },
    );
    const htu = (method: string) => `${rev.revoker.grpcUrl}/aoa.v1.Revoker/${method}`;
    const revoked = await callRevoke(
      rev.client,
      { jti: victimJti, reason: 'operator test' },
      await operatorMetadata(operator, htu('Revoke')),
    );
    assert.equal(revoked.key, `jti.${victimJti}`);
    await eventually(async () => {
      const { revocations } = await callListRevocations(
        rev.client,
        { kind: 'jti' },
        await operatorMetadata(operator, htu('ListRevocations')),
      );
      assert.ok(revocations.some((r) => r.key === `jti.${adminJti}` && r.by === 'client:ops'));
      assert.ok(revocations.some((r) => r.key === `jti.${victimJti}` && r.by === OPERATOR));
    });
    // The same person's token without the operator scope is a plain holder: it sees nobody else's.
    const plain = await consoleToken(sys, { scopes: ['read:console'] });
    const { revocations } = await callListRevocations(
      rev.client,
      { kind: 'jti' },
      await operatorMetadata(plain, htu('ListRevocations')),
    );
    assert.deepEqual(revocations, []);
  });
});

describe("an owner's operator token (aoa:owner) sees and acts on its own clients only", () => {
  let owner: OperatorToken;
  const at = (url: () => string, service: string) => (method: string) =>
    `${url()}/aoa.v1.${service}/${method}`;
  const auditorHtu = at(() => auditor.grpcUrl, 'Auditor');
  const rotatorHtu = at(() => rot.rotator.grpcUrl, 'Rotator');
  const revokerHtu = at(() => rev.revoker.grpcUrl, 'Revoker');

  before(async () => {
    owner = await consoleToken(sys, { scopes: ['aoa:owner'] });
  });

  it('is issued for the clients whose owners roles the person holds, named in its scope', () => {
    const claims = JSON.parse(Buffer.from(owner.accessToken.split('.')[1] ?? '', 'base64url').toString());
    assert.equal(claims.scope, 'aoa:owner:argocd');
    assert.deepEqual(claims.aud, [OPERATOR_AUDIENCE]);
    assert.equal(claims.cnf.jkt, owner.key.jkt);
  });

  it("at the auditor: Query and Lineage answer for argocd's tokens only; VerifyChain is refused", async () => {
    const root = await rootDelegateAsArgocd(sys, {
      scopes: ['read:metrics'],
      holderJkt: (await makeKey()).jkt,
    });
    await eventually(async () => {
      const found = await query(
        { types: ['delegation.issued'] },
        await operatorMetadata(owner, auditorHtu('Query')),
      );
      assert.ok(found.some((event) => event.data?.jti === root.jti));
      // The console's own delegations (client console) are not argocd's.
      assert.equal(
        found.some((event) => event.data?.client_id !== 'client:argocd'),
        false,
      );
    });
    const lineage = async (jti: string) => {
      const md = toMetadata(await operatorMetadata(owner, auditorHtu('Lineage')));
      return new Promise<auditorPb.LineageResponse>((resolve, reject) =>
        auditor.client.lineage({ jti }, md, (error, response) => (error ? reject(error) : resolve(response))),
      );
    };
    assert.equal((await lineage(root.jti)).node?.jti, root.jti);
    await refused(lineage(operator.jti), status.PERMISSION_DENIED, /client you own/, owner);
    // Not even whether a jti exists: an unknown one is refused the same way.
    await refused(lineage('no-such-jti-at-all'), status.PERMISSION_DENIED, /client you own/, owner);
    await refused(
      verifyChain(await operatorMetadata(owner, auditorHtu('VerifyChain'))),
      status.PERMISSION_DENIED,
      /administrators only/,
      owner,
    );
  });

  it("at the rotator: lists and rotates argocd's grants, not another client's; deletes none", async () => {
    const own = await createGrantAsAdmin(sys, rot.client, { tokenTtlSeconds: 60, parentClient: 'argocd' });
    const other = await createGrantAsAdmin(sys, rot.client, { tokenTtlSeconds: 60 });
    const listed = await listGrants(await operatorMetadata(owner, rotatorHtu('ListGrants')));
    assert.ok(listed.grants.length > 0);
    assert.deepEqual(new Set(listed.grants.map((g) => g.parentClient)), new Set(['argocd']));
    const rotate = async (grantId: string) =>
      callRotator<rotatorPb.RotateNowRequest, rotatorPb.RotateNowResponse>(
        rot.client,
        rot.client.rotateNow,
        { grantId },
        await operatorMetadata(owner, rotatorHtu('RotateNow')),
      );
    await rotate(own.id);
    await refused(
      callRotator<rotatorPb.CreateGrantRequest, rotatorPb.CreateGrantResponse>(
        rot.client,
        rot.client.createGrant,
        rotatorPb.CreateGrantRequest.fromPartial({
          sub: 'idp:corp:grant-owner',
          child: 'dashboards',
          environment: 'prod',
          scopes: ['read:metrics'],
          tokenTtlSeconds: 60,
          parentClient: 'argocd',
        }),
        await operatorMetadata(owner, rotatorHtu('CreateGrant')),
      ),
      status.PERMISSION_DENIED,
      /does not create grants/,
      owner,
    );
    await refused(rotate(other.id), status.PERMISSION_DENIED, /parent client/, owner);
    await refused(
      callRotator<rotatorPb.DeleteGrantRequest, rotatorPb.DeleteGrantResponse>(
        rot.client,
        rot.client.deleteGrant,
        { grantId: own.id },
        await operatorMetadata(owner, rotatorHtu('DeleteGrant')),
      ),
      status.PERMISSION_DENIED,
      undefined,
      owner,
    );
  });

  it("at the revoker: revokes argocd's grant, not another client's, nor a subject or an unpresented jti", async () => {
    const own = await createGrantAsAdmin(sys, rot.client, { tokenTtlSeconds: 60, parentClient: 'argocd' });
    const other = await createGrantAsAdmin(sys, rot.client, { tokenTtlSeconds: 60 });
    const revoke = async (request: Parameters<typeof callRevoke>[1]) =>
      callRevoke(rev.client, request, await operatorMetadata(owner, revokerHtu('Revoke')));
    assert.equal((await revoke({ grantId: own.id, reason: 'owner test' })).key, `grant.${own.id}`);
    await refused(revoke({ grantId: other.id }), status.PERMISSION_DENIED, /parent client/, owner);
    await refused(revoke({ subject: 'idp:corp:argocd-sa' }), status.PERMISSION_DENIED, undefined, owner);
    await refused(revoke({ jti: operator.jti }), status.PERMISSION_DENIED, undefined, owner);
  });
});

for (const target of targets) {
  describe(`the ${target.service} refuses what is not an operator's proof`, () => {
    it('a key-bound token without the aoa:admin scope', async () => {
      const token = await consoleToken(sys, { scopes: ['read:console'] });
      await refused(
        target.call(await operatorMetadata(token, target.htu())),
        status.PERMISSION_DENIED,
        undefined,
        token,
      );
    });

    it('a key-bound token without the urn:aoa:admin audience', async () => {
      const token = await consoleToken(sys, { audience: ['https://console.internal'] });
      await refused(
        target.call(await operatorMetadata(token, target.htu())),
        status.PERMISSION_DENIED,
        undefined,
        token,
      );
    });

    it('a replayed proof (the same DPoP jti twice)', async () => {
      const md = await operatorMetadata(operator, target.htu());
      await target.call(md);
      await refused(target.call(md), status.UNAUTHENTICATED, /replay/, operator);
    });

    it('a proof by another key than the one the token is bound to', async () => {
      const md = await operatorMetadata(operator, target.htu(), await makeKey());
      await refused(target.call(md), status.UNAUTHENTICATED, /cnf\.jkt/, operator);
    });

    it('a proof for another method (wrong htu)', async () => {
      await refused(
        target.call(await operatorMetadata(operator, target.otherHtu())),
        status.UNAUTHENTICATED,
        /htu/,
        operator,
      );
    });

    it('a bearer (unbound) token, with or without a proof', async () => {
      const token = await consoleToken(sys, { bearer: true });
      assert.equal(token.tokenType, 'Bearer');
      await refused(
        target.call(await operatorMetadata(token, target.htu())),
        status.UNAUTHENTICATED,
        /cnf\.jkt/,
        token,
      );
      await refused(target.call({ authorization: `Bearer ${token.accessToken}` }), status.UNAUTHENTICATED);
    });

    it('a client assertion and a DPoP proof together', async () => {
      const md = {
        ...(await operatorMetadata(operator, target.htu())),
        'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer),
      };
      await refused(target.call(md), status.INVALID_ARGUMENT, /not both/);
    });
  });
}

describe('a revoked operator token', () => {
  it('is refused by every service once its jti is revoked', async () => {
    const token = await consoleToken(sys);
    for (const target of targets) await target.call(await operatorMetadata(token, target.htu()));
    await callRevoke(
      rev.client,
      { jti: token.jti, reason: 'operator signed out' },
      { 'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer) },
    );
    for (const target of targets) {
      await eventually(async () =>
        refused(
          target.call(await operatorMetadata(token, target.htu())),
          status.PERMISSION_DENIED,
          /revoked/,
          token,
        ),
      );
    }
  });
});

describe('a service started before the key and revocation buckets exist', () => {
  it('refuses operator proofs as unavailable, still serves admin clients, and stays ready', async () => {
    const nats = await startNats();
    const dir = await mkdtemp(join(tmpdir(), 'aoa-operator-early-'));
    const early = await startAuditor(nats.url, dir);
    try {
      const bus = await probeBus(nats.url);
      await assert.rejects(bus.jsm.streams.info(bucketStream(BUCKETS.revocations)), /not found/);
      await bus.close();
      const htu = `${early.grpcUrl}/aoa.v1.Auditor/VerifyChain`;
      const md = new Metadata();
      md.set('authorization', `DPoP ${operator.accessToken}`);
      md.set('dpop', await dpopProof(operator.key, 'POST', htu, operator.accessToken));
      await refused(
        new Promise((resolve, reject) =>
          early.client.verifyChain({}, md, (error, response) => (error ? reject(error) : resolve(response))),
        ),
        status.UNAVAILABLE,
        /revocation view/,
      );
      const admin = new Metadata();
      const { clientId, key, issuer } = early.access.admin;
      admin.set('client-assertion', await clientAssertion(clientId, key, issuer));
      await new Promise((resolve, reject) =>
        early.client.verifyChain({}, admin, (error, response) => (error ? reject(error) : resolve(response))),
      );
      const ready = await fetch(`http://127.0.0.1:${early.httpPort}/readyz`);
      assert.equal(ready.status, 200);
    } finally {
      await early.stop();
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
