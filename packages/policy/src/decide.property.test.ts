import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decide } from './decide.js';
import { memberRoles } from './roles.js';
import type { AppConfig, Decision, DelegationRequest, ParentBounds, Policy, RuleConfig } from './types.js';

// Small universes, so generated requests often meet generated rules and many decisions allow.
const ENVS = ['prod', 'staging'];
// `aoa:owner` and the owner scopes it becomes, for the clients below, whose owners are roles.
const SCOPES = ['read', 'write', 'admin', 'aoa:owner', 'aoa:owner:c1', 'aoa:owner:c2'];
const CLIENTS = ['c1', 'c2'];
const AUDS = ['https://a', 'https://b', 'https://c'];
const APPS = ['app-a', 'app-b'];
const ROLES = ['role-x', 'role-y'];
const GROUPS = ['g1', 'g2'];
const SUBS = ['u1', 'u2'];

const subset = <T>(values: T[], minLength = 0) => fc.subarray(values, { minLength });

const appArb = (name: string): fc.Arbitrary<AppConfig> =>
  fc.record({ name: fc.constant(name), environments: subset(ENVS, 1), audiences: subset(AUDS, 1) });

const ruleSeedArb = fc.record({
  role: fc.constantFrom(...ROLES),
  children: subset(APPS, 1),
  environments: subset(ENVS, 1),
  scopes: fc.record(Object.fromEntries(ENVS.map((env) => [env, subset(SCOPES, 1)]))),
  maxTtlSeconds: fc.integer({ min: 1, max: 7200 }),
  mayDelegate: fc.boolean(),
  maxDepth: fc.integer({ min: 1, max: 4 }),
  bearerAllowed: fc.boolean(),
});

/** Policies as the loader would accept them: rules only name environments every child has, and so on. */
const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    limit: fc.integer({ min: 1, max: 7200 }),
    apps: fc.tuple(...APPS.map(appArb)),
    roles: fc.tuple(
      ...ROLES.map((name) =>
        fc.record({
          name: fc.constant(name),
          members: fc.record({
            groups: subset(GROUPS.map((g) => `corp:${g}`)),
            subjects: subset(SUBS.map((s) => `idp:corp:${s}`)),
            clients: fc.constant<string[]>([]),
            apps: subset(APPS),
            idps: fc.constant<string[]>([]),
          }),
          when: fc.constant(undefined),
        }),
      ),
    ),
    rules: fc.array(ruleSeedArb, { minLength: 1, maxLength: 5 }),
    owners: fc.tuple(...CLIENTS.map(() => subset(ROLES))),
  })
  .map(({ limit, apps, roles, rules, owners }) => {
    const built: RuleConfig[] = [];
    rules.forEach((seed, i) => {
      const environments = seed.environments.filter((env) =>
        seed.children.every((child) => apps.find((app) => app.name === child)?.environments.includes(env)),
      );
      if (environments.length === 0) return;
      built.push({
        name: `rule-${i}`,
        role: seed.role,
        children: seed.children,
        environments,
        scopes: Object.fromEntries(environments.map((env) => [env, seed.scopes[env] ?? []])),
        maxTtlSeconds: Math.min(seed.maxTtlSeconds, limit),
        when: undefined,
        mayDelegate: seed.mayDelegate,
        maxDepth: seed.mayDelegate ? seed.maxDepth : 0,
        bearerAllowed: seed.bearerAllowed,
      });
    });
    return {
      version: 1 as const,
      hash: 'generated',
      path: 'generated.yaml',
      limits: { maxTokenTtlSeconds: limit },
      idps: [],
      clients: CLIENTS.map((id, i) => ({
        id,
        admin: false,
        keys: [],
        federated: undefined,
        tlsClientAuthSanUri: undefined,
        mayPresent: [],
        dpopBoundAccessTokens: false,
        owners: owners[i] ?? [],
      })),
      roles,
      apps,
      rules: built,
      grants: [],
    };
  });

const parentArb: fc.Arbitrary<ParentBounds> = fc
  .record({
    env: fc.constantFrom(...ENVS),
    scopes: fc.oneof(subset(SCOPES), fc.constant(SCOPES)),
    audience: fc.oneof(subset(AUDS), fc.constant(AUDS)),
    expOffset: fc.integer({ min: -60, max: 8000 }),
    depth: fc.integer({ min: 0, max: 3 }),
    headroom: fc.integer({ min: 0, max: 3 }),
  })
  .map(({ expOffset, headroom, ...rest }) => ({
    ...rest,
    expSeconds: NOW + expOffset,
    maxDepth: rest.depth + headroom,
  }));

