import assert from 'node:assert/strict';
import { createLogger, type GrantRecord } from '@aoa/core';
import { rotator as pb } from '@aoa/proto';
import { generateAgentKeys } from '@aoa/sdk';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { buildRotator, type RunningRotator } from '../../services/rotator/src/app.js';
import { loadRotatorConfig } from '../../services/rotator/src/config.js';
import { clientAssertion } from './oauth.js';
import type { TestSystem } from './system.js';

/** Starts a rotator in-process beside a test system's issuer, logging into the system's capture. */
export async function startRotator(
  sys: TestSystem,
  env: Record<string, string> = {},
): Promise<{ rotator: RunningRotator; client: pb.RotatorClient; stop(): Promise<void> }> {
  const rotator = await buildRotator(
    loadRotatorConfig({
      NATS_URL: sys.nats.url,
      AOA_POLICY_FILE: sys.policyPath,
      AOA_ISSUER_URL: sys.issuer.issuer,
      AOA_ROTATOR_GRPC_LISTEN: '127.0.0.1:0',
      AOA_ROTATOR_HTTP_LISTEN: '127.0.0.1:0',
      AOA_ROTATOR_SCAN_INTERVAL: '100ms',
      AOA_ROTATOR_LEASE: '2s',
      ...env,
    }),
    { logger: createLogger({ service: 'rotator', level: 'debug', destination: sys.logs.stream }) },
  ).start();
  const client = new pb.RotatorClient(`127.0.0.1:${rotator.grpcPort}`, credentials.createInsecure());
  return {
    rotator,
    client,
    stop: async () => {
      client.close();
      await rotator.stop();
    },
  };
}

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

/** Calls one Rotator method with metadata; resolves the response or rejects with the gRPC error. */
export function callRotator<Req, Res>(
  client: pb.RotatorClient,
  method: Unary<Req, Res>,
  request: Req,
  metadata: Record<string, string> = {},
): Promise<Res> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve, reject) => {
    method.call(client, request, md, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

/** Metadata authenticating the test system's administrator `ops`. */
export async function asAdmin(sys: TestSystem): Promise<Record<string, string>> {
  return { 'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer) };
}

/**
 * Creates a standing grant as the administrator: read:metrics of dashboards in prod for
 * idp:corp:grant-owner, unless `request` says otherwise. Asserts that the rotator returns the grant.
 */
export async function createGrantAsAdmin(
  sys: TestSystem,
  client: pb.RotatorClient,
  request: Partial<pb.CreateGrantRequest> & { tokenTtlSeconds: number },
): Promise<pb.Grant> {
  const { grant } = await callRotator<pb.CreateGrantRequest, pb.CreateGrantResponse>(
    client,
    client.createGrant,
    pb.CreateGrantRequest.fromPartial({
      sub: 'idp:corp:grant-owner',
      child: 'dashboards',
      environment: 'prod',
      scopes: ['read:metrics'],
      ...request,
    }),
    await asAdmin(sys),
  );
  assert.ok(grant);
  return grant;
}

/** A join token for `grantId`, created by the administrator; `ttlSeconds` 0 asks for the rotator's default. */
export async function joinTokenAsAdmin(
  sys: TestSystem,
  client: pb.RotatorClient,
  grantId: string,
  ttlSeconds = 0,
): Promise<string> {
  const { joinToken } = await callRotator<pb.CreateJoinTokenRequest, pb.CreateJoinTokenResponse>(
    client,
    client.createJoinToken,
    { grantId, ttlSeconds },
    await asAdmin(sys),
  );
  return joinToken;
}

export type AgentKeys = Awaited<ReturnType<typeof generateAgentKeys>>;

/** Enrols agent `agentId` with `joinToken` and the public halves of `keys` (enrolment needs no caller). */
export function enrollAgent(
  client: pb.RotatorClient,
  joinToken: string,
  agentId: string,
  keys: AgentKeys,
  metadata: Record<string, string> = {},
): Promise<pb.EnrollResponse> {
  return callRotator<pb.EnrollRequest, pb.EnrollResponse>(
    client,
    client.enroll,
    pb.EnrollRequest.fromPartial({
      joinToken,
      agentId,
      encryptionJwk: JSON.stringify(keys.public.encryption),
      dpopJwk: JSON.stringify(keys.public.dpop),
    }),
    metadata,
  );
}

/**
 * The setup of a test about an agent of a standing grant: the administrator creates the grant (see
 * createGrantAsAdmin) and a join token, and agent `agentId` enrols with fresh keys. Starting the agent is
 * left to the test.
 */
export async function grantWithEnrolledAgent(
  sys: TestSystem,
  client: pb.RotatorClient,
  request: Partial<pb.CreateGrantRequest> & { tokenTtlSeconds: number },
  agentId: string,
): Promise<{ grant: pb.Grant; keys: AgentKeys; enrolled: pb.EnrollResponse }> {
  const grant = await createGrantAsAdmin(sys, client, request);
  const joinToken = await joinTokenAsAdmin(sys, client, grant.id);
  const keys = await generateAgentKeys();
  const enrolled = await enrollAgent(client, joinToken, agentId, keys);
  return { grant, keys, enrolled };
}

/** A grant as the rotator stores it in the grants bucket: active, of dashboards in prod, parent argocd. */
export function grantRecord(id: string, overrides: Partial<GrantRecord> = {}): GrantRecord {
  return {
    id,
    sub: 'idp:corp:owner',
    parent_client: 'argocd',
    app: 'dashboards',
    env: 'prod',
    scopes: ['read'],
    audience: ['a'],
    token_ttl_seconds: 60,
    expires_at: 0,
    state: 'active',
    created_at_ms: 1,
    ...overrides,
  };
}
