import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { decide } from './decide.js';
import { parsePolicy } from './load.js';
import { findClient, findIdpByIssuer } from './lookup.js';
import { mayPresent } from './present.js';
import { baseDocument, examplePolicy, problemsAfter } from './test-helpers.js';
import type { DelegationRequest, ParentBounds } from './types.js';

const policy = examplePolicy();
const now = 1_700_000_000;

const alice = { kind: 'idp' as const, idp: 'corp', sub: 'alice', groups: [] };
const root = (overrides: Partial<DelegationRequest> = {}): DelegationRequest => ({
  principal: { ...alice, groups: [] },
  child: 'dashboards',
  env: 'prod',
  scopes: ['read:metrics'],
  audience: [],
  ttlSeconds: 0,
  holderJkt: 'jkt-of-the-holder',
  parent: undefined,
  nowSeconds: now,
  ...overrides,
});

const parentToken = (overrides: Partial<ParentBounds> = {}): ParentBounds => ({
  env: 'prod',
  scopes: ['read:metrics', 'run:job'],
  audience: ['https://jobs.internal', 'https://dashboards.internal'],
  expSeconds: now + 300,
  depth: 0,
  maxDepth: 2,
  ...overrides,
});
const sub = (
  overrides: Partial<DelegationRequest> = {},
  parent: Partial<ParentBounds> = {},
): DelegationRequest =>
  root({
    principal: { kind: 'app', app: 'dashboards' },
    child: 'jobs',
    parent: parentToken(parent),
    ...overrides,
  });

const denied = (request: DelegationRequest, reason: string, rule?: string) => {
  const decision = decide(policy, request);
  assert.deepEqual(decision.allow ? decision : { reason: decision.reason, rule: decision.rule }, {
    reason,
    rule,
  });
};

/** The stable code and the rule or constraint of a refusal. */
const refusal = (request: DelegationRequest) => {
  const decision = decide(policy, request);
  return decision.allow ? decision : [decision.code, decision.rule ?? decision.constraint];
};

describe('a root delegation', () => {
  it('is allowed by the rule for the subject’s role, for the rule’s whole max TTL', () => {
    assert.deepEqual(decide(policy, root()), {
      allow: true,
      rule: 'deployers-dashboards',
      scopes: ['read:metrics'],
      audience: ['https://dashboards.internal'],
      expSeconds: now + 900,
      bearer: false,
      depth: 0,
      maxDepth: 2,
    });
  });

  it('is allowed through a group of the same IdP, never of another', () => {
    const bob = { kind: 'idp' as const, idp: 'corp', sub: 'bob', groups: ['platform'] };
    assert.equal(decide(policy, root({ principal: bob })).allow, true);
    denied(
      root({ principal: { ...bob, idp: 'partner' } }),
      'no rule lets idp:partner:bob delegate to dashboards in prod',
    );
  });

  it('grants the requested scopes deduplicated and sorted, and a shorter TTL when asked', () => {
    const decision = decide(
      policy,
      root({ env: 'staging', scopes: ['write:config', 'read:metrics', 'write:config'], ttlSeconds: 60 }),
    );
    assert.equal(decision.allow && decision.rule, 'deployers-staging');
    assert.deepEqual(decision.allow && decision.scopes, ['read:metrics', 'write:config']);
    assert.equal(decision.allow && decision.expSeconds, now + 60);
  });

  it('is refused for an unknown app, an environment the app lacks, or a child no rule covers', () => {
    denied(root({ child: 'ghost' }), 'unknown app ghost');
    denied(root({ env: 'dev' }), 'app dashboards has no environment dev');
    denied(root({ child: 'jobs' }), 'no rule lets idp:corp:alice delegate to jobs in prod');
  });

  it('is refused a scope the rule does not give in that environment, naming the rule', () => {
    denied(
      root({ scopes: ['read:metrics', 'write:config'] }),
      'rule deployers-dashboards does not allow scope write:config in prod',
      'deployers-dashboards',
    );
    denied(root({ scopes: [] }), 'no scopes requested');
  });

  it('needs a holder key unless the rule allows bearer tokens', () => {
    denied(
      root({ holderJkt: undefined }),
      'rule deployers-dashboards requires a key-bound token: holder_jkt is required',
      'deployers-dashboards',
    );
    denied(
      root({ holderJkt: '' }),
      'rule deployers-dashboards requires a key-bound token: holder_jkt is required',
      'deployers-dashboards',
    );
    const bearer = decide(policy, root({ env: 'staging', holderJkt: undefined }));
    assert.equal(bearer.allow && bearer.bearer, true);
  });

  it('is refused a TTL over the rule’s max, naming the limit', () => {
    denied(
      root({ ttlSeconds: 901 }),
      'ttl 901s exceeds rule deployers-dashboards max_ttl (900s)',
      'deployers-dashboards',
    );
    denied(root({ ttlSeconds: -1 }), 'ttl must be 0 or a number of seconds');
  });

  it('takes only audiences of the child app', () => {
    denied(
      root({ audience: ['https://jobs.internal'] }),
      'audience https://jobs.internal is not an audience of app dashboards',
    );
    const decision = decide(policy, root({ audience: ['https://dashboards.internal'] }));
    assert.deepEqual(decision.allow && decision.audience, ['https://dashboards.internal']);
  });

  it('cannot come with a parent token', () => {
    denied(root({ parent: parentToken() }), 'an IdP identity delegates at the root, not within a token');
  });
});

