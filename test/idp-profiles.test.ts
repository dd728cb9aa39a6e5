import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, errorInfoFrom } from '@aoa/core';
import { issuer as pb } from '@aoa/proto';
import {
  kubernetesCluster,
  legacyServiceAccountToken,
  type NatsServer,
  startNats,
  startVendorIdp,
  type VendorIdp,
} from '@aoa/testkit';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { buildIssuer, type RunningIssuer } from '../services/issuer/src/app.js';
import { loadIssuerConfig } from '../services/issuer/src/config.js';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { post } from './support/oauth-http.js';
import { callDelegate } from './support/system.js';

const AUDIENCE = 'https://aoa.test';
const TENANT_A = '9188040d-6c67-4c5b-b112-36a304b66dad';
const TENANT_B = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OID = '00000000-0000-0000-66f3-3332eca7ea81';
const OWNER_ID = '1234567';
const REPO_ID = '7654321';
const GH_SUB_NAMES = 'repo:octo-org/octo-repo:ref:refs/heads/main';
const GH_SUB_IDS = `repo:octo-org@${OWNER_ID}/octo-repo@${REPO_ID}:ref:refs/heads/main`;
const GL_SUB = 'project_path:my-group/my-project:ref_type:branch:ref:main';

interface Vendors {
  okta: VendorIdp;
  entra: VendorIdp;
  entraV1: VendorIdp;
  github: VendorIdp;
  gitlab: VendorIdp;
  k8s: VendorIdp;
  /** A second cluster, whose tokens are also checked by its API server's TokenReview. */
  k8sReviewed: VendorIdp;
  tfc: VendorIdp;
}

/** Where aoa's own service-account token for the reviewed cluster is (token_review.token_file). */
const reviewerTokenFile = () => join(dir, 'aoa-serviceaccount.token');
const REVIEWER = 'system:serviceaccount:aoa:aoa-issuer';

let dir: string;
let nats: NatsServer;
let nc: NatsConnection;
let vendors: Vendors;
let issuer: RunningIssuer;
let client: pb.IssuerClient;
let broker: TestKey;
let holder: TestKey;
/** How far the issuer's clock runs ahead of the real one: moves a test past a cache's lifetime. */
let aheadMs = 0;

