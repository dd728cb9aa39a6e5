import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AoaClaims,
  AppError,
  OPERATOR_AUDIENCE,
  OPERATOR_SCOPE,
  type VerifiedAoaToken,
} from '@aoa/core';
import type { ClientConfig } from '@aoa/policy';
import { Metadata } from '@grpc/grpc-js';
import type { ProvedHolder } from './dpop-holder.js';
import {
  actsFor,
  assertOperator,
  callerBy,
  callerProof,
  requireAdministrator,
  type ServiceCaller,
} from './operator.js';

function holder(overrides: Partial<AoaClaims> = {}): ProvedHolder {
  const claims: AoaClaims = {
    iss: 'https://issuer',
    sub: 'idp:corp:sre-bot',
    aud: [OPERATOR_AUDIENCE],
    client_id: 'client:console',
    env: 'ops',
    scope: `read:console ${OPERATOR_SCOPE}`,
    iat: 1,
    nbf: 1,
    exp: 2,
    jti: 'j'.repeat(22),
    act: { sub: 'app:console' },
    aoa_lineage: [],
    aoa_iat_ms: 1,
    aoa_max_depth: 0,
    aoa_rule: 'operators-console',
    cnf: { jkt: 'k'.repeat(43) },
    ...overrides,
  };
  const token: VerifiedAoaToken = { claims, kid: 'kid-1', alg: 'EdDSA' };
  return { token, jkt: 'k'.repeat(43) };
}

const none = { ready: () => true, check: () => undefined };
const refusedAs = (code: string, message: RegExp) => (error: unknown) =>
  error instanceof AppError && error.code === code && message.test(error.message);

describe('operator tokens', () => {
  it('make the holder of aoa:admin for urn:aoa:admin an operator named by the token subject', () => {
    const operator = assertOperator(holder(), none);
    assert.deepEqual(operator, {
      kind: 'operator',
      sub: 'idp:corp:sre-bot',
      jti: 'j'.repeat(22),
      jkt: 'k'.repeat(43),
      admin: true,
      owns: [],
    });
    assert.equal(callerBy(operator), 'operator:idp:corp:sre-bot');
    assert.deepEqual(requireAdministrator(operator), operator);
  });

  it('make the holder of aoa:owner:<client> scopes an owner of those clients, not an administrator', () => {
    const owner = assertOperator(holder({ scope: 'aoa:owner:gitlab aoa:owner:argocd aoa:owner:' }), none);
    assert.equal(owner.admin, false);
    assert.deepEqual(owner.owns, ['argocd', 'gitlab']);
    assert.equal(actsFor(owner, 'argocd'), true);
    assert.equal(actsFor(owner, 'ci'), false);
    assert.throws(() => requireAdministrator(owner), refusedAs('permission_denied', /administrators/));
    assert.throws(
      () => assertOperator(holder({ scope: 'aoa:owner read:console' }), none),
      refusedAs('permission_denied', /scope/),
    );
  });

  it('refuse a token without the operator audience or scope as permission_denied', () => {
    assert.throws(
      () => assertOperator(holder({ aud: ['https://console.internal'] }), none),
      refusedAs('permission_denied', /aud/),
    );
    assert.throws(
      () => assertOperator(holder({ scope: 'aoa:admins read:console' }), none),
      refusedAs('permission_denied', /scope/),
    );
  });

  it('refuse a revoked token (itself or an ancestor), and anything before the mirror is synchronised', () => {
    const revoked = {
      ready: () => true,
      check: () => ({ key: 'jti.x', record: { id: 'r', at_ms: 1, reason: '' } }),
    };
    assert.throws(() => assertOperator(holder(), revoked), refusedAs('permission_denied', /revoked/));
    assert.throws(
      () => assertOperator(holder(), { ...none, ready: () => false }),
      refusedAs('unavailable', /synchronised/),
    );
  });

  it('leave clients as they were: an admin client is an administrator, another client is refused', () => {
    const client = (admin: boolean): ServiceCaller => ({
      kind: 'client',
      client: { id: admin ? 'ops' : 'argocd', admin } as ClientConfig,
    });
    assert.deepEqual(requireAdministrator(client(true)), { kind: 'client', clientId: 'ops' });
    assert.equal(callerBy(client(false)), 'client:argocd');
    assert.throws(
      () => requireAdministrator(client(false)),
      refusedAs('permission_denied', /administrators only/),
    );
  });
});

describe('callerProof', () => {
  const htu = 'https://revoker.internal/aoa.v1.Revoker/Revoke';
  /** A call whose connection verified a certificate naming `uri`, counting how often it is read. */
  const certifiedCall = (uri: string, metadata: Record<string, string>) => {
    const md = new Metadata();
    for (const [key, value] of Object.entries(metadata)) md.set(key, value);
    const call = {
      metadata: md,
      reads: 0,
      getAuthContext() {
        call.reads++;
        return { sslPeerCertificate: { subjectaltname: `URI:${uri}` } };
      },
    };
    return call;
  };

  it("reads the connection's certificate only when the metadata carries no proof", () => {
    const bare = certifiedCall('spiffe://td/ns/argocd/sa/controller', {});
    assert.deepEqual(callerProof(bare, htu).certificateUris, ['spiffe://td/ns/argocd/sa/controller']);
    const proofs: Array<Record<string, string>> = [
      { 'client-assertion': 'a.b.c' },
      { dpop: 'a.b.c', authorization: 'DPoP t' },
    ];
    for (const sent of proofs) {
      const call = certifiedCall('spiffe://td/ns/argocd/sa/controller', sent);
      assert.deepEqual(callerProof(call, htu).certificateUris, []);
      assert.equal(call.reads, 0, `${Object.keys(sent).join('+')}: the certificate is not even read`);
    }
  });
});
