import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadPolicyFile, type Policy, parsePolicy, policyWarnings } from '@aoa/policy';
import { createVerifier, protect, type Verifier } from '@aoa/sdk';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { calculateJwkThumbprint, decodeJwt, type JWK } from 'jose';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { type DevFacts, startDev } from '../packages/cli/src/dev.js';
import { aoa, type CliRun, ROOT, spawnAoa } from './support/cli.js';
import { dpopProof } from './support/oauth.js';

// Every worked example under docs/examples runs here as the docs say, against a real `aoa dev`, with
// tokens of each vendor's shape from `aoa dev token --profile`.

const EXAMPLES = join(ROOT, 'docs/examples');

let dataDir: string;
let dev: Awaited<ReturnType<typeof startDev>>;
let facts: DevFacts;
let nc: NatsConnection;
const verifiers: Verifier[] = [];
const servers: Server[] = [];

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'aoa-examples-'));
  dev = await startDev({ dataDir, logLevel: 'silent' });
  facts = dev.facts;
  nc = await connect({ servers: facts.natsUrl });
});

after(async () => {
  for (const server of servers) server.close();
  for (const verifier of verifiers) verifier.close();
  await nc?.close();
  await dev?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** `aoa dev token --profile P --claim ...` against this aoa dev: the token alone. */
async function devToken(profile: string, ...claims: string[]): Promise<string> {
  const run = await aoa(
    'dev',
    'token',
    '--data-dir',
    dataDir,
    '--profile',
    profile,
    ...claims.flatMap((c) => ['--claim', c]),
  );
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trim();
}

/** Runs an example script with Node, as its README does. */
function runScript(script: string, env: Record<string, string>, args: string[] = []): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(EXAMPLES, script), ...args],
      { cwd: dataDir, env: { ...process.env, AOA_ISSUER: facts.issuer.issuer, ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A child app on loopback that accepts only aoa credentials for `audience` with `scope` (the SDK's verifier). */
async function startChildApp(audience: string, scope: string): Promise<string> {
  const verifier = createVerifier({ issuer: facts.issuer.issuer, audience, nats: nc, usageIntervalMs: 0 });
  verifiers.push(verifier);
  await verifier.whenReady();
  const server = createServer(
    protect(
      verifier,
      (_req, res, claims) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ sub: claims.sub, actor: claims.act.sub, scope: claims.scope }));
      },
      { scopes: [scope] },
    ),
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The policies the examples document: every docs/examples/<name>/policy.yaml, and okta-entra.md's. */
async function examplePolicies(): Promise<Policy[]> {
  const policies: Policy[] = [];
  for (const entry of await readdir(EXAMPLES, { withFileTypes: true })) {
    const path = join(EXAMPLES, entry.name, 'policy.yaml');
    if (entry.isDirectory() && entry.name !== 'lib') policies.push(await loadPolicyFile(path));
  }
  const markdown = await readFile(join(EXAMPLES, 'okta-entra.md'), 'utf8');
  const blocks = [...markdown.matchAll(/```yaml\n(version: 1\n[\s\S]*?)```/g)].map((m) => m[1] ?? '');
  assert.ok(blocks.length > 0, 'okta-entra.md shows a whole policy');
  for (const block of blocks) policies.push(parsePolicy(block, 'okta-entra.md'));
  return policies;
}

describe('the example policies', () => {
  it('parse, compile every condition and draw no warning', async () => {
    const policies = await examplePolicies();
    assert.ok(policies.length >= 4);
    for (const policy of policies) assert.deepEqual(policyWarnings(policy), [], policy.path);
  });

  it('decide as aoa dev does: their clients, roles and rules are in the dev policy, conditions and all', async () => {
    const devPolicy = await loadPolicyFile(facts.policyFile);
    const shape = (policy: Policy) => ({
      clients: policy.clients
        .filter((c) => c.federated)
        .map((c) => [c.id, c.federated?.idp, c.federated?.when.source, c.federated?.maxAgeSeconds]),
      roles: policy.roles.map((r) => [r.name, r.members, r.when?.source]),
      rules: policy.rules.map((r) => [r.name, r.role, r.children, r.environments, r.scopes, r.when?.source]),
    });
    const inDev = shape(devPolicy);
    for (const example of await examplePolicies()) {
      const wanted = shape(example);
      for (const part of ['clients', 'roles', 'rules'] as const) {
        for (const entry of wanted[part]) {
          const found = inDev[part].find((candidate) => candidate[0] === entry[0]);
          assert.deepEqual(found, entry, `${example.path}: ${part} ${String(entry[0])}`);
        }
      }
    }
  });
});

describe('GitHub Actions (docs/examples/github-actions)', () => {
  it('has a workflow that asks for its OIDC token with the audience and runs the exchange', async () => {
    const workflow = parseYaml(await readFile(join(EXAMPLES, 'github-actions/workflow.yml'), 'utf8')) as {
      permissions: Record<string, string>;
      jobs: Record<string, { environment: string; steps: Array<{ run?: string }> }>;
    };
    assert.equal(workflow.permissions['id-token'], 'write');
    const job = Object.values(workflow.jobs)[0];
    assert.equal(job?.environment, 'prod');
    const script = job?.steps.map((s) => s.run ?? '').join('\n') ?? '';
    assert.match(script, /ACTIONS_ID_TOKEN_REQUEST_URL/);
    assert.match(script, /audience=\$AOA_AUDIENCE/);
    assert.match(script, /github-actions\/exchange\.mjs/);
  });

  it('a run on main in prod gets a deploy-api credential bound to its own key, and deploy-api accepts it', async () => {
    const childUrl = `${await startChildApp('https://deploy-api.internal', 'deploy:release')}/releases`;
    const token = await devToken('github-actions');
    const run = await runScript('github-actions/exchange.mjs', {
      AOA_WORKLOAD_TOKEN: token,
      AOA_CHILD_URL: childUrl,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stdout.includes(token), 'the workload token is never printed');
    const { credential, child } = JSON.parse(run.stdout);
    assert.equal(credential.sub, 'idp:github:repo:octo-org/deploy:environment:prod');
    assert.equal(credential.client_id, 'client:deploy-workflow');
    assert.deepEqual(credential.act, { sub: 'app:deploy-api' });
    assert.deepEqual([credential.scope, credential.aoa_rule], ['deploy:release', 'release-from-main']);
    assert.equal(credential.token_type, 'DPoP');
    assert.ok(credential.cnf.jkt);
    assert.deepEqual(child, {
      status: 200,
      body: { sub: credential.sub, actor: 'app:deploy-api', scope: 'deploy:release' },
    });
  });

  it('refuses a run of another branch naming the rule, and another repository as no federated client', async () => {
    const branch = await devToken('github-actions', 'ref=refs/heads/feature');
    const refused = await runScript('github-actions/exchange.mjs', { AOA_WORKLOAD_TOKEN: branch });
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /^refused: 400 \S+ \(rule release-from-main\): CONDITION_FAILED: /);
    assert.ok(!refused.stderr.includes(branch), 'a refusal never prints the token');
    const fork = await devToken('github-actions', 'repository_id=999');
    const stranger = await runScript('github-actions/exchange.mjs', { AOA_WORKLOAD_TOKEN: fork });
    assert.equal(stranger.code, 3);
    assert.match(stranger.stderr, /401 invalid_client: NO_FEDERATED_CLIENT: /);
  });
});

describe('GitLab CI (docs/examples/gitlab-ci)', () => {
  it('has a job that asks for an ID token with aoa’s audience and runs the exchange', async () => {
    const pipeline = parseYaml(await readFile(join(EXAMPLES, 'gitlab-ci/gitlab-ci.yml'), 'utf8')) as Record<
      string,
      { environment: string; id_tokens: Record<string, { aud: string }>; script: string[] }
    >;
    const job = pipeline.release;
    assert.equal(job?.environment, 'production');
    assert.equal(job?.id_tokens.AOA_ID_TOKEN?.aud, 'https://aoa.example.com');
    assert.match(
      job?.script.join('\n') ?? '',
      /AOA_WORKLOAD_TOKEN="\$AOA_ID_TOKEN" node .+gitlab-ci\/exchange\.mjs/,
    );
  });

  it('a protected production job gets a deploy-api credential bound to its own key, and deploy-api accepts it', async () => {
    const childUrl = `${await startChildApp('https://deploy-api.internal', 'deploy:release')}/releases`;
    const token = await devToken('gitlab');
    const run = await runScript('gitlab-ci/exchange.mjs', {
      AOA_WORKLOAD_TOKEN: token,
      AOA_CHILD_URL: childUrl,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stdout.includes(token), 'the workload token is never printed');
    const { credential, child } = JSON.parse(run.stdout);
    assert.equal(credential.sub, 'idp:gitlab:project_path:my-group/my-project:ref_type:branch:ref:main');
    assert.equal(credential.client_id, 'client:gitlab-pipeline');
    assert.deepEqual([credential.scope, credential.aoa_rule], ['deploy:release', 'release-from-protected']);
    assert.equal(child.status, 200);
  });

  it('refuses an unprotected ref naming the rule, and another project as no federated client', async () => {
    const unprotected = await devToken('gitlab', 'ref_protected=false');
    const refused = await runScript('gitlab-ci/exchange.mjs', { AOA_WORKLOAD_TOKEN: unprotected });
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /^refused: 400 \S+ \(rule release-from-protected\): CONDITION_FAILED: /);
    const fork = await devToken('gitlab', 'project_id=21');
    const stranger = await runScript('gitlab-ci/exchange.mjs', { AOA_WORKLOAD_TOKEN: fork });
    assert.equal(stranger.code, 3);
    assert.match(stranger.stderr, /401 invalid_client: NO_FEDERATED_CLIENT: /);
  });
});

describe('Argo CD app of apps (docs/examples/argo-cd)', () => {
  const manifests = join(EXAMPLES, 'argo-cd/manifests');
  const childApplications = async () => {
    const names: string[] = [];
    for (const file of (await readdir(join(manifests, 'apps'))).sort()) {
      const app = parseYaml(await readFile(join(manifests, 'apps', file), 'utf8'));
      assert.equal(app.kind, 'Application', file);
      names.push(app.metadata.name);
    }
    return names;
  };

  it('the root Application syncs the child Applications', async () => {
    const root = parseYaml(await readFile(join(manifests, 'root-app.yaml'), 'utf8'));
    assert.deepEqual([root.kind, root.metadata.name], ['Application', 'platform-apps']);
    assert.match(root.spec.source.path, /manifests\/apps$/);
    assert.deepEqual(await childApplications(), ['dashboards', 'jobs']);
  });

  it('the controller gets the root app’s credential and delegates one per child Application, each to its own key', async () => {
    const children = await childApplications();
    const outDir = join(dataDir, 'argocd-credentials');
    const token = await devToken('kubernetes');
    const tokenFile = join(dataDir, 'projected-token');
    await writeFile(tokenFile, `${token}\n`);
    const env = { AOA_WORKLOAD_TOKEN_FILE: tokenFile, AOA_OUT_DIR: outDir };
    const run = await runScript('argo-cd/delegate-children.mjs', env, children);
    assert.equal(run.code, 0, run.stderr);
    const { root, children: delegated } = JSON.parse(run.stdout);
    const controller = 'idp:k8s:system:serviceaccount:argocd:argocd-application-controller';
    assert.deepEqual(
      [root.sub, root.client_id, root.act, root.aoa_rule],
      [controller, 'client:argocd-controller', { sub: 'app:platform-apps' }, 'argocd-root'],
    );
    assert.deepEqual(
      delegated.map((c: { app: string }) => c.app),
      children,
    );
    const metricsUrl = await startChildApp('https://metrics.internal', 'read:metrics');
    for (const child of delegated) {
      assert.equal(child.sub, controller);
      assert.equal(child.client_id, 'app:platform-apps');
      assert.deepEqual(child.act, { sub: `app:${child.app}`, act: { sub: 'app:platform-apps' } });
      assert.deepEqual([child.scope, child.aoa_rule], ['read:metrics', 'argocd-children']);
      assert.equal((await stat(child.file)).mode & 0o777, 0o600);
      const file = JSON.parse(await readFile(child.file, 'utf8'));
      const { d: _private, ...publicJwk } = file.dpop_private_jwk as JWK;
      const { cnf } = decodeJwt<{ cnf: { jkt: string } }>(file.access_token);
      assert.equal(cnf.jkt, await calculateJwkThumbprint(publicJwk));
      assert.notEqual(child.cnf.jkt, root.cnf.jkt, 'each child holds its own key');
      // The delivered credential and key work at a child app.
      const key = {
        privateKey: createPrivateKey({ key: file.dpop_private_jwk, format: 'jwk' }),
        publicJwk,
        jkt: child.cnf.jkt,
        alg: 'ES256' as const,
      };
      const url = `${metricsUrl}/metrics`;
      const answer = await fetch(url, {
        headers: {
          authorization: `DPoP ${file.access_token}`,
          dpop: await dpopProof(key, 'GET', url, file.access_token),
        },
      });
      assert.equal(answer.status, 200);
    }
    const again = await runScript('argo-cd/delegate-children.mjs', env, children);
    assert.equal(again.code, 0, again.stderr);
    assert.match(JSON.parse(again.stdout).skipped, /already exchanged/);
  });

  it('a child pod’s sidecar enrols by its service account into the child’s standing grant, whose parent is the controller', async () => {
    const docs = parseAllDocuments(await readFile(join(manifests, 'children/dashboards.yaml'), 'utf8')).map(
      (d) => d.toJS(),
    );
    const pod = docs.find((d) => d.kind === 'Deployment').spec.template.spec;
    const container = pod.containers.find((c: { name: string }) => c.name === 'aoa-agent');
    const agentId = container.args[container.args.indexOf('--agent-id') + 1];
    assert.ok(container.args.includes('--attestation-file'), 'the sidecar attests; it holds no join token');
    const tokenFile = join(dataDir, 'dashboards-pod.token');
    const scope = {
      namespace: pod.serviceAccountName === 'dashboards' ? 'dashboards' : 'unexpected',
      serviceaccount: { name: pod.serviceAccountName, uid: '5d1c3b9e-2a4f-4e6d-8c0b-1f3a5e7c9d20' },
      pod: { name: 'dashboards-7c9d5-x2k4q', uid: '8e2a4c6d-1b3f-4a5c-9d7e-0f2b4d6a8c13' },
      node: { name: 'worker-2', uid: '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d' },
    };
    await writeFile(tokenFile, await devToken('kubernetes', `kubernetes.io:=${JSON.stringify(scope)}`));
    const out = join(dataDir, 'dashboards.credential');
    const sidecar = spawnAoa(
      ...['agent', '--dev', '--data-dir', dataDir],
      ...['--attestation-file', tokenFile, '--agent-id', agentId, '--key-dir', join(dataDir, 'dash-keys')],
      ...['--out', out],
    );
    try {
      const deadline = Date.now() + 30_000;
      let credential: string | undefined;
      while (!credential) {
        credential = await readFile(out, 'utf8').catch(() => undefined);
        if (sidecar.child.exitCode !== null) assert.fail(`the sidecar exited: ${sidecar.output()}`);
        if (Date.now() > deadline) assert.fail(`no credential written: ${sidecar.output()}`);
        if (!credential) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const claims = decodeJwt(credential);
      assert.equal(claims.sub, 'idp:k8s:system:serviceaccount:argocd:argocd-application-controller');
      assert.equal(claims.aoa_rule, 'argocd-standing');
      assert.deepEqual(claims.act, { sub: 'app:dashboards' });
    } finally {
      sidecar.child.kill('SIGTERM');
      assert.equal(await sidecar.exited, 0, sidecar.output());
    }
  });

  it('refuses the token of another service account as no federated client', async () => {
    const other = JSON.stringify({
      namespace: 'default',
      serviceaccount: { name: 'default', uid: '0b6c7b2e-9f3a-4d1c-8e5b-7a2f4c6d8e10' },
    });
    const token = await devToken('kubernetes', `kubernetes.io:=${other}`);
    const run = await runScript('argo-cd/delegate-children.mjs', { AOA_WORKLOAD_TOKEN: token }, ['jobs']);
    assert.equal(run.code, 3);
    assert.match(run.stderr, /NO_FEDERATED_CLIENT/);
  });
});

describe('Terraform Cloud (docs/examples/terraform-cloud)', () => {
  it('an apply run gets an ipam credential and ipam accepts it', async () => {
    const childUrl = `${await startChildApp('https://ipam.internal', 'write:subnets')}/subnets`;
    const token = await devToken('terraform-cloud');
    const run = await runScript('terraform-cloud/exchange.mjs', {
      TFC_WORKLOAD_IDENTITY_TOKEN: token,
      AOA_CHILD_URL: childUrl,
    });
    assert.equal(run.code, 0, run.stderr);
    const { credential, child } = JSON.parse(run.stdout);
    assert.equal(
      credential.sub,
      'idp:tfc:organization:acme:project:infra:workspace:network-prod:run_phase:apply',
    );
    assert.deepEqual(
      [credential.client_id, credential.aoa_rule, credential.scope],
      ['client:terraform-run', 'terraform-apply', 'write:subnets'],
    );
    assert.equal(child.status, 200);
  });

  it('refuses the plan phase naming the rule', async () => {
    const token = await devToken('terraform-cloud', 'terraform_run_phase=plan');
    const run = await runScript('terraform-cloud/exchange.mjs', { TFC_WORKLOAD_IDENTITY_TOKEN: token });
    assert.equal(run.code, 3);
    assert.match(run.stderr, /\(rule terraform-apply\): CONDITION_FAILED: /);
  });

  it('main.tf runs the exchange at apply, from a provisioner', async () => {
    const tf = await readFile(join(EXAMPLES, 'terraform-cloud/main.tf'), 'utf8');
    assert.match(tf, /provisioner "local-exec"[\s\S]*terraform-cloud\/exchange\.mjs/);
  });
});

describe('Okta and Entra ID (docs/examples/okta-entra.md)', () => {
  /** `aoa delegate --dev --subject-token-file` with a vendor token, as the doc shows. */
  async function delegateWith(token: string): Promise<CliRun> {
    const file = join(dataDir, 'subject.jwt');
    await writeFile(file, token, { mode: 0o600 });
    return aoa(
      'delegate',
      '--dev',
      '--data-dir',
      dataDir,
      '--subject-token-file',
      file,
      '--child',
      'dashboards',
      '--env',
      'prod',
      '--scope',
      'read:metrics',
      '--json',
    );
  }

  it('an Okta user of group aoa-operators, and an Entra ID user with app role Deployer, get dashboards', async () => {
    for (const profile of ['okta', 'entra']) {
      const run = await delegateWith(await devToken(profile));
      assert.equal(run.code, 0, run.stderr);
      const issued = JSON.parse(run.stdout);
      assert.equal(issued.rule, 'operators-dashboards', profile);
      assert.match(decodeJwt(issued.accessToken).sub ?? '', new RegExp(`^idp:${profile}:`));
    }
  });

  it('refuses an Okta user outside the group, and an Entra ID groups overage with what to configure', async () => {
    const outsider = await delegateWith(await devToken('okta', 'groups:=["Everyone"]'));
    assert.equal(outsider.code, 3);
    const overage = await delegateWith(
      await devToken(
        'entra',
        'groups:=null',
        '_claim_names:={"groups":"src1"}',
        '_claim_sources:={"src1":{"endpoint":"https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}',
      ),
    );
    assert.equal(overage.code, 3);
    assert.match(overage.stderr, /groups overage/);
    assert.match(overage.stderr, /groupMembershipClaims/);
  });
});

describe('aoa dev token', () => {
  const devTokenRun = (...args: string[]) => aoa('dev', 'token', '--data-dir', dataDir, ...args);

  it('mints a token of the vendor’s shape from the running aoa dev, with the claims and audience given', async () => {
    const token = await devToken('terraform-cloud', 'terraform_workspace_name=staging');
    const claims = decodeJwt(token);
    assert.equal(claims.iss, facts.vendorIdps.tfc?.issuer);
    assert.equal(claims.aud, facts.idp.audience);
    assert.equal(claims.terraform_workspace_name, 'staging');
    assert.match(claims.sub ?? '', /:workspace:staging:run_phase:apply$/);
    const other = await devTokenRun('--profile', 'okta', '--audience', 'api://other');
    assert.equal(decodeJwt(other.stdout.trim()).aud, 'api://other');
  });

  it('refuses an unknown profile listing the known ones, and a --claim that is not NAME=VALUE', async () => {
    const unknown = await devTokenRun('--profile', 'bitbucket');
    assert.equal(unknown.code, 2);
    assert.equal(
      unknown.stderr,
      'aoa dev token: unknown --profile "bitbucket" (known: github-actions, gitlab, kubernetes, terraform-cloud, okta, entra)\n',
    );
    const bad = await devTokenRun('--profile', 'okta', '--claim', 'groups');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--claim must be NAME=VALUE \(a string\) or NAME:=JSON/);
    const json = await devTokenRun('--profile', 'okta', '--claim', 'groups:=[oops');
    assert.equal(json.code, 2);
    assert.match(json.stderr, /--claim groups:=\.\.\.: the value after := is not valid JSON/);
    const none = await devTokenRun();
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--profile is required/);
    assert.equal(unknown.stdout + bad.stdout + json.stdout + none.stdout, '');
  });
});
