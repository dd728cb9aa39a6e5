import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUCKETS, type GrantRecord, grantKeys } from '@aoa/core';
import { status } from '@grpc/grpc-js';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { clientAssertion } from './support/oauth.js';
import { callRevoke, startRevoker } from './support/revoker.js';
import { createGrantAsAdmin, startRotator } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

describe("revoking a grant: administrators and the grant's parent client", () => {
  let sys: TestSystem;
  let rot: Awaited<ReturnType<typeof startRotator>>;
  let rev: Awaited<ReturnType<typeof startRevoker>>;
  let nc: NatsConnection;

  before(async () => {
    sys = await startSystem();
    rot = await startRotator(sys);
    rev = await startRevoker(sys);
    nc = await connect({ servers: sys.nats.url });
  });
  after(async () => {
    await nc?.close();
    await rev?.stop();
    await rot?.stop();
    await sys?.stop();
  });

  const createGrant = async (parentClient: string) =>
    (await createGrantAsAdmin(sys, rot.client, { tokenTtlSeconds: 60, parentClient })).id;
  const grantState = async (id: string) =>
    (await (await new Kvm(nc).open(BUCKETS.grants)).get(grantKeys.grant(id)))?.json<GrantRecord>().state;

  it('the parent client revokes its grant, which becomes a tombstone at once', async () => {
    const id = await createGrant('argocd');
    const response = await callRevoke(
      rev.client,
      { grantId: id, reason: 'decommissioned' },
      { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
    );
    assert.ok(response.revocationId);
    assert.equal(await grantState(id), 'revoked', 'the tombstone is written with the revocation');
  });

  it('another client is refused and the grant stays active', async () => {
    const id = await createGrant('argocd');
    await assert.rejects(
      callRevoke(
        rev.client,
        { grantId: id },
        { 'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer) },
      ),
      (e: { code?: number; details?: string }) =>
        e.code === status.PERMISSION_DENIED && /parent client/.test(e.details ?? ''),
    );
    assert.equal(await grantState(id), 'active');
  });

  it('an administrator may revoke any grant, and an unknown one idempotently', async () => {
    const id = await createGrant('ci');
    const admin = async () => ({
      'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer),
    });
    await callRevoke(rev.client, { grantId: id }, await admin());
    assert.equal(await grantState(id), 'revoked');
    await callRevoke(rev.client, { grantId: 'AAAAAAAAAAAAAAAAAAAAAA' }, await admin());
  });
});