/** One registered client (`broker`) that may present each vendor's identities, and rules per vendor. */
function policyOf(v: Vendors, brokerKey: TestKey): string {
  const jwk = JSON.stringify({ ...brokerKey.publicJwk, kid: 'broker-1' });
  return `version: 1
idps:
  - namespace: okta
    profile: okta
    issuer: ${v.okta.issuer}
    audience: ${AUDIENCE}
  - namespace: entra
    profile: entra
    issuer: ${v.entra.templateIssuer}
    tenants: ["${TENANT_A}"]
    audience: ${AUDIENCE}
  - namespace: entra-v1
    profile: entra
    issuer: ${v.entraV1.issuer}
    audience: ${AUDIENCE}
  - namespace: gh
    profile: github-actions
    issuer: ${v.github.issuer}
    audience: ${AUDIENCE}
  - namespace: gitlab
    profile: gitlab
    issuer: ${v.gitlab.issuer}
    audience: ${AUDIENCE}
  - namespace: k8s
    profile: kubernetes
    issuer: ${v.k8s.issuer}
    audience: ${AUDIENCE}
  - namespace: k8s-rv
    profile: kubernetes
    issuer: ${v.k8sReviewed.issuer}
    audience: ${AUDIENCE}
    token_review:
      server: ${kubernetesCluster(v.k8sReviewed).server}
      token_file: ${reviewerTokenFile()}
      cache: 30s
  - namespace: tfc
    profile: terraform-cloud
    issuer: ${v.tfc.issuer}
    audience: ${AUDIENCE}
clients:
  - id: broker
    jwks: [${jwk}]
    may_present:
      - { idp: okta, groups: [Platform] }
      - { idp: entra, groups: [Deployer] }
      - { idp: entra-v1, subjects: ["${OID}"] }
      - { idp: gh, subjects: ["${GH_SUB_NAMES}", "${GH_SUB_IDS}"] }
      - { idp: gitlab, subjects: ["${GL_SUB}"] }
      - { idp: k8s, subjects: ["system:serviceaccount:ci:deployer"] }
      - { idp: k8s-rv, subjects: ["system:serviceaccount:ci:deployer"] }
      - { idp: tfc, subjects: ["organization:acme:project:infra:workspace:prod:run_phase:plan", "organization:acme:project:infra:workspace:prod:run_phase:apply"] }
  - id: gh-deploy
    federated:
      idp: gh
      when: 'claims.repository_owner_id == "${OWNER_ID}" && claims.job_workflow_ref.startsWith("octo-org/deploy/")'
      max_age: 5m
roles:
  - name: platform
    members: { groups: ["okta:Platform", "entra:Deployer"], subjects: ["idp:entra-v1:${OID}"] }
  - name: ci
    members: { idps: [gh] }
    when: 'claims.repository_owner_id == "${OWNER_ID}" && claims.repository_id == "${REPO_ID}" && claims.ref == "refs/heads/main"'
  - name: gitlab-deployers
    members: { idps: [gitlab] }
    when: 'claims.namespace_id == "72" && claims.project_id == "20"'
  - name: pods
    members: { idps: [k8s, k8s-rv] }
    when: 'claims["kubernetes.io"].namespace == "ci"'
  - name: terraform
    members: { idps: [tfc] }
    when: 'claims.terraform_organization_name == "acme"'
apps:
  - name: dashboards
    environments: [prod]
    audiences: ["https://dashboards.internal"]
rules:
  - name: platform-dashboards
    role: platform
    children: [dashboards]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
  - name: ci-dashboards
    role: ci
    children: [dashboards]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
  - name: gitlab-production
    role: gitlab-deployers
    children: [dashboards]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
    when: 'claims.ref_protected == "true" && claims.environment == "production"'
  - name: pods-dashboards
    role: pods
    children: [dashboards]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
  - name: terraform-apply
    role: terraform
    children: [dashboards]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
    when: 'claims.terraform_run_phase == "apply"'
`;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aoa-profiles-'));
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  vendors = {
    okta: await startVendorIdp({ shape: 'okta' }),
    entra: await startVendorIdp({ shape: 'entra-v2', tenants: [TENANT_A, TENANT_B] }),
    entraV1: await startVendorIdp({ shape: 'entra-v1' }),
    github: await startVendorIdp({ shape: 'github-actions' }),
    gitlab: await startVendorIdp({ shape: 'gitlab' }),
    k8s: await startVendorIdp({ shape: 'kubernetes' }),
    k8sReviewed: await startVendorIdp({ shape: 'kubernetes' }),
    tfc: await startVendorIdp({ shape: 'terraform-cloud' }),
  };
  broker = await makeKey();
  holder = await makeKey();
  // aoa's own projected token in the reviewed cluster, for the API server's audience (its issuer).
  const reviewerToken = await vendors.k8sReviewed.token({
    audience: vendors.k8sReviewed.issuer,
    claims: {
      'kubernetes.io': { namespace: 'aoa', serviceaccount: { name: 'aoa-issuer', uid: randomUUID() } },
    },
  });
  await writeFile(reviewerTokenFile(), reviewerToken, { mode: 0o600 });
  kubernetesCluster(vendors.k8sReviewed).authDelegators.add(REVIEWER);
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, policyOf(vendors, broker));
  issuer = await buildIssuer(
    loadIssuerConfig({
      NATS_URL: nats.url,
      AOA_POLICY_FILE: policyPath,
      AOA_ISSUER_GRPC_LISTEN: '127.0.0.1:0',
      AOA_ISSUER_HTTP_LISTEN: '127.0.0.1:0',
    }),
    {
      logger: createLogger({ service: 'issuer', level: 'silent' }),
      clock: { nowMs: () => Date.now() + aheadMs },
    },
  ).start();
  client = new pb.IssuerClient(`127.0.0.1:${issuer.grpcPort}`, credentials.createInsecure());
});