describe('choosing among rules', () => {
  const doc = baseDocument();
  doc.rules.push(
    { ...doc.rules[0], name: 'wide', scopes: { prod: ['read:metrics', 'write:config'] }, max_ttl: '1h' },
    { ...doc.rules[0], name: 'bearer', scopes: { prod: ['admin'] }, bearer_allowed: false },
  );
  const three = parsePolicy(stringify(doc), 'policy.yaml');

  it('takes the first rule in file order that allows the whole request', () => {
    const first = decide(three, root());
    assert.equal(first.allow && first.rule, 'deployers-dashboards');
    assert.equal(first.allow && first.expSeconds, now + 900);
    const second = decide(three, root({ scopes: ['write:config'] }));
    assert.equal(second.allow && second.rule, 'wide');
    assert.equal(second.allow && second.expSeconds, now + 3600);
  });

  it('explains a refusal by the rule that came closest', () => {
    assert.deepEqual(decide(three, root({ scopes: ['admin'], holderJkt: undefined })), {
      allow: false,
      code: 'HOLDER_KEY_REQUIRED',
      reason: 'rule bearer requires a key-bound token: holder_jkt is required',
      rule: 'bearer',
      constraint: undefined,
    });
    assert.deepEqual(decide(three, root({ scopes: ['nothing'] })), {
      allow: false,
      code: 'SCOPE_NOT_ALLOWED',
      reason: 'rule deployers-dashboards does not allow scope nothing in prod',
      rule: 'deployers-dashboards',
      constraint: undefined,
    });
  });
});

