import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { type AoaClaims, actorApp, depthOf, parseAoaClaims } from '@aoa/core';
import {
  type DelegationRequest,
  decide,
  loadPolicyFile,
  type Policy,
  parsePolicy,
  rolesOf,
} from '@aoa/policy';
import fc from 'fast-check';
import { buildClaims, type Origin } from './mint.js';

const EXAMPLE_POLICY = new URL(
  '../../../../packages/policy/src/fixtures/example.policy.yaml',
  import.meta.url,
).pathname;
const example: Policy = await loadPolicyFile(EXAMPLE_POLICY);

/**
 * The example as written never lets a chain grow: its dashboards token only addresses
 * dashboards.internal, and no jobs audience lies within it, so rule dashboards-jobs cannot fire. This
 * variant changes just enough for chains three deep (dashboards also addresses jobs.internal, and jobs
 * may delegate to jobs under the same rule, up to its max depth).
 */
const chaining: Policy = parsePolicy(
  edit(await readFile(EXAMPLE_POLICY, 'utf8'), [
    [
      'audiences: ["https://dashboards.internal"]',
      'audiences: ["https://dashboards.internal", "https://jobs.internal"]',
    ],
    ['      apps: [dashboards]', '      apps: [dashboards, jobs]'],
  ]),
  'chaining.policy.yaml',
);

function edit(text: string, replacements: Array<[string, string]>): string {
  for (const [from, to] of replacements) {
    assert.ok(text.includes(from), `the example policy no longer contains ${from}`);
    text = text.replace(from, to);
  }
  return text;
}

const ISSUER = 'https://issuer.test';
const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const START_MS = 1_700_000_000_000;

/**
 * One delegation step as random choices, resolved against the policy and the parent when it is taken,
 * so that most steps aim at a rule the current holder may use and stay within its parent, and the
 * rest are drawn from everything the policy names and a little it does not know.
 */
interface Step {
  aimed: boolean;
  pick: { rule: number; child: number; env: number; scopes: number; audience: number };
  defaultAudience: boolean;
  ttlSeconds: number;
  bound: boolean;
  kid: string;
  elapsedMs: number;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  aimed: fc.oneof({ arbitrary: fc.constant(true), weight: 6 }, { arbitrary: fc.constant(false), weight: 1 }),
  pick: fc.record({
    rule: fc.nat(),
    child: fc.nat(),
    env: fc.nat(),
    scopes: fc.nat({ max: 255 }),
    audience: fc.nat({ max: 255 }),
  }),
  defaultAudience: fc.boolean(),
  ttlSeconds: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 3600 })),
  bound: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }),
  kid: fc.stringMatching(/^[A-Za-z0-9_-]{43}$/),
  elapsedMs: fc.integer({ min: 0, max: 300_000 }),
});

const nth = <T>(values: readonly T[], i: number): T | undefined => values[i % Math.max(values.length, 1)];
const masked = <T>(values: readonly T[], mask: number): T[] => values.filter((_, i) => (mask >> i) & 1);

interface Resolved {
  child: string;
  env: string;
  scopes: string[];
  audience: string[];
}

function resolveStep(
  policy: Policy,
  step: Step,
  principal: DelegationRequest['principal'],
  parent: AoaClaims | undefined,
): Resolved {
  const envs = [...new Set(policy.apps.flatMap((app) => app.environments)), 'dev'];
  const apps = [...policy.apps.map((app) => app.name), 'unknown-app'];
  const allScopes = [...new Set(policy.rules.flatMap((rule) => Object.values(rule.scopes).flat())), 'admin'];
  const allAudiences = [
    ...new Set(policy.apps.flatMap((app) => app.audiences)),
    'https://elsewhere.internal',
  ];
  const roles = rolesOf(policy, principal);
  const usable = policy.rules.filter(
    (rule) => roles.includes(rule.role) && (!parent || rule.environments.includes(parent.env)),
  );
  const rule = nth(step.aimed && usable.length > 0 ? usable : policy.rules, step.pick.rule);
  assert.ok(rule);
  const child = (step.aimed ? nth(rule.children, step.pick.child) : nth(apps, step.pick.child)) ?? '';
  const env =
    (parent && step.aimed
      ? parent.env
      : step.aimed
        ? nth(rule.environments, step.pick.env)
        : nth(envs, step.pick.env)) ?? '';
  const scopePool = step.aimed
    ? (rule.scopes[env] ?? []).filter((scope) => !parent || parent.scope.split(' ').includes(scope))
    : allScopes;
  const scopes = masked(scopePool, step.pick.scopes);
  const audiencePool = step.aimed
    ? (policy.apps.find((app) => app.name === child)?.audiences ?? []).filter(
        (aud) => !parent || parent.aud.includes(aud),
      )
    : allAudiences;
  return {
    child,
    env,
    scopes: scopes.length > 0 ? scopes : [nth(scopePool, step.pick.scopes) ?? 'admin'],
    audience: step.defaultAudience ? [] : masked(audiencePool, step.pick.audience),
  };
}

const rootPrincipalArb = fc.record({
  kind: fc.constant('idp' as const),
  idp: fc.constant('corp'),
  sub: fc.constantFrom('alice', 'argocd-sa', 'mallory'),
  groups: fc.subarray(['platform', 'sre', 'builders']),
});

/** What delegate.ts hands policy about a presented token. */
const boundsOf = (claims: AoaClaims): NonNullable<DelegationRequest['parent']> => ({
  env: claims.env,
  scopes: claims.scope.split(' ').filter(Boolean),
  audience: claims.aud,
  expSeconds: claims.exp,
  depth: depthOf(claims),
  maxDepth: claims.aoa_max_depth,
});

