import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AgentRecord, errorInfoFrom } from '@aoa/core';
import { policyGrantId } from '@aoa/policy';
import { rotator as pb } from '@aoa/proto';
import { type AgentKeys, createAgent, enrolmentProof, generateAgentKeys } from '@aoa/sdk';
import { kubernetesCluster, legacyServiceAccountToken, startVendorIdp, type VendorIdp } from '@aoa/testkit';
import { type ServiceError, status } from '@grpc/grpc-js';
import { parseAllDocuments } from 'yaml';
import { type BusProbe, probeBus } from './support/bus.js';
import { ROOT, spawnAoa } from './support/cli.js';
import { callRotator, startRotator } from './support/rotator.js';
import { startSystem, type TestSystem, testPolicy } from './support/system.js';

// #13 item 3: an agent in a pod enrols with its projected service-account token (and a DPoP proof of
// its own key) instead of a join token, into the policy grant whose attest names its account.

const AUDIENCE = 'aoa';
const GRANT = 'dashboards-pods';

let sys: TestSystem;
let k8s: VendorIdp;
let rot: Awaited<ReturnType<typeof startRotator>>;
let bus: BusProbe;
let dir: string;

/** The test policy with the cluster as IdP `k8s`, and a grant that pods of ci/deployer attest into. */
function policy(cluster: VendorIdp): string {
  return `${testPolicy(sys.idp.issuer, sys.keys).replace(
    '\nclients:\n',
    `\n  - namespace: k8s\n    profile: kubernetes\n    issuer: ${cluster.issuer}\n    audience: ${AUDIENCE}\nclients:\n`,
  )}grants:
  - name: ${GRANT}
    sub: idp:corp:grant-owner
    parent_client: argocd
    app: dashboards
    env: prod
    scopes: [read:metrics]
    token_ttl: 10m
    expires_in: none
    attest:
      idp: k8s
      namespace: ci
      service_account: deployer
      when: 'claims["kubernetes.io"].pod.name.startsWith("deployer-")'
`;
}

before(async () => {
  sys = await startSystem();
  dir = await mkdtemp(join(tmpdir(), 'aoa-attest-'));
  k8s = await startVendorIdp({ shape: 'kubernetes' });
  await writeFile(sys.policyPath, policy(k8s));
  bus = await probeBus(sys.nats.url);
  rot = await startRotator(sys);
  const grants = await bus.bucket('aoa_grants');
  await until('the attested grant reconciled', async () =>
    (await grants.get(`grant.${policyGrantId(GRANT)}`))?.operation === 'PUT' ? true : undefined,
  );
  await until('the issuer on the same policy', async () =>
    sys.issuer.policy().grants.some((g) => g.name === GRANT) ? true : undefined,
  );
});