const NOW = 1_700_000_000;

const requestArb = (parentKind: 'root' | 'sub'): fc.Arbitrary<DelegationRequest> =>
  fc.record({
    principal:
      parentKind === 'root'
        ? fc.record({
            kind: fc.constant('idp' as const),
            idp: fc.constant('corp'),
            sub: fc.constantFrom(...SUBS),
            groups: subset(GROUPS),
          })
        : fc.record({ kind: fc.constant('app' as const), app: fc.constantFrom(...APPS) }),
    child: fc.constantFrom(...APPS),
    env: fc.constantFrom(...ENVS),
    scopes: subset(SCOPES, 1),
    audience: fc.oneof(fc.constant<string[]>([]), subset(AUDS)),
    ttlSeconds: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9000 })),
    holderJkt: fc.constantFrom(undefined, 'jkt'),
    parent: parentKind === 'root' ? fc.constant(undefined) : parentArb,
    nowSeconds: fc.constant(NOW),
  });

/**
 * Sub-delegations aimed at one of the policy's rules, by a member of its role: most of these come close
 * to being allowed, so the properties are tested on many allowed decisions, not a handful.
 */
const aimedSubArb = (policy: Policy): fc.Arbitrary<DelegationRequest> => {
  if (policy.rules.length === 0) return requestArb('sub');
  return fc.constantFrom(...policy.rules).chain((rule) => {
    const members = policy.roles.find((role) => role.name === rule.role)?.members.apps ?? [];
    return fc.constantFrom(...rule.environments).chain((env) =>
      fc.record({
        principal: fc.record({
          kind: fc.constant('app' as const),
          app: fc.constantFrom(...(members.length > 0 ? members : APPS)),
        }),
        child: fc.constantFrom(...rule.children),
        env: fc.constant(env),
        scopes: subset(rule.scopes[env] ?? [], 1),
        audience: fc.oneof(fc.constant<string[]>([]), subset(AUDS)),
        ttlSeconds: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9000 })),
        holderJkt: fc.constantFrom(undefined, 'jkt', 'jkt'),
        parent: parentArb.chain((parent) =>
          fc
            .record({
              env: fc.oneof(
                { arbitrary: fc.constant(env), weight: 4 },
                { arbitrary: fc.constantFrom(...ENVS), weight: 1 },
              ),
              scopes: fc.oneof(fc.constant(SCOPES), fc.constant(parent.scopes)),
              audience: fc.oneof(fc.constant(AUDS), fc.constant(parent.audience)),
              expSeconds: fc.constant(parent.expSeconds),
              depth: fc.integer({ min: 0, max: 2 }),
              maxDepth: fc.integer({ min: 0, max: 4 }),
            })
            .map((bounds) => ({ ...bounds, maxDepth: Math.max(bounds.maxDepth, bounds.depth) })),
        ),
        nowSeconds: fc.constant(NOW),
      }),
    );
  });
};

const subArb = policyArb.chain((policy) =>
  fc.tuple(fc.constant(policy), fc.oneof(requestArb('sub'), aimedSubArb(policy), aimedSubArb(policy))),
);

const within = (values: string[], bound: readonly string[]) => values.every((value) => bound.includes(value));