describe('every refusal', () => {
  it('names a stable reason and the rule or the constraint it broke', () => {
    const cases: [DelegationRequest, string, string | undefined][] = [
      [root({ child: 'ghost' }), 'UNKNOWN_APP', 'apps'],
      [root({ env: 'dev' }), 'UNKNOWN_ENVIRONMENT', 'apps.dashboards.environments'],
      [root({ child: 'jobs' }), 'NO_MATCHING_RULE', 'rules'],
      [root({ scopes: [] }), 'NO_SCOPES', undefined],
      [root({ ttlSeconds: -1 }), 'INVALID_TTL', undefined],
      [root({ parent: parentToken() }), 'ROOT_ONLY', undefined],
      [root({ scopes: ['write:config'] }), 'SCOPE_NOT_ALLOWED', 'deployers-dashboards'],
      [root({ ttlSeconds: 901 }), 'TTL_EXCEEDED', 'deployers-dashboards'],
      [root({ audience: ['https://elsewhere'] }), 'AUDIENCE_NOT_OF_APP', 'apps.dashboards.audiences'],
      [sub({ parent: undefined }), 'PARENT_REQUIRED', undefined],
      [sub({}, { env: 'staging' }), 'ENVIRONMENT_CHANGE', 'parent.env'],
      [sub({}, { expSeconds: now }), 'PARENT_EXPIRED', 'parent.exp'],
      [sub({}, { depth: 1, maxDepth: 1 }), 'DEPTH_EXCEEDED', 'parent.aoa_max_depth'],
      [sub({ scopes: ['run:job'] }, { scopes: ['read:metrics'] }), 'SCOPE_NOT_IN_PARENT', 'parent.scope'],
      [sub({ audience: ['https://jobs-admin.internal'] }), 'AUDIENCE_NOT_IN_PARENT', 'parent.aud'],
      [sub({}, { audience: ['https://dashboards.internal'] }), 'AUDIENCE_NOT_IN_PARENT', 'parent.aud'],
    ];
    for (const [request, code, by] of cases) assert.deepEqual(refusal(request), [code, by]);
  });

  it('names the binding lifetime bound as the constraint of a TTL refusal', () => {
    const ttl = (request: DelegationRequest) => {
      const decision = decide(policy, request);
      return decision.allow ? decision : decision.constraint;
    };
    assert.equal(ttl(root({ ttlSeconds: 901 })), 'rules.deployers-dashboards.max_ttl');
    assert.equal(ttl(sub({ ttlSeconds: 301 })), 'parent.exp');
  });
});

describe('a sub-delegation', () => {
  it('narrows to the parent: its scopes, audience, expiry and depth', () => {
    assert.deepEqual(decide(policy, sub()), {
      allow: true,
      rule: 'dashboards-jobs',
      scopes: ['read:metrics'],
      audience: ['https://jobs.internal'],
      expSeconds: now + 300,
      bearer: false,
      depth: 1,
      maxDepth: 2,
    });
  });

  it('cannot change environment, outlive, or outgrow the presented token', () => {
    denied(
      sub({}, { env: 'staging' }),
      'environment cannot change down a chain: the presented token is for staging',
    );
    denied(sub({}, { expSeconds: now }), 'the presented token has expired');
    denied(
      sub({}, { depth: 1, maxDepth: 1 }),
      'the presented token may not be delegated further (max depth 1)',
    );
    denied(
      sub({ ttlSeconds: 301 }),
      "ttl 301s exceeds the presented token's remaining lifetime (300s)",
      'dashboards-jobs',
    );
  });

  it('cannot widen scopes or audience beyond the presented token', () => {
    denied(
      sub({ scopes: ['run:job'] }, { scopes: ['read:metrics'] }),
      'scope run:job is not granted to the presented token',
    );
    denied(
      sub({ audience: ['https://jobs-admin.internal'] }),
      'audience https://jobs-admin.internal is not in the presented token',
    );
    denied(
      sub({}, { audience: ['https://dashboards.internal'] }),
      'no audience of app jobs is within the presented token',
    );
  });

  it('lets a token start at most the rule’s max_depth further levels, never past its parent’s', () => {
    const allowed = (parent: Partial<ParentBounds>) => {
      const decision = decide(policy, sub({}, parent));
      assert.ok(decision.allow);
      return decision.maxDepth;
    };
    assert.equal(allowed({ depth: 0, maxDepth: 5 }), 2);
    assert.equal(allowed({ depth: 1, maxDepth: 5 }), 3);
    assert.equal(allowed({ depth: 0, maxDepth: 1 }), 1);
  });

  it('needs a presented token', () => {
    denied(sub({ parent: undefined }), 'app:dashboards can only delegate within the token it presents');
  });
});