/** Decides one step and, when allowed, mints its claims as the issuer would. */
function mintStep(
  policy: Policy,
  step: Step,
  principal: DelegationRequest['principal'],
  origin: Origin,
  nowMs: number,
): { claims: AoaClaims; child: string } | undefined {
  const parent = origin.kind === 'child' ? origin.parent : undefined;
  const { child, env, scopes, audience } = resolveStep(policy, step, principal, parent);
  const holderJkt = step.bound ? JKT : undefined;
  const decision = decide(policy, {
    principal,
    child,
    env,
    scopes,
    audience,
    ttlSeconds: step.ttlSeconds,
    holderJkt,
    parent: parent && boundsOf(parent),
    nowSeconds: Math.floor(nowMs / 1000),
  });
  if (!decision.allow) return undefined;
  return { claims: buildClaims({ issuer: ISSUER, origin, child, env, decision, holderJkt, nowMs }), child };
}

const within = (values: readonly string[], bound: readonly string[]) =>
  values.every((value) => bound.includes(value));

/** Everything a child token must keep of, or narrow from, the token it was delegated from. */
function assertNarrows(parent: AoaClaims, parentKid: string, child: AoaClaims, childApp: string): void {
  assert.ok(within(child.scope.split(' '), parent.scope.split(' ')), 'scope widened');
  assert.ok(within(child.aud, parent.aud), 'audience widened');
  assert.ok(child.exp <= parent.exp, 'expiry extended');
  assert.equal(child.env, parent.env);
  assert.equal(child.sub, parent.sub);
  assert.equal(child.iss, parent.iss);
  assert.equal(child.client_id, parent.act.sub);
  assert.deepEqual(child.aoa_lineage, [
    ...parent.aoa_lineage,
    {
      jti: parent.jti,
      app: actorApp(parent.act.sub),
      env: parent.env,
      iat_ms: parent.aoa_iat_ms,
      kid: parentKid,
    },
  ]);
  assert.deepEqual(child.act, { sub: `app:${childApp}`, act: parent.act });
  assert.ok(child.aoa_max_depth <= parent.aoa_max_depth, 'max depth grew');
  assert.ok(depthOf(child) <= child.aoa_max_depth, 'delegated beyond max depth');
  assert.notEqual(child.jti, parent.jti);
}

/** What every minted token must be, root or not: the shape verifiers accept, with consistent times. */
function assertWellFormed(claims: AoaClaims, step: Step): void {
  assert.deepEqual(parseAoaClaims(JSON.parse(JSON.stringify(claims))), claims);
  assert.ok(claims.iat <= claims.exp && claims.nbf === claims.iat);
  assert.equal(Math.floor(claims.aoa_iat_ms / 1000), claims.iat);
  assert.deepEqual(claims.cnf, step.bound ? { jkt: JKT } : undefined);
}

/** Generates chains on `policy`, checks every allowed token, and counts them by depth. */
function checkChains(policy: Policy, numRuns: number): number[] {
  const byDepth: number[] = [];
  fc.assert(
    fc.property(
      rootPrincipalArb,
      stepArb,
      fc.array(stepArb, { minLength: 1, maxLength: 4 }),
      (principal, first, rest) => {
        let nowMs = START_MS;
        const rootOrigin: Origin = { kind: 'root', idp: 'corp', sub: principal.sub, clientId: 'argocd' };
        const minted = mintStep(policy, first, principal, rootOrigin, nowMs);
        if (!minted) return;
        const root = minted.claims;
        byDepth[0] = (byDepth[0] ?? 0) + 1;
        assertWellFormed(root, first);
        assert.equal(root.sub, `idp:corp:${principal.sub}`);
        assert.deepEqual(root.act, { sub: `app:${minted.child}` });
        assert.deepEqual(root.aoa_lineage, []);
        assert.equal(root.client_id, 'client:argocd');

        let parent = root;
        let parentKid = first.kid;
        for (const step of rest) {
          nowMs += step.elapsedMs;
          const app = actorApp(parent.act.sub);
          assert.ok(app);
          const origin: Origin = { kind: 'child', parent, parentKid };
          const next = mintStep(policy, step, { kind: 'app', app }, origin, nowMs);
          if (!next) return;
          const child = next.claims;
          const depth = depthOf(child);
          byDepth[depth] = (byDepth[depth] ?? 0) + 1;
          assertWellFormed(child, step);
          assertNarrows(parent, parentKid, child, next.child);
          parent = child;
          parentKid = step.kid;
        }
      },
    ),
    { numRuns },
  );
  return byDepth;
}

describe('buildClaims over decide', () => {
  it('mints root tokens on the example policy with the root subject, one actor and no lineage', () => {
    const [roots = 0, ...deeper] = checkChains(example, 1000);
    assert.ok(roots > 150, `only ${roots} generated root delegations were allowed`);
    assert.deepEqual(deeper, [], 'the example policy was expected to allow no chains');
  });

  it('every token in a generated chain narrows its parent and records it in act and aoa_lineage', () => {
    const [roots = 0, children = 0, grandchildren = 0, ...deeper] = checkChains(chaining, 5000);
    // The property means little unless many generated chains actually delegate, to the max depth.
    assert.ok(roots > 1000, `only ${roots} root delegations allowed`);
    assert.ok(children > 100, `only ${children} sub-delegations allowed`);
    assert.ok(grandchildren > 15, `only ${grandchildren} second-level sub-delegations allowed`);
    assert.deepEqual(deeper, [], 'a chain grew past the rules’ max depth');
  });
});