/** What every allowed decision must satisfy, root or not. */
function assertWithinRule(policy: Policy, request: DelegationRequest, decision: Decision): void {
  if (!decision.allow) return;
  const rule = policy.rules.find((candidate) => candidate.name === decision.rule);
  const app = policy.apps.find((candidate) => candidate.name === request.child);
  assert.ok(rule && app);
  assert.ok(rule.children.includes(request.child) && rule.environments.includes(request.env));
  const allowed = rule.scopes[request.env] ?? [];
  const held = new Set(memberRoles(policy, request.principal).map((role) => role.name));
  assert.ok(decision.scopes.length > 0);
  for (const scope of decision.scopes) {
    assert.notEqual(scope, 'aoa:owner', 'aoa:owner is always turned into the clients owned');
    const owned = /^aoa:owner:(.+)$/.exec(scope)?.[1];
    if (!owned) assert.ok(allowed.includes(scope));
    else {
      // An owner scope: the rule allows aoa:owner, and the principal holds one of the client's owners roles.
      assert.ok(allowed.includes(scope) || allowed.includes('aoa:owner'));
      const client = policy.clients.find((candidate) => candidate.id === owned);
      assert.ok(
        client?.owners.some((role) => held.has(role)),
        `${scope} for a principal who does not own it`,
      );
    }
  }
  assert.ok(decision.audience.length > 0 && within(decision.audience, app.audiences));
  assert.ok(decision.expSeconds > request.nowSeconds);
  assert.ok(decision.expSeconds - request.nowSeconds <= rule.maxTtlSeconds);
  assert.ok(decision.expSeconds - request.nowSeconds <= policy.limits.maxTokenTtlSeconds);
  assert.ok(decision.depth <= decision.maxDepth);
  assert.ok(decision.maxDepth <= decision.depth + (rule.mayDelegate ? rule.maxDepth : 0));
  if (decision.bearer) assert.ok(rule.bearerAllowed && !request.holderJkt);
}

/** What a sub-delegation must satisfy against the token it was presented. */
function assertWithinParent(parent: ParentBounds, request: DelegationRequest, decision: Decision): void {
  if (!decision.allow) return;
  assert.ok(within(decision.scopes, parent.scopes));
  assert.ok(within(decision.audience, parent.audience));
  assert.ok(decision.expSeconds <= parent.expSeconds);
  assert.equal(decision.depth, parent.depth + 1);
  assert.ok(decision.depth <= parent.maxDepth);
  assert.ok(decision.maxDepth <= parent.maxDepth);
  assert.equal(request.env, parent.env);
}

const asParent = (
  request: DelegationRequest,
  decision: Extract<Decision, { allow: true }>,
): ParentBounds => ({
  env: request.env,
  scopes: decision.scopes,
  audience: decision.audience,
  expSeconds: decision.expSeconds,
  depth: decision.depth,
  maxDepth: decision.maxDepth,
});

describe('decide, over generated policies and requests', () => {
  it('an allowed root delegation stays within its rule’s scopes for the environment and its max TTL, and owner scopes name owned clients', () => {
    let allowed = 0;
    let owners = 0;
    fc.assert(
      fc.property(policyArb, requestArb('root'), (policy, request) => {
        const decision = decide(policy, request);
        if (decision.allow) allowed++;
        if (decision.allow && decision.scopes.some((scope) => scope.startsWith('aoa:owner:'))) owners++;
        assertWithinRule(policy, request, decision);
        if (decision.allow) assert.equal(decision.depth, 0);
      }),
      { numRuns: 2000 },
    );
    assert.ok(allowed > 50, `only ${allowed} generated root delegations were allowed`);
    assert.ok(owners > 10, `only ${owners} generated root delegations were allowed owner scopes`);
  });

  it('an allowed sub-delegation never widens scopes, audience, expiry, depth or environment', () => {
    let allowed = 0;
    fc.assert(
      fc.property(subArb, ([policy, request]) => {
        const decision = decide(policy, request);
        if (decision.allow) allowed++;
        assertWithinRule(policy, request, decision);
        if (request.parent) assertWithinParent(request.parent, request, decision);
      }),
      { numRuns: 3000 },
    );
    assert.ok(allowed > 40, `only ${allowed} generated sub-delegations were allowed`);
  });

  it('a chain built from allowed decisions narrows at every step', () => {
    fc.assert(
      fc.property(
        policyArb,
        requestArb('root'),
        fc.array(requestArb('sub'), { minLength: 1, maxLength: 4 }),
        (policy, first, next) => {
          let request = first;
          let decision = decide(policy, request);
          for (const step of next) {
            if (!decision.allow) return;
            const parent = asParent(request, decision);
            request = { ...step, env: parent.env, parent, nowSeconds: request.nowSeconds + 1 };
            decision = decide(policy, request);
            assertWithinRule(policy, request, decision);
            assertWithinParent(parent, request, decision);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('is deterministic: the same request always gets the same decision', () => {
    fc.assert(
      fc.property(policyArb, fc.oneof(requestArb('root'), requestArb('sub')), (policy, request) => {
        assert.deepEqual(decide(policy, request), decide(policy, request));
      }),
    );
  });
});
