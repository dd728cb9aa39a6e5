import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadPolicyFile, type Policy } from '@aoa/policy';
import {
  checkPolicyFile,
  type ExplainFlags,
  explainDecision,
  explainRequestOf,
  formatDecision,
} from '../packages/cli/src/policy-command.js';
import { aoa } from './support/cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const EXAMPLE = join(ROOT, 'packages/policy/src/fixtures/example.policy.yaml');
const NOW_MS = Date.UTC(2026, 0, 1);

/** The example policy with three independent mistakes. */
const BROKEN = `version: 1
limits:
  max_token_ttl: 1h
colour: blue
idps:
  - namespace: corp
    issuer: https://idp.example.com
    audience: aoa
roles:
  - name: deployers
    members:
      groups: ["corp:platform"]
apps:
  - name: dashboards
    environments: [prod]
    audiences: ["https://dashboards.internal"]
rules:
  - name: deployers-dashboards
    role: deployers
    children: [dashboards]
    environments: [prod]
    scopes:
      prod: ["read metrics"]
    max_ttl: 15m
  - name: ghosts
    role: nobody
    children: [dashboards]
    environments: [prod]
    scopes:
      prod: ["read:metrics"]
`;

const flags = (overrides: Partial<ExplainFlags>): ExplainFlags => ({
  principal: 'idp:corp:alice',
  group: [],
  child: 'dashboards',
  env: 'prod',
  scope: ['read:metrics'],
  audience: [],
  ttl: '0',
  bearer: false,
  ...overrides,
});

describe('aoa policy check', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aoa-cli-policy-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts the example policy and counts what it holds', async () => {
    const loaded = await checkPolicyFile(EXAMPLE, 86_400);
    assert.ok(loaded.ok);
    assert.equal(loaded.policy.rules.length, 3);
  });

  it('reports every problem of a broken file at once, each with its path', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, BROKEN);
    const loaded = await checkPolicyFile(file, 86_400);
    assert.ok(!loaded.ok);
    const all = loaded.problems.join('\n');
    assert.match(all, /^broken\.yaml: colour: unknown key$/m);
    assert.match(all, /^broken\.yaml: rules\[0\]\.scopes\.prod\[0\]: .*scope/m);
    assert.match(all, /^broken\.yaml: rules\[1\]\.role: .*nobody/m);
    assert.ok(loaded.problems.length >= 3, all);
  });

  it("refuses tokens that would outlive the issuer's revocation bucket, as the issuer does", async () => {
    const file = join(dir, 'long.yaml');
    await writeFile(
      file,
      (await readFile(EXAMPLE, 'utf8')).replace('max_token_ttl: 1h', 'max_token_ttl: 2h'),
    );
    const loaded = await checkPolicyFile(file, 3600);
    assert.deepEqual(loaded.ok ? [] : loaded.problems, [
      "limits.max_token_ttl (7200s) exceeds the revocation bucket's max age (3600s)",
    ]);
    assert.ok((await checkPolicyFile(file, 7200)).ok);
  });

  it('runs as a child process: exit 0 with the counts and hash, 1 with every problem, 1 for a missing file', async () => {
    const ok = await aoa('policy', 'check', EXAMPLE);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: 2 clients, 2 apps, 3 rules \(sha256 [0-9a-f]{64}\)\n$/);
    const json = await aoa('policy', 'check', EXAMPLE, '--json');
    assert.deepEqual(
      { ...JSON.parse(json.stdout), sha256: 'x' },
      { ok: true, file: EXAMPLE, sha256: 'x', clients: 2, apps: 2, rules: 3, warnings: [] },
    );
    const file = join(dir, 'broken.yaml');
    await writeFile(file, BROKEN);
    const broken = await aoa('policy', 'check', file, '--json');
    assert.equal(broken.code, 1);
    const { problems } = JSON.parse(broken.stdout) as { problems: string[] };
    assert.deepEqual(problems, ((await checkPolicyFile(file, 86_400)) as { problems: string[] }).problems);
    const missing = await aoa('policy', 'check', join(dir, 'nope.yaml'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.yaml: \(file\): cannot read the policy file \(ENOENT\)/);
    const usage = await aoa('policy', 'check');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /aoa policy check: give the policy FILE/);
  });
});