after(async () => {
  await rot?.stop();
  await bus?.close();
  await k8s?.stop();
  await sys?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Enroll with `attestation`, a proof by `prover` (default: the enrolled keys), as agent `agentId`. */
async function enrol(
  attestation: string,
  keys: { private: AgentKeys; public: AgentKeys },
  agentId: string,
  prover: AgentKeys = keys.private,
): Promise<pb.EnrollResponse> {
  return callRotator<pb.EnrollRequest, pb.EnrollResponse>(
    rot.client,
    rot.client.enroll,
    pb.EnrollRequest.fromPartial({
      attestation,
      dpop: await enrolmentProof(prover, attestation),
      agentId,
      encryptionJwk: JSON.stringify(keys.public.encryption),
      dpopJwk: JSON.stringify(keys.public.dpop),
    }),
  );
}

async function refusal(
  attempt: Promise<unknown>,
): Promise<{ code: number; reason?: string; details: string }> {
  const error = (await attempt.then(
    () => assert.fail('the enrolment was accepted'),
    (e: unknown) => e,
  )) as ServiceError;
  return { code: error.code, reason: errorInfoFrom(error.metadata)?.reason, details: error.details };
}

const podToken = (claims: Record<string, unknown> = {}, audience = AUDIENCE) =>
  k8s.token({ audience, claims });
describe('an agent in a pod enrols with its service-account token', () => {
  it('into the grant its namespace and service account attest, receives credentials, and the audit names the pod', async () => {
    const keys = await generateAgentKeys();
    const token = await podToken();
    const enrolled = await enrol(token, keys, 'pod-agent');
    assert.equal(enrolled.grantId, policyGrantId(GRANT));
    assert.deepEqual(
      [enrolled.child, enrolled.environment, enrolled.dpopJkt],
      ['dashboards', 'prod', keys.dpopJkt],
    );
    const event = await bus.lastAudit('agent.enrolled');
    const cluster = kubernetesCluster(k8s);
    assert.equal(event?.event.data.by, 'idp:k8s:system:serviceaccount:ci:deployer');
    const pod = event?.event.data.pod as Record<string, string>;
    assert.deepEqual(
      [pod.idp, pod.namespace, pod.service_account, pod.pod_uid],
      ['k8s', 'ci', 'deployer', cluster.podUid],
    );
    assert.match(pod.pod ?? '', /^deployer-/);
    assert.equal(pod.node, 'worker-1');
    assert.ok(!JSON.stringify(event?.event).includes(token), 'the token never reaches the audit');

    const agent = await createAgent({
      nats: bus.nc,
      env: 'prod',
      app: 'dashboards',
      agentId: 'pod-agent',
      keys: keys.private,
      issuer: sys.issuer.issuer,
    });
    try {
      const credential = await until('a credential', async () => {
        try {
          return agent.credential();
        } catch {
          return undefined;
        }
      });
      assert.equal(credential.claims.aoa_grant, policyGrantId(GRANT));
      assert.equal(credential.claims.cnf?.jkt, keys.dpopJkt);
    } finally {
      await agent.stop();
    }
  });

  it('refuses another namespace or service account, a failing attest.when, an expired or foreign-audience token, and a legacy token', async () => {
    const keys = await generateAgentKeys();
    const scope = (change: Record<string, unknown>) => ({
      'kubernetes.io': {
        namespace: 'ci',
        node: { name: 'worker-1', uid: 'node-uid' },
        pod: { name: 'deployer-7d9f-abcde', uid: kubernetesCluster(k8s).podUid },
        serviceaccount: { name: 'deployer', uid: 'sa-uid' },
        ...change,
      },
    });
    const namespace = await refusal(enrol(await podToken(scope({ namespace: 'other' })), keys, 'a1'));
    assert.deepEqual([namespace.code, namespace.reason], [status.PERMISSION_DENIED, 'NO_ATTESTED_GRANT']);
    assert.match(namespace.details, /no policy grant attests service account other\/deployer of idp k8s/);
    const account = await refusal(
      enrol(await podToken(scope({ serviceaccount: { name: 'intruder', uid: 'x' } })), keys, 'a2'),
    );
    assert.equal(account.reason, 'NO_ATTESTED_GRANT');
    const condition = await refusal(
      enrol(await podToken(scope({ pod: { name: 'debug-shell', uid: 'p' } })), keys, 'a3'),
    );
    assert.deepEqual(
      [condition.reason, condition.details],
      ['CONDITION_FAILED', `attestation: ci/deployer fails the attest.when of grant ${GRANT}`],
    );
    const now = Math.floor(Date.now() / 1000);
    const expired = await refusal(
      enrol(await podToken({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 }), keys, 'a4'),
    );
    assert.deepEqual([expired.code, expired.reason], [status.UNAUTHENTICATED, 'SUBJECT_TOKEN_INVALID']);
    const audience = await refusal(enrol(await podToken({}, 'https://kubernetes.default.svc'), keys, 'a5'));
    assert.equal(audience.reason, 'SUBJECT_TOKEN_INVALID');
    const legacy = await refusal(enrol(await legacyServiceAccountToken(k8s), keys, 'a6'));
    assert.deepEqual([legacy.code, legacy.reason], [status.UNAUTHENTICATED, 'LEGACY_SERVICE_ACCOUNT_TOKEN']);
  });

  it('refuses a token replayed by another agent, and a proof by another key than the one enrolled', async () => {
    const first = await generateAgentKeys();
    const thief = await generateAgentKeys();
    const token = await podToken();
    const stolen = await refusal(enrol(token, first, 'mallory', thief.private));
    assert.equal(stolen.code, status.UNAUTHENTICATED);
    assert.match(stolen.details, /the DPoP proof is not by the dpop_jwk being enrolled/);
    await enrol(token, first, 'first');
    const replayed = await refusal(enrol(token, thief, 'thief'));
    assert.deepEqual([replayed.code, replayed.reason], [status.UNAUTHENTICATED, 'ATTESTATION_REPLAYED']);
    const grants = await bus.bucket('aoa_grants');
    assert.equal((await grants.get(`agent.${policyGrantId(GRANT)}.thief`))?.operation, undefined);
    const kept = (await grants.get(`agent.${policyGrantId(GRANT)}.first`))?.json<AgentRecord>();
    assert.equal(kept?.dpop_jkt, first.dpopJkt);
  });

  it('aoa agent --attestation-file enrols from the pod token file and writes the credential', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${await podToken()}\n`);
    const out = join(dir, 'dashboards.token');
    const sidecar = spawnAoa(
      'agent',
      ...['--attestation-file', tokenFile, '--agent-id', 'cli-pod', '--key-dir', join(dir, 'agent-keys')],
      ...['--out', out, '--nats', sys.nats.url, '--issuer', sys.issuer.issuer],
      ...['--rotator', `127.0.0.1:${rot.rotator.grpcPort}`],
    );
    try {
      const credential = await until('the credential file', () =>
        readFile(out, 'utf8').catch(() => undefined),
      );
      const claims = JSON.parse(Buffer.from(credential.split('.')[1] ?? '', 'base64url').toString());
      assert.equal(claims.aoa_grant, policyGrantId(GRANT));
    } finally {
      sidecar.child.kill('SIGTERM');
      assert.equal(await sidecar.exited, 0, sidecar.output());
    }
    assert.ok(
      !sidecar.output().includes((await readFile(tokenFile, 'utf8')).trim()),
      'the pod token never reaches the log',
    );
  });

  it('infra/k8s/examples/agent-sidecar.yaml runs the agent on the projected token the policy expects, sharing only the credential', async () => {
    const docs = parseAllDocuments(
      await readFile(join(ROOT, 'infra/k8s/examples/agent-sidecar.yaml'), 'utf8'),
    ).map((d) => d.toJS());
    const deployment = docs.find((d) => d.kind === 'Deployment');
    const spec = deployment.spec.template.spec;
    assert.equal(spec.automountServiceAccountToken, false, 'only the aoa-audience token is mounted');
    const token = spec.volumes.find((v: { projected?: unknown }) => v.projected).projected.sources[0]
      .serviceAccountToken;
    assert.deepEqual([token.audience, token.path], [AUDIENCE, 'token']);
    const agent = spec.containers.find((c: { name: string }) => c.name === 'aoa-agent');
    const flag = (name: string) => agent.args[agent.args.indexOf(name) + 1];
    const tokenMount = agent.volumeMounts.find((m: { name: string }) => m.name === 'aoa-token').mountPath;
    assert.equal(flag('--attestation-file'), `${tokenMount}/token`);
    assert.equal(agent.args.includes('--join-token'), false);
    const app = spec.containers.find((c: { name: string }) => c.name === 'app');
    assert.deepEqual(
      app.volumeMounts.map((m: { name: string; readOnly?: boolean }) => [m.name, m.readOnly]),
      [['credential', true]],
      'the app sees the credential file, read-only, and nothing of the agent’s',
    );
    assert.equal(flag('--out').startsWith(app.volumeMounts[0].mountPath), true);
    const natsUser = flag('--nats-user');
    assert.match(
      await readFile(join(ROOT, 'infra/nats/auth.conf'), 'utf8'),
      new RegExp(`user: ${natsUser}\\n`),
    );
    assert.equal(natsUser, `agent-prod-dashboards-${flag('--agent-id')}`);
    for (const container of spec.containers) {
      assert.equal(container.securityContext.readOnlyRootFilesystem, true, container.name);
    }
    assert.equal(spec.securityContext.runAsNonRoot, true);
  });
});
