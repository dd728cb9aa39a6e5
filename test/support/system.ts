import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@aoa/core';
import { issuer as pb } from '@aoa/proto';
import {
  captureLogs,
  type NatsServer,
  type StartNatsOptions,
  startIdp,
  startNats,
  type TestIdp,
} from '@aoa/testkit';
import { credentials, Metadata } from '@grpc/grpc-js';
import { buildIssuer, type RunningIssuer } from '../../services/issuer/src/app.js';
import { loadIssuerConfig } from '../../services/issuer/src/config.js';
import { clientAssertion, makeKey, type TestKey } from './oauth.js';

export const IDP_AUDIENCE = 'https://aoa.test';

/**
 * A policy for the system tests: the real test IdP, two parent clients, an admin, three apps; with an
 * `edge` key, also a client registered with `dpop_bound_access_tokens` (it presents argocd-sa too);
 * with a `console` key, the web console's client (not an admin), which presents the `sre` group.
 * Members of `sre` may get operator tokens (`aoa:admin` for `urn:aoa:admin`) for the app `console` in
 * env `ops`; the rule also allows bearer tokens, so tests can show that no service accepts one. The
 * sre-bot owns argocd (role `argocd-owners`): with `aoa:owner` it gets an owner token, `aoa:owner:argocd`.
 */
export function testPolicy(
  idpIssuer: string,
  keys: { argocd: TestKey; ci: TestKey; admin: TestKey; edge?: TestKey; console?: TestKey },
): string {
  const jwk = (k: TestKey, kid: string) => JSON.stringify({ ...k.publicJwk, kid });
  const edge = keys.edge
    ? `
  - id: edge
    dpop_bound_access_tokens: true
    jwks: [${jwk(keys.edge, 'edge-1')}]
    may_present:
      - idp: corp
        subjects: [argocd-sa]`
    : '';
  const consoleClient = keys.console
    ? `
  - id: console
    jwks: [${jwk(keys.console, 'console-1')}]
    may_present:
      - idp: corp
        groups: [sre]`
    : '';
  return `version: 1
limits:
  max_token_ttl: 1h
idps:
  - namespace: corp
    issuer: ${idpIssuer}
    audience: ${IDP_AUDIENCE}
    groups_claim: groups
    algorithms: [ES256, RS256]
clients:
  - id: argocd
    jwks: [${jwk(keys.argocd, 'argocd-1')}]
    may_present:
      - idp: corp
        subjects: [argocd-sa]
    owners: [argocd-owners]
  - id: ci
    jwks: [${jwk(keys.ci, 'ci-1')}]
    may_present:
      - idp: corp
        subjects: [ci-runner]
  - id: ops
    admin: true
    jwks: [${jwk(keys.admin, 'ops-1')}]
    may_present:
      - idp: corp
        groups: [sre]${edge}${consoleClient}
roles:
  - name: deployers
    members:
      groups: ["corp:platform"]
  - name: ci-runners
    members:
      subjects: ["idp:corp:ci-runner"]
  - name: dashboard-apps
    members:
      apps: [dashboards]
  - name: job-apps
    members:
      apps: [jobs]
  - name: grant-owners
    members:
      subjects: ["idp:corp:grant-owner"]
  - name: operators
    members:
      groups: ["corp:sre"]
  - name: argocd-owners
    members:
      subjects: ["idp:corp:sre-bot"]
apps:
  - name: dashboards
    environments: [prod, staging]
    audiences: ["https://dashboards.internal", "https://metrics.internal"]
  - name: jobs
    environments: [prod, staging]
    audiences: ["https://metrics.internal", "https://jobs.internal"]
  - name: reports
    environments: [prod]
    audiences: ["https://metrics.internal"]
  - name: console
    environments: [ops]
    audiences: ["urn:aoa:admin", "https://console.internal"]
rules:
  - name: deployers-dashboards
    role: deployers
    children: [dashboards]
    environments: [prod, staging]
    scopes:
      prod: ["read:metrics", "write:dashboards"]
      staging: ["read:metrics", "write:dashboards", "admin"]
    max_ttl: 15m
    may_delegate: true
    max_depth: 2
  - name: ci-jobs
    role: ci-runners
    children: [jobs]
    environments: [staging]
    scopes:
      staging: ["run:job"]
    max_ttl: 5m
    bearer_allowed: true
  - name: dashboards-jobs
    role: dashboard-apps
    children: [jobs]
    environments: [prod, staging]
    scopes:
      prod: ["read:metrics", "run:job"]
      staging: ["read:metrics"]
    max_ttl: 10m
    may_delegate: true
    max_depth: 2
  - name: jobs-reports
    role: job-apps
    children: [reports]
    environments: [prod]
    scopes:
      prod: ["read:metrics"]
    max_ttl: 10m
    may_delegate: false
  - name: grant-owners-dashboards
    role: grant-owners
    children: [dashboards]
    environments: [prod]
    scopes:
      prod: ["read:metrics"]
    max_ttl: 15m
  - name: operators-console
    role: operators
    children: [console]
    environments: [ops]
    scopes:
      ops: ["aoa:admin", "aoa:owner", "read:console"]
    max_ttl: 15m
    bearer_allowed: true
`;
}

