import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { policyWarnings } from './lint.js';
import { parsePolicy } from './load.js';
import { baseDocument, problemsAfter } from './test-helpers.js';
import type { Policy } from './types.js';

const TENANT_A = '9188040d-6c67-4c5b-b112-36a304b66dad';
const TENANT_B = '72f988bf-86f1-41af-91ab-2d7cd011db47';

// biome-ignore lint/suspicious/noExplicitAny: tests build documents freely.
const load = (change: (doc: any) => void): Policy => {
  const doc = baseDocument();
  change(doc);
  return parsePolicy(stringify(doc), 'policy.yaml');
};

const githubRole = (when?: string) => ({ name: 'ci', members: { idps: ['gh'] }, ...(when ? { when } : {}) });
// biome-ignore lint/suspicious/noExplicitAny: tests build documents freely.
const withGithub = (doc: any, role: Record<string, unknown>, ruleWhen?: string) => {
  doc.idps.push({
    namespace: 'gh',
    profile: 'github-actions',
    issuer: 'https://token.actions.githubusercontent.com',
    audience: 'https://aoa.example.com',
  });
  doc.roles.push(role);
  doc.rules.push({
    name: 'ci-dashboards',
    role: 'ci',
    children: ['dashboards'],
    environments: ['prod'],
    scopes: { prod: ['read:metrics'] },
    ...(ruleWhen ? { when: ruleWhen } : {}),
  });
};

describe('IdP profiles', () => {
  it('fill in each vendor’s defaults, and any of them can be overridden', () => {
    const policy = load((doc) => {
      doc.idps.push(
        {
          namespace: 'entra',
          profile: 'entra',
          issuer: `https://login.microsoftonline.com/${TENANT_A}/v2.0`,
          audience: 'api://aoa',
        },
        {
          namespace: 'k8s',
          profile: 'kubernetes',
          issuer: 'https://kubernetes.default.svc',
          audience: 'aoa',
        },
        {
          namespace: 'okta',
          profile: 'okta',
          issuer: 'https://example.okta.com/oauth2/aus1',
          audience: 'api://aoa',
          groups_claim: 'aoa_groups',
          subject_claim: 'uid',
        },
      );
    });
    const [generic, entra, k8s, okta] = policy.idps;
    assert.deepEqual(
      [generic?.profile, generic?.subjectClaim, generic?.groupsClaims, generic?.tokenTypes],
      ['generic', 'sub', ['groups'], undefined],
    );
    assert.deepEqual(
      [entra?.subjectClaim, entra?.groupsClaims, entra?.tokenTypes, entra?.algorithms, entra?.requiredClaims],
      ['oid', ['groups', 'roles'], ['jwt'], ['RS256'], ['tid']],
    );
    assert.deepEqual([k8s?.tokenTypes, k8s?.requiredClaims], [['', 'jwt'], ['kubernetes.io']]);
    assert.deepEqual(
      [okta?.subjectClaim, okta?.groupsClaims, okta?.requiredClaims],
      ['uid', ['aoa_groups'], ['cid']],
    );
  });

  it('accept a {tenantid} issuer only for entra, and only with the tenants it accepts', () => {
    const template = 'https://login.microsoftonline.com/{tenantid}/v2.0';
    const policy = load((doc) => {
      doc.idps.push({
        namespace: 'entra',
        profile: 'entra',
        issuer: template,
        tenants: [TENANT_A, TENANT_B],
        audience: 'aoa',
      });
    });
    assert.deepEqual(policy.idps[1]?.tenants, [TENANT_A, TENANT_B]);
    const entra = (idp: Record<string, unknown>) =>
      problemsAfter((doc) => doc.idps.push({ namespace: 'entra', audience: 'aoa', ...idp }));
    assert.deepEqual(entra({ profile: 'entra', issuer: template }), [
      'policy.yaml: idps[1].tenants: required with a {tenantid} issuer: list the tenant ids to accept',
    ]);
    assert.deepEqual(entra({ profile: 'generic', issuer: template, tenants: [TENANT_A] }), [
      'policy.yaml: idps[1].issuer: {tenantid} is only for profile entra',
    ]);
    assert.deepEqual(entra({ profile: 'entra', issuer: template, tenants: ['contoso'] }), [
      'policy.yaml: idps[1].tenants[0]: tenant "contoso" must be a tenant id (a lowercase GUID)',
    ]);
    assert.deepEqual(
      entra({ profile: 'entra', issuer: 'https://login.microsoftonline.com/x/v2.0', tenants: [TENANT_A] }),
      ['policy.yaml: idps[1].tenants: only with a {tenantid} issuer'],
    );
    assert.match(
      entra({ profile: 'auth0', issuer: 'https://a.example' })[0] ?? '',
      /idps\[1\]\.profile: must be one of generic, okta, entra/,
    );
  });

  it('take a TokenReview only for kubernetes, with in-cluster defaults and a short cache', () => {
    const k8s = {
      namespace: 'k8s',
      profile: 'kubernetes',
      issuer: 'https://kubernetes.default.svc',
      audience: 'aoa',
    };
    const policy = load((doc) =>
      doc.idps.push({ ...k8s, token_review: { server: 'https://10.0.0.1:6443/' } }),
    );
    assert.deepEqual(policy.idps[1]?.tokenReview, {
      server: 'https://10.0.0.1:6443',
      caFile: undefined,
      tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      cacheSeconds: 10,
    });
    assert.equal(policy.idps[0]?.tokenReview, undefined);
    const review = (idp: Record<string, unknown>) => problemsAfter((doc) => doc.idps.push(idp));
    assert.deepEqual(
      review({ ...k8s, profile: 'github-actions', token_review: { server: 'https://k.example' } }),
      ['policy.yaml: idps[1].token_review: only for profile kubernetes'],
    );
    assert.deepEqual(review({ ...k8s, token_review: { server: 'https://k.example', cache: '5m' } }), [
      'policy.yaml: idps[1].token_review.cache: must be at most 60s: a deleted pod must show soon',
    ]);
    assert.deepEqual(review({ ...k8s, token_review: { server: 'http://10.0.0.1:6443' } }), [
      'policy.yaml: idps[1].token_review.server: "http://10.0.0.1:6443" must use https (http only for loopback hosts)',
    ]);
  });
});

describe('roles that admit every identity of an IdP', () => {
  it('are refused without a when, and must name a trusted IdP', () => {
    assert.deepEqual(
      problemsAfter((doc) => withGithub(doc, githubRole())),
      [
        'policy.yaml: roles[1].members.idps[0]: admits every identity of idp gh: add a when condition saying which',
      ],
    );
    assert.deepEqual(
      problemsAfter((doc) => doc.roles.push({ name: 'ci', members: { idps: ['nope'] }, when: 'true' })),
      ['policy.yaml: roles[1].members.idps[0]: no idp has namespace "nope"'],
    );
  });

  it('warn when a GitHub Actions role never pins the repository owner, on the role or on every rule', () => {
    const warnings = (role: Record<string, unknown>, ruleWhen?: string) =>
      policyWarnings(load((doc) => withGithub(doc, role, ruleWhen)));
    assert.deepEqual(warnings(githubRole('claims.ref == "refs/heads/main"')), [
      'roles[1] (ci): admits GitHub Actions tokens of idp gh from every repository of every owner; pin claims.repository_owner_id (and repository_id) in its when',
    ]);
    assert.deepEqual(warnings(githubRole('claims.repository_owner_id == "1234"')), []);
    assert.deepEqual(
      warnings(githubRole('claims.ref == "refs/heads/main"'), 'claims.repository_id == "5678"'),
      [],
    );
  });
});