after(async () => {
  client?.close();
  await issuer?.stop();
  for (const vendor of Object.values(vendors ?? {})) await vendor.stop();
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Delegates `read:metrics` of dashboards in prod as broker, presenting `subjectToken`. */
async function delegateWith(subjectToken: string) {
  return callDelegate(
    client,
    {
      subjectToken,
      child: 'dashboards',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
    },
    { 'client-assertion': await clientAssertion('broker', broker, issuer.issuer) },
  );
}

/** The refusal of a delegation: gRPC code, ErrorInfo reason and metadata, and the message. */
async function refusalOf(subjectToken: string) {
  const error = (await delegateWith(subjectToken).then(
    () => assert.fail('the delegation was not refused'),
    (e: unknown) => e,
  )) as ServiceError;
  const info = errorInfoFrom(error.metadata);
  return { code: error.code, reason: info?.reason, metadata: info?.metadata, message: error.details };
}

async function lastDenied(): Promise<Record<string, unknown>> {
  const jsm = await jetstreamManager(nc);
  const message = await jsm.streams.getMessage('AOA_AUDIT', { last_by_subj: 'aoa.audit.delegation.denied' });
  return message?.json<{ data: Record<string, unknown> }>().data ?? {};
}

const headerOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as Record<string, unknown>;

describe('Okta', () => {
  it('accepts a custom authorization server token through its groups claim', async () => {
    const token = await vendors.okta.token({ audience: AUDIENCE, claims: { groups: ['Platform'] } });
    const issued = await delegateWith(token);
    assert.equal(issued.rule, 'platform-dashboards');
  });

  it('refuses one without the groups the rule needs', async () => {
    const token = await vendors.okta.token({ audience: AUDIENCE, claims: { groups: ['Everyone'] } });
    assert.equal((await refusalOf(token)).reason, 'MAY_NOT_PRESENT');
  });
});

describe('Entra ID', () => {
  const entraToken = (claims: Record<string, unknown> = {}, tenant = TENANT_A) =>
    vendors.entra.token({ audience: AUDIENCE, tenant, claims: { oid: OID, roles: ['Deployer'], ...claims } });

  it('accepts a v2 token of an accepted tenant under the {tenantid} template, named by its oid', async () => {
    const issued = await delegateWith(await entraToken());
    assert.equal(issued.rule, 'platform-dashboards');
    const [, payload] = issued.accessToken.split('.');
    assert.equal(JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()).sub, `idp:entra:${OID}`);
  });

  it('refuses a token of another tenant, and a tid that is not the issuer’s tenant', async () => {
    const otherTenant = await refusalOf(await entraToken({}, TENANT_B));
    assert.deepEqual([otherTenant.code, otherTenant.reason], [status.UNAUTHENTICATED, 'UNTRUSTED_ISSUER']);
    const mixed = await refusalOf(await entraToken({ tid: TENANT_B }));
    assert.equal(mixed.reason, 'SUBJECT_TOKEN_INVALID');
    assert.match(mixed.message, /tid is not the tenant of the token's issuer/);
  });

  it('refuses a groups overage with what to configure, never as "no groups"', async () => {
    const overage = await refusalOf(
      await entraToken({
        groups: undefined,
        _claim_names: { groups: 'src1' },
        _claim_sources: { src1: { endpoint: 'https://graph.microsoft.com/v1.0/users/x/getMemberObjects' } },
      }),
    );
    assert.deepEqual([overage.code, overage.reason], [status.PERMISSION_DENIED, 'GROUPS_OVERAGE']);
    assert.match(overage.message, /groupMembershipClaims/);
    assert.equal((await lastDenied()).error_reason, 'GROUPS_OVERAGE');
  });

  it('accepts a v1 token (sts.windows.net shape) by its oid', async () => {
    const token = await vendors.entraV1.token({ audience: AUDIENCE, claims: { oid: OID } });
    assert.equal((await delegateWith(token)).rule, 'platform-dashboards');
  });
});

describe('GitHub Actions', () => {
  const ghToken = (claims: Record<string, unknown> = {}) =>
    vendors.github.token({
      audience: AUDIENCE,
      claims: {
        sub: GH_SUB_NAMES,
        repository_owner_id: OWNER_ID,
        repository_id: REPO_ID,
        ref: 'refs/heads/main',
        ...claims,
      },
    });

  it('accepts both subject formats when the role’s condition pins owner, repository and ref', async () => {
    assert.equal((await delegateWith(await ghToken())).rule, 'ci-dashboards');
    assert.equal((await delegateWith(await ghToken({ sub: GH_SUB_IDS }))).rule, 'ci-dashboards');
  });

  it('refuses a token whose owner, repository or ref fails the condition, naming the role', async () => {
    for (const claims of [
      { repository_owner_id: '999' },
      { repository_id: '999' },
      { ref: 'refs/heads/dev' },
    ]) {
      const refused = await refusalOf(await ghToken(claims));
      assert.deepEqual(
        [refused.code, refused.reason, refused.metadata],
        [status.PERMISSION_DENIED, 'CONDITION_FAILED', { constraint: 'roles.ci.when' }],
      );
      assert.match(refused.message, /^role ci: condition ".*" is false$/);
    }
  });
});

describe('GitLab CI', () => {
  it('accepts a protected production job of the project the role pins', async () => {
    const token = await vendors.gitlab.token({ audience: AUDIENCE });
    assert.equal(headerOf(token).typ, 'JWT');
    assert.equal((await delegateWith(token)).rule, 'gitlab-production');
  });

  it('refuses another project (role) and an unprotected ref (rule), naming which', async () => {
    const project = await refusalOf(
      await vendors.gitlab.token({ audience: AUDIENCE, claims: { project_id: '21' } }),
    );
    assert.deepEqual(
      [project.reason, project.metadata?.constraint],
      ['CONDITION_FAILED', 'roles.gitlab-deployers.when'],
    );
    const unprotected = await refusalOf(
      await vendors.gitlab.token({ audience: AUDIENCE, claims: { ref_protected: 'false' } }),
    );
    assert.deepEqual(
      [unprotected.reason, unprotected.metadata?.rule],
      ['CONDITION_FAILED', 'gitlab-production'],
    );
    assert.equal((await lastDenied()).rule, 'gitlab-production');
  });
});

describe('Kubernetes', () => {
  it('accepts a projected service-account token of the namespace the condition names', async () => {
    const token = await vendors.k8s.token({ audience: AUDIENCE });
    assert.equal(headerOf(token).typ, undefined, 'projected tokens carry no typ');
    assert.equal((await delegateWith(token)).rule, 'pods-dashboards');
  });

  it('refuses a legacy secret-based token, and a sub that is not the account kubernetes.io names', async () => {
    const legacy = await refusalOf(await legacyServiceAccountToken(vendors.k8s));
    assert.deepEqual([legacy.code, legacy.reason], [status.UNAUTHENTICATED, 'LEGACY_SERVICE_ACCOUNT_TOKEN']);
    assert.match(legacy.message, /projected service-account token/);
    const forged = await refusalOf(
      await vendors.k8s.token({ audience: AUDIENCE, claims: { sub: 'system:serviceaccount:ci:admin' } }),
    );
    assert.equal(forged.reason, 'SUBJECT_TOKEN_INVALID');
  });
});

describe('Kubernetes with TokenReview (a cluster that must see deleted pods at once)', () => {
  const cluster = () => kubernetesCluster(vendors.k8sReviewed);
  const podToken = () => vendors.k8sReviewed.token({ audience: AUDIENCE });
  const jtiOf = (token: string) =>
    String(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).jti);

  it('accepts a token its API server still accepts, asking once per token within the cache', async () => {
    const token = await podToken();
    assert.equal((await delegateWith(token)).rule, 'pods-dashboards');
    assert.equal((await delegateWith(token)).rule, 'pods-dashboards');
    assert.equal(
      cluster().reviewed.filter((jti) => jti === jtiOf(token)).length,
      1,
      'the second answer came from the cache',
    );
  });

  it('refuses a token of a deleted pod at once, though its signature and exp still verify offline', async () => {
    const seen = await podToken();
    assert.equal((await delegateWith(seen)).rule, 'pods-dashboards');
    const token = await podToken();
    cluster().deletedPods.add(cluster().podUid);
    try {
      // A token verified before the deletion is trusted only as long as the cluster's answer is kept.
      aheadMs = 31_000;
      assert.equal((await refusalOf(seen)).reason, 'TOKEN_REVIEW_REJECTED', 'cached past the review cache');
      aheadMs = 0;
      const refused = await refusalOf(token);
      assert.deepEqual([refused.code, refused.reason], [status.UNAUTHENTICATED, 'TOKEN_REVIEW_REJECTED']);
      assert.match(
        refused.message,
        /TokenReview of k8s-rv: the cluster no longer accepts it \(.*pod ".+" not found/,
      );
      assert.ok(!refused.message.includes(token), 'the token itself is never in the message');
      assert.equal((await lastDenied()).error_reason, 'TOKEN_REVIEW_REJECTED');
      // The offline-only cluster, same shape and pod: still accepted (what TokenReview is for).
      assert.equal(
        (await delegateWith(await vendors.k8s.token({ audience: AUDIENCE }))).rule,
        'pods-dashboards',
      );
    } finally {
      aheadMs = 0;
      cluster().deletedPods.clear();
    }
  });

  it('fails closed, saying what to bind, when the API server refuses aoa its reviews', async () => {
    cluster().authDelegators.delete(REVIEWER);
    try {
      const refused = await refusalOf(await podToken());
      assert.equal(refused.code, status.UNAVAILABLE);
      assert.match(
        refused.message,
        /refused aoa's own service account \(403\): bind it to the system:auth-delegator ClusterRole/,
      );
    } finally {
      cluster().authDelegators.add(REVIEWER);
    }
  });

  it('fails closed when the API server refuses aoa’s own token (401), keeps no such answer, and re-reads the token file the kubelet rotates', async () => {
    const token = await podToken();
    await writeFile(reviewerTokenFile(), 'not-a-token', { mode: 0o600 });
    const refused = await refusalOf(token);
    assert.equal(refused.code, status.UNAVAILABLE);
    assert.match(refused.message, /refused aoa's own service account \(401\)/);
    await writeFile(
      reviewerTokenFile(),
      await vendors.k8sReviewed.token({
        audience: vendors.k8sReviewed.issuer,
        claims: {
          'kubernetes.io': { namespace: 'aoa', serviceaccount: { name: 'aoa-issuer', uid: randomUUID() } },
        },
      }),
      { mode: 0o600 },
    );
    assert.equal(
      (await delegateWith(token)).rule,
      'pods-dashboards',
      're-read the rotated token, asked again',
    );
  });
});

describe('Terraform Cloud', () => {
  const run = (phase: 'plan' | 'apply') =>
    vendors.tfc.token({
      audience: AUDIENCE,
      claims: {
        terraform_organization_name: 'acme',
        terraform_project_name: 'infra',
        terraform_workspace_name: 'prod',
        terraform_run_phase: phase,
      },
    });

  it('lets the apply phase through the rule’s condition and refuses the plan phase, naming the rule', async () => {
    assert.equal((await delegateWith(await run('apply'))).rule, 'terraform-apply');
    const plan = await refusalOf(await run('plan'));
    assert.deepEqual([plan.reason, plan.metadata], ['CONDITION_FAILED', { rule: 'terraform-apply' }]);
    const event = await lastDenied();
    assert.deepEqual([event.error_reason, event.rule], ['CONDITION_FAILED', 'terraform-apply']);
  });
});

describe('a federated client (a GitHub Actions job with no stored key)', () => {
  const workflow = 'octo-org/deploy/.github/workflows/deploy.yml@refs/heads/main';
  const jobToken = (claims: Record<string, unknown> = {}) =>
    vendors.github.token({
      audience: AUDIENCE,
      claims: {
        sub: GH_SUB_NAMES,
        repository_owner_id: OWNER_ID,
        repository_id: REPO_ID,
        ref: 'refs/heads/main',
        job_workflow_ref: workflow,
        ...claims,
      },
    });
  const request = (token: string, extra: Record<string, unknown> = {}) => ({
    subjectToken: token,
    child: 'dashboards',
    environment: 'prod',
    scopes: ['read:metrics'],
    ...extra,
  });
  const federatedCall = async (token: string, key: TestKey, extra: Record<string, unknown> = {}) =>
    callDelegate(client, request(token, extra), {
      'client-assertion': token,
      dpop: await dpopProof(key, 'POST', `${issuer.grpcUrl}/aoa.v1.Issuer/Delegate`),
    });
  const federatedRefusal = async (call: Promise<unknown>) => {
    const error = (await call.then(
      () => assert.fail('the call was not refused'),
      (e: unknown) => e,
    )) as ServiceError;
    return { code: error.code, reason: errorInfoFrom(error.metadata)?.reason, message: error.details };
  };

  it('calls Delegate with its workload token and a fresh DPoP key, and gets a token bound to that key', async () => {
    const key = await makeKey('ES256');
    const issued = await federatedCall(await jobToken(), key);
    assert.equal(issued.rule, 'ci-dashboards');
    const claims = JSON.parse(Buffer.from(issued.accessToken.split('.')[1] ?? '', 'base64url').toString());
    assert.deepEqual(claims.cnf, { jkt: key.jkt });
    assert.equal(claims.client_id, 'client:gh-deploy');
    assert.equal(claims.sub, `idp:gh:${GH_SUB_NAMES}`);
  });

  it('mints nothing from a replayed, stale, unaccepted or unproved workload token', async () => {
    const token = await jobToken();
    await federatedCall(token, await makeKey());
    const replayed = await federatedRefusal(federatedCall(token, await makeKey()));
    assert.deepEqual([replayed.code, replayed.reason], [status.UNAUTHENTICATED, 'PROOF_REPLAYED']);
    const now = Math.floor(Date.now() / 1000);
    const stale = await federatedRefusal(
      federatedCall(await jobToken({ iat: now - 600, exp: now + 60 }), await makeKey()),
    );
    assert.deepEqual([stale.code, stale.reason], [status.UNAUTHENTICATED, 'WORKLOAD_TOKEN_TOO_OLD']);
    const stranger = await federatedRefusal(
      federatedCall(
        await jobToken({ job_workflow_ref: 'evil-org/x/.github/workflows/x.yml@refs/heads/main' }),
        await makeKey(),
      ),
    );
    assert.deepEqual([stranger.code, stranger.reason], [status.UNAUTHENTICATED, 'NO_FEDERATED_CLIENT']);
    const bearer = await federatedRefusal(
      callDelegate(client, request(await jobToken()), { 'client-assertion': await jobToken() }),
    );
    assert.equal(
      bearer.code,
      status.UNAUTHENTICATED,
      'a workload token alone, with no DPoP proof, mints nothing',
    );
    const elsewhere = await federatedRefusal(
      federatedCall(await jobToken(), await makeKey(), { holderJkt: (await makeKey()).jkt }),
    );
    assert.deepEqual(
      [elsewhere.code, elsewhere.message],
      [status.INVALID_ARGUMENT, "holder_jkt: a federated client's token is bound to its DPoP proof key"],
    );
  });

  it('exchanges its workload token at the RFC 8693 token endpoint with DPoP', async () => {
    const key = await makeKey('ES256');
    const token = await jobToken();
    const tokenUrl = `${issuer.issuer}/token`;
    const form = {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: token,
      subject_token: token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      aoa_child: 'dashboards',
      aoa_environment: 'prod',
      scope: 'read:metrics',
    };
    const challenge = await post(tokenUrl, form, { dpop: await dpopProof(key, 'POST', tokenUrl) });
    assert.equal(challenge.body.error, 'use_dpop_nonce');
    const nonce = challenge.headers.get('dpop-nonce') ?? '';
    const answer = await post(tokenUrl, form, {
      dpop: await dpopProof(key, 'POST', tokenUrl, undefined, { claims: { nonce } }),
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.token_type, 'DPoP');
    const replayed = await post(tokenUrl, form, {
      dpop: await dpopProof(key, 'POST', tokenUrl, undefined, { claims: { nonce } }),
    });
    assert.deepEqual([replayed.status, replayed.body.aoa_reason], [400, 'PROOF_REPLAYED']);
  });
});
