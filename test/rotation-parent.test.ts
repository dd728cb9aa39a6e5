import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rotator as pb } from '@aoa/proto';
import { type Agent, createAgent, generateAgentKeys } from '@aoa/sdk';
import { status } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { clientAssertion } from './support/oauth.js';
import { callRotator, enrollAgent, startRotator } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

const grpcError = (code: number, message: RegExp) => (e: unknown) =>
  (e as { code?: number }).code === code && message.test((e as { details?: string }).details ?? '');

describe('CreateGrant by an authenticated parent', () => {
  let sys: TestSystem;
  let rot: Awaited<ReturnType<typeof startRotator>>;
  let nc: NatsConnection;
  const agents: Agent[] = [];

  /** Calls as `client`, presenting the IdP token of `identity` as `subject-token`. */
  const asParent = async (
    client: 'argocd' | 'ci',
    identity: 'argocd-sa' | 'ci-runner' | undefined,
    overrides: Partial<pb.CreateGrantRequest> = {},
  ) => {
    const metadata: Record<string, string> = {
      'client-assertion': await clientAssertion(client, sys.keys[client], sys.issuer.issuer),
    };
    if (identity) metadata['subject-token'] = await sys.idpToken(identity);
    const { grant } = await callRotator<pb.CreateGrantRequest, pb.CreateGrantResponse>(
      rot.client,
      rot.client.createGrant,
      pb.CreateGrantRequest.fromPartial({
        child: 'dashboards',
        environment: 'prod',
        scopes: ['read:metrics'],
        tokenTtlSeconds: 3,
        ...overrides,
      }),
      metadata,
    );
    assert.ok(grant);
    return grant;
  };

  before(async () => {
    sys = await startSystem();
    rot = await startRotator(sys, { AOA_GRANT_MAX_LIFETIME: '1h' });
    nc = await connect({ servers: sys.nats.url });
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await nc?.drain();
    await rot?.stop();
    await sys?.stop();
  });

  it('creates a grant for the identity the parent presents, whose agent then holds credentials', async () => {
    const grant = await asParent('argocd', 'argocd-sa');
    assert.equal(grant.sub, 'idp:corp:argocd-sa');
    assert.equal(grant.parentClient, 'argocd');
    assert.ok(grant.expiresAt <= Math.floor(Date.now() / 1000) + 3600);
    const assertion = {
      'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
    };
    const { joinToken } = await callRotator<pb.CreateJoinTokenRequest, pb.CreateJoinTokenResponse>(
      rot.client,
      rot.client.createJoinToken,
      { grantId: grant.id, ttlSeconds: 60 },
      assertion,
    );
    const keys = await generateAgentKeys();
    await enrollAgent(rot.client, joinToken, 'parented', keys);
    const agent = await createAgent({
      nats: nc,
      env: 'prod',
      app: 'dashboards',
      agentId: 'parented',
      keys: keys.private,
      issuer: sys.issuer.issuer,
    });
    agents.push(agent);
    // The rule allows argocd-sa through its group: the issuer decides each mint with the token's groups.
    const credential = await new Promise<ReturnType<Agent['credential']>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no credential within 15 s')), 15_000);
      agent.once('rotated', () => {
        clearTimeout(timer);
        resolve(agent.credential());
      });
    });
    assert.equal(credential.claims.sub, 'idp:corp:argocd-sa');
    assert.equal(credential.claims.client_id, 'client:argocd');
    assert.equal(credential.claims.aoa_grant, grant.id);
  });

  it('refuses a client presenting an identity it may not present, or naming another principal or parent', async () => {
    await assert.rejects(
      asParent('ci', 'argocd-sa'),
      grpcError(status.PERMISSION_DENIED, /client ci may not present idp:corp:argocd-sa/),
    );
    await assert.rejects(
      asParent('argocd', 'argocd-sa', { sub: 'idp:corp:grant-owner' }),
      grpcError(status.PERMISSION_DENIED, /sub: a parent creates grants for idp:corp:argocd-sa/),
    );
    await assert.rejects(
      asParent('argocd', 'argocd-sa', { parentClient: 'ci' }),
      grpcError(status.PERMISSION_DENIED, /parent_client: a parent creates grants as itself/),
    );
  });

  it('refuses what the rule does not allow: a scope, a token TTL, a lifetime past the maximum', async () => {
    await assert.rejects(
      asParent('argocd', 'argocd-sa', { scopes: ['admin'] }),
      grpcError(status.PERMISSION_DENIED, /rule deployers-dashboards does not allow scope admin in prod/),
    );
    await assert.rejects(
      asParent('argocd', 'argocd-sa', { tokenTtlSeconds: 1800 }),
      grpcError(status.PERMISSION_DENIED, /ttl 1800s exceeds rule deployers-dashboards max_ttl \(900s\)/),
    );
    await assert.rejects(
      asParent('argocd', 'argocd-sa', { expiresAt: Math.floor(Date.now() / 1000) + 7200 }),
      grpcError(status.INVALID_ARGUMENT, /expires_at: a grant lives at most 3600s/),
    );
    await assert.rejects(
      asParent('ci', 'ci-runner'),
      grpcError(status.PERMISSION_DENIED, /no rule lets idp:corp:ci-runner delegate to dashboards in prod/),
    );
  });

  it('refuses a parent without a subject token, or with one no trusted IdP signed', async () => {
    await assert.rejects(
      asParent('argocd', undefined, { sub: 'idp:corp:argocd-sa' }),
      grpcError(status.UNAUTHENTICATED, /subject-token required/),
    );
    const forged = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ iss: 'https://evil.example', sub: 'argocd-sa' }),
    ).toString('base64url')}.`;
    const metadata = {
      'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
      'subject-token': forged,
    };
    await assert.rejects(
      callRotator(
        rot.client,
        rot.client.createGrant,
        pb.CreateGrantRequest.fromPartial({ child: 'dashboards', environment: 'prod', scopes: ['x'] }),
        metadata,
      ),
      grpcError(status.UNAUTHENTICATED, /subject token: issuer is not a trusted IdP/),
    );
  });
});