describe('presenting IdP identities and lookups', () => {
  it('lets a client present only the subjects and groups listed for it', () => {
    assert.deepEqual(mayPresent(policy, 'argocd', { idp: 'corp', sub: 'argocd-sa', groups: [] }), {
      ok: true,
    });
    assert.deepEqual(mayPresent(policy, 'argocd', { idp: 'corp', sub: 'bob', groups: ['x', 'platform'] }), {
      ok: true,
    });
    assert.deepEqual(mayPresent(policy, 'argocd', { idp: 'corp', sub: 'alice', groups: ['sre'] }), {
      ok: false,
      reason: 'client argocd may not present idp:corp:alice',
    });
    assert.deepEqual(
      mayPresent(policy, 'argocd', { idp: 'partner', sub: 'argocd-sa', groups: ['platform'] }),
      {
        ok: false,
        reason: 'client argocd may not present idp:partner:argocd-sa',
      },
    );
    assert.deepEqual(mayPresent(policy, 'flux', { idp: 'corp', sub: 'argocd-sa', groups: [] }), {
      ok: false,
      reason: 'unknown client flux',
    });
  });

  it('finds clients by id and IdPs by their exact issuer', () => {
    assert.equal(findClient(policy, 'ops-console')?.admin, true);
    assert.equal(findClient(policy, 'nobody'), undefined);
    assert.equal(findIdpByIssuer(policy, 'https://idp.example.com')?.namespace, 'corp');
    assert.equal(findIdpByIssuer(policy, 'https://idp.example.com/'), undefined);
  });
});

describe('owner scopes', () => {
  // argocd is owned by the deployers (alice); gitlab by the release managers (bob).
  const doc = baseDocument();
  doc.clients[0].owners = ['deployers'];
  doc.clients.push({ ...doc.clients[0], id: 'gitlab', owners: ['release-managers'] });
  doc.roles.push({ name: 'release-managers', members: { subjects: ['idp:corp:bob'] } });
  doc.roles.push({
    name: 'people',
    members: { subjects: ['idp:corp:alice', 'idp:corp:bob', 'idp:corp:carol'] },
  });
  doc.apps.push({ name: 'console', environments: ['ops'], audiences: ['urn:aoa:admin'] });
  doc.rules.push({
    name: 'console-owners',
    role: 'people',
    children: ['console'],
    environments: ['ops'],
    scopes: { ops: ['aoa:owner'] },
    max_ttl: '15m',
  });
  const owners = parsePolicy(stringify(doc), 'policy.yaml');
  const ask = (sub: string, scopes: string[]) =>
    decide(owners, root({ principal: { ...alice, sub }, child: 'console', env: 'ops', scopes }));
  const granted = (sub: string, scopes: string[]) => {
    const decision = ask(sub, scopes);
    return decision.allow ? decision.scopes : [decision.code, decision.constraint];
  };

  it('turns aoa:owner into the clients whose owners roles the person holds', () => {
    assert.deepEqual(granted('alice', ['aoa:owner']), ['aoa:owner:argocd']);
    assert.deepEqual(granted('bob', ['aoa:owner']), ['aoa:owner:gitlab']);
  });

  it('refuses aoa:owner to a person who owns no client', () => {
    assert.deepEqual(granted('carol', ['aoa:owner']), ['SCOPE_NOT_ALLOWED', 'clients.owners']);
  });

  it("refuses another client's owner scope, asked for by name", () => {
    assert.deepEqual(granted('alice', ['aoa:owner:gitlab']), ['SCOPE_NOT_ALLOWED', 'clients.gitlab.owners']);
    assert.deepEqual(granted('alice', ['aoa:owner:argocd']), ['aoa:owner:argocd']);
  });

  it('grants owner scopes only under a rule that lists aoa:owner', () => {
    const decision = decide(owners, root({ scopes: ['aoa:owner'] }));
    assert.equal(decision.allow ? 'allowed' : decision.code, 'SCOPE_NOT_ALLOWED');
  });

  it('refuses an owners entry naming no role', () => {
    const problems = problemsAfter((d) => {
      d.clients[0].owners = ['nobody'];
    });
    assert.ok(problems.some((p) => p.includes('clients[0].owners[0]') && p.includes('no role is named')));
  });
});