export interface TestSystem {
  nats: NatsServer;
  idp: TestIdp;
  issuer: RunningIssuer;
  dir: string;
  policyPath: string;
  keys: { argocd: TestKey; ci: TestKey; admin: TestKey; edge: TestKey; console: TestKey };
  logs: ReturnType<typeof captureLogs>;
  client: pb.IssuerClient;
  /** A token from the real IdP for an IdP client (argocd-sa is in group platform). */
  idpToken(clientId: 'argocd-sa' | 'ci-runner' | 'sre-bot' | 'intruder'): Promise<string>;
  startIssuer(env?: Record<string, string>): Promise<RunningIssuer>;
  stop(): Promise<void>;
}

/** Starts real NATS, the real test IdP and an issuer on free loopback ports. */
export async function startSystem(
  env: Record<string, string> = {},
  options: { nats?: StartNatsOptions } = {},
): Promise<TestSystem> {
  const dir = await mkdtemp(join(tmpdir(), 'aoa-test-'));
  const nats = await startNats(options.nats);
  const idp = await startIdp({
    clients: [
      { clientId: 'argocd-sa', clientSecret: 'argocd-secret', groups: ['platform'] },
      { clientId: 'ci-runner', clientSecret: 'ci-secret', groups: ['builders'] },
      { clientId: 'sre-bot', clientSecret: 'sre-secret', groups: ['sre', 'platform'] },
      { clientId: 'intruder', clientSecret: 'intruder-secret', groups: [] },
    ],
  });
  const keys = {
    argocd: await makeKey(),
    ci: await makeKey('ES256'),
    admin: await makeKey(),
    edge: await makeKey('ES256'),
    console: await makeKey(),
  };
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, testPolicy(idp.issuer, keys));
  const logs = captureLogs();
  const startIssuer = (extra: Record<string, string> = {}) =>
    buildIssuer(
      loadIssuerConfig({
        NATS_URL: nats.url,
        AOA_POLICY_FILE: policyPath,
        AOA_ISSUER_GRPC_LISTEN: '127.0.0.1:0',
        AOA_ISSUER_HTTP_LISTEN: '127.0.0.1:0',
        ...env,
        ...extra,
      }),
      { logger: createLogger({ service: 'issuer', level: 'debug', destination: logs.stream }) },
    ).start();
  const issuer = await startIssuer();
  const client = new pb.IssuerClient(`127.0.0.1:${issuer.grpcPort}`, credentials.createInsecure());
  return {
    nats,
    idp,
    issuer,
    dir,
    policyPath,
    keys,
    logs,
    client,
    idpToken: (id) => idp.token(id, IDP_AUDIENCE),
    startIssuer,
    stop: async () => {
      client.close();
      await issuer.stop();
      await idp.stop();
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Calls Delegate with metadata; resolves the response or rejects with the gRPC error. */
export function callDelegate(
  client: pb.IssuerClient,
  request: Partial<pb.DelegateRequest>,
  metadata: Record<string, string>,
  deadlineMs?: number,
): Promise<pb.DelegateResponse> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const options = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
  return new Promise((resolve, reject) => {
    client.delegate(pb.DelegateRequest.fromPartial(request), md, options, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/**
 * The root delegation most tests start from: argocd, presenting argocd-sa's IdP token, delegates
 * `scopes` of dashboards in prod to the holder of `holderJkt`.
 */
export async function rootDelegateAsArgocd(
  sys: TestSystem,
  request: { scopes: string[]; holderJkt: string; ttlSeconds?: number },
): Promise<pb.DelegateResponse> {
  return callDelegate(
    sys.client,
    { subjectToken: await sys.idpToken('argocd-sa'), child: 'dashboards', environment: 'prod', ...request },
    { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
  );
}

export function callIntrospect(
  client: pb.IssuerClient,
  token: string,
  metadata: Record<string, string>,
): Promise<pb.IntrospectResponse> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve, reject) => {
    client.introspect({ token }, md, (error, response) => (error ? reject(error) : resolve(response)));
  });
}