describe('aoa policy explain', () => {
  let policy: Policy;
  before(async () => {
    policy = await loadPolicyFile(EXAMPLE);
  });
  const explain = (overrides: Partial<ExplainFlags>) => {
    const request = explainRequestOf(flags(overrides), NOW_MS);
    if ('usage' in request) throw new Error(request.usage);
    return explainDecision(policy, request);
  };

  it('allows what the first matching rule allows, with its scopes, audience and ttl', () => {
    const decision = explain({});
    assert.ok(decision.allow);
    assert.equal(decision.rule, 'deployers-dashboards');
    assert.deepEqual(decision.audience, ['https://dashboards.internal']);
    assert.equal(decision.expSeconds - NOW_MS / 1000, 900);
    assert.equal(decision.bearer, false);
    assert.match(
      formatDecision(decision, NOW_MS / 1000),
      /^allowed by rule deployers-dashboards\n.*ttl {7}900s/s,
    );
  });

  it('finds the role through a group, as the issuer does with the IdP groups claim', () => {
    assert.ok(explain({ principal: 'idp:corp:bob', group: ['platform'] }).allow);
    assert.ok(!explain({ principal: 'idp:corp:bob' }).allow);
  });

  it('denies with the reason and the closest rule', () => {
    const scope = explain({ scope: ['write:config'] });
    assert.deepEqual(scope, {
      allow: false,
      code: 'SCOPE_NOT_ALLOWED',
      reason: 'rule deployers-dashboards does not allow scope write:config in prod',
      rule: 'deployers-dashboards',
      constraint: undefined,
    });
    const bearer = explain({ bearer: true });
    assert.ok(!bearer.allow);
    assert.match(bearer.reason, /requires a key-bound token/);
    const ttl = explain({ ttl: '3600' });
    assert.ok(!ttl.allow);
    assert.match(ttl.reason, /ttl 3600s exceeds rule deployers-dashboards max_ttl \(900s\)/);
    assert.deepEqual([ttl.code, ttl.constraint], ['TTL_EXCEEDED', 'rules.deployers-dashboards.max_ttl']);
    const stranger = explain({ principal: 'idp:elsewhere:alice' });
    assert.ok(!stranger.allow);
    assert.equal(stranger.reason, 'no trusted IdP has namespace elsewhere');
    assert.deepEqual([stranger.code, stranger.constraint], ['UNTRUSTED_ISSUER', 'idps']);
  });

  it('refuses malformed flags with a usage message', () => {
    const usage = (overrides: Partial<ExplainFlags>) =>
      (explainRequestOf(flags(overrides), NOW_MS) as { usage: string }).usage;
    assert.match(usage({ principal: 'alice' }), /idp:NAMESPACE:SUBJECT/);
    assert.match(usage({ scope: [] }), /at least one --scope/);
    assert.match(usage({ child: 'Dash Boards' }), /--child "Dash Boards" is not a valid name/);
    assert.match(usage({ scope: ['a b'] }), /not a scope token/);
    assert.match(usage({ ttl: '-1' }), /--ttl must be a whole number/);
  });

  it('runs as a child process: exit 0 allowed, 3 denied, 2 for bad usage', async () => {
    const base = ['policy', 'explain', EXAMPLE, '--principal', 'idp:corp:alice', '--child', 'dashboards'];
    const allowed = await aoa(...base, '--env', 'prod', '--scope', 'read:metrics', '--json');
    assert.equal(allowed.code, 0, allowed.stderr);
    const granted = JSON.parse(allowed.stdout) as Record<string, unknown>;
    assert.equal(granted.allowed, true);
    assert.equal(granted.rule, 'deployers-dashboards');
    assert.equal(granted.ttlSeconds, 900);
    const denied = await aoa(...base, '--env', 'prod', '--scope', 'write:config');
    assert.equal(denied.code, 3);
    assert.match(
      denied.stdout,
      /^denied: rule deployers-dashboards does not allow scope write:config in prod\n {2}reason {4}SCOPE_NOT_ALLOWED\n {2}rule {6}deployers-dashboards\n/,
    );
    const usage = await aoa(...base, '--scope', 'read:metrics');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /aoa policy explain: --child, --env and at least one --scope are required/);
  });
});

describe('aoa policy with claim conditions', () => {
  const CI_POLICY = `version: 1
idps:
  - namespace: github
    profile: github-actions
    issuer: https://token.actions.githubusercontent.com
    audience: https://aoa.example.com
roles:
  - name: ci
    members: { idps: [github] }
    when: 'claims.ref == "refs/heads/main"'
apps:
  - name: dashboards
    environments: [prod]
    audiences: ["https://dashboards.internal"]
rules:
  - name: ci-dashboards
    role: ci
    children: [dashboards]
    environments: [prod]
    scopes: { prod: ["read:metrics"] }
    when: 'claims.repository_owner_id == "1234567"'
`;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aoa-cli-conditions-'));
    await writeFile(join(dir, 'ci.yaml'), CI_POLICY);
    await writeFile(
      join(dir, 'main.json'),
      JSON.stringify({ ref: 'refs/heads/main', repository_owner_id: '1234567' }),
    );
    await writeFile(
      join(dir, 'fork.json'),
      JSON.stringify({ ref: 'refs/heads/main', repository_owner_id: '99' }),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const explainCi = (claims: string) =>
    aoa(
      ...[
        'policy',
        'explain',
        join(dir, 'ci.yaml'),
        '--principal',
        'idp:github:repo:octo-org/octo-repo:ref:refs/heads/main',
      ],
      ...['--child', 'dashboards', '--env', 'prod', '--scope', 'read:metrics', '--claims', claims],
    );

  it('explain shows each condition and why it held or failed', async () => {
    const allowed = await explainCi(join(dir, 'main.json'));
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /when {6}role ci: claims\.ref == "refs\/heads\/main" -> holds\n/);
    assert.match(
      allowed.stdout,
      /when {6}rule ci-dashboards: claims\.repository_owner_id == "1234567" -> holds\n/,
    );
    const fork = await explainCi(join(dir, 'fork.json'));
    assert.equal(fork.code, 3);
    assert.match(
      fork.stdout,
      /^denied: rule ci-dashboards: condition .* is false\n {2}reason {4}CONDITION_FAILED\n/,
    );
    assert.match(fork.stdout, /rule ci-dashboards: claims\.repository_owner_id == "1234567" -> false\n/);
    const none = await explainCi(join(dir, 'missing.json'));
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--claims .*missing\.json: cannot read it \(ENOENT\)/);
  });

  it('check warns about a CI role that never pins the repository owner', async () => {
    const unpinned = join(dir, 'unpinned.yaml');
    await writeFile(
      unpinned,
      CI_POLICY.replace('\n    when: \'claims.repository_owner_id == "1234567"\'', ''),
    );
    const checked = await aoa('policy', 'check', unpinned);
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(
      checked.stderr,
      /warning: roles\[0\] \(ci\): admits GitHub Actions tokens of idp github from every repository of every owner/,
    );
    assert.equal((await aoa('policy', 'check', join(dir, 'ci.yaml'))).stderr, '');
  });
});
