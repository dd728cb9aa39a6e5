import { OWNER_SCOPE, ownerScope, type RefusalReason } from '@aoa/core';
import type { ConditionInput } from './conditions.js';
import { findApp } from './lookup.js';
import { conditionText, holds, memberRoles, principalName } from './roles.js';
import type { AppConfig, Decision, DelegationRequest, Policy, RuleConfig } from './types.js';

type Deny = Extract<Decision, { allow: false }>;

/** A refusal: its stable code, its text, and the rule or (when no rule refused) the constraint it broke. */
const deny = (
  code: RefusalReason,
  reason: string,
  by: { rule?: string; constraint?: string } = {},
): Deny => ({
  allow: false,
  code,
  reason,
  rule: by.rule,
  constraint: by.constraint,
});

/**
 * Decides a delegation: may this principal have a token for `child` in `env` with these scopes? Pure;
 * the caller supplies the clock. The first rule in file order that allows the whole request wins; when
 * none does, the reason comes from the rule that came closest.
 *
 * A root delegation (IdP principal) starts at depth 0; a sub-delegation (app principal) must present
 * its parent's bounds and stays inside them: same environment, scopes and audience within the parent's,
 * expiry no later, depth one more and within the parent's max depth.
 *
 * @example
 * const decision = decide(policy, {
 *   principal: { kind: 'idp', idp: 'corp', sub: 'alice', groups: ['platform'] },
 *   child: 'dashboards', env: 'prod', scopes: ['read:metrics'], audience: [], ttlSeconds: 0,
 *   holderJkt: jkt, parent: undefined, nowSeconds: Math.floor(Date.now() / 1000),
 * });
 * if (!decision.allow) throw new AppError('permission_denied', decision.reason, { rule: decision.rule });
 */
export function decide(policy: Policy, request: DelegationRequest): Decision {
  const { child, env } = request;
  const app = findApp(policy, child);
  if (!app) return deny('UNKNOWN_APP', `unknown app ${child}`, { constraint: 'apps' });
  if (!app.environments.includes(env))
    return deny('UNKNOWN_ENVIRONMENT', `app ${child} has no environment ${env}`, {
      constraint: `apps.${child}.environments`,
    });
  const refused = checkChain(request) ?? checkTtl(request);
  if (refused) return refused;

  const scopes = sortedUnique(request.scopes);
  if (scopes.length === 0) return deny('NO_SCOPES', 'no scopes requested');
  const outsideParent = beyondParent(request.parent, scopes);
  if (outsideParent) return outsideParent;
  const audience = resolveAudience(app, request);
  if (!Array.isArray(audience)) return audience;

  const input: ConditionInput = { claims: request.claims ?? {}, request: { child, env, scopes, audience } };
  const members = memberRoles(policy, request.principal);
  const roles = members.filter((role) => holds(role.when, input)).map((role) => role.name);
  const covers = (rule: RuleConfig) => rule.children.includes(child) && rule.environments.includes(env);
  const candidates = policy.rules.filter((rule) => roles.includes(rule.role) && covers(rule));
  const granted = ownerScopes(policy, scopes, roles);
  if (!Array.isArray(granted)) return granted;
  // What aoa:owner became must be within the presented token too.
  const ownedOutsideParent = beyondParent(request.parent, granted);
  if (ownedOutsideParent) return ownedOutsideParent;
  let nearest: { stage: number; deny: Deny } | undefined;
  for (const rule of candidates) {
    const outcome = evaluateRule(policy, rule, request, granted, audience, input);
    if (outcome.allow) return outcome;
    if (!nearest || outcome.stage > nearest.stage) nearest = { stage: outcome.stage, deny: outcome.deny };
  }
  if (nearest) return nearest.deny;
  const unheld = members.find(
    (role) =>
      !roles.includes(role.name) && policy.rules.some((rule) => rule.role === role.name && covers(rule)),
  );
  if (unheld?.when) {
    return deny('CONDITION_FAILED', `role ${unheld.name}: condition ${conditionText(unheld.when, input)}`, {
      constraint: `roles.${unheld.name}.when`,
    });
  }
  const who = principalName(request.principal);
  return deny('NO_MATCHING_RULE', `no rule lets ${who} delegate to ${child} in ${env}`, {
    constraint: 'rules',
  });
}

/** A sub-delegation asking for a scope its presented token lacks is refused. */
function beyondParent(parent: DelegationRequest['parent'], scopes: string[]): Deny | undefined {
  const beyond = parent ? scopes.filter((scope) => !parent.scopes.includes(scope)) : [];
  if (beyond.length === 0) return undefined;
  return deny('SCOPE_NOT_IN_PARENT', `scope ${beyond.join(' ')} is not granted to the presented token`, {
    constraint: 'parent.scope',
  });
}

/**
 * Owner scopes: `aoa:owner` becomes `aoa:owner:<client>` for every client whose `owners` lists a role
 * held (none: refused); an explicit `aoa:owner:<client>` needs one of that client's roles. A rule
 * that lists `aoa:owner` allows them all.
 */
function ownerScopes(policy: Policy, scopes: string[], roles: readonly string[]): string[] | Deny {
  if (!scopes.some((scope) => scope === OWNER_SCOPE || scope.startsWith(OWNER_PREFIX))) return scopes;
  const owned = policy.clients
    .filter((client) => client.owners.some((role) => roles.includes(role)))
    .map((client) => client.id);
  const out: string[] = [];
  for (const scope of scopes) {
    if (scope === OWNER_SCOPE) {
      if (owned.length === 0)
        return deny('SCOPE_NOT_ALLOWED', `${OWNER_SCOPE}: no client lists a role you hold in its owners`, {
          constraint: 'clients.owners',
        });
      out.push(...owned.map(ownerScope));
    } else if (scope.startsWith(OWNER_PREFIX)) {
      const client = scope.slice(OWNER_PREFIX.length);
      if (!owned.includes(client))
        return deny('SCOPE_NOT_ALLOWED', `${scope}: you hold none of client ${client}'s owners roles`, {
          constraint: `clients.${client}.owners`,
        });
      out.push(scope);
    } else out.push(scope);
  }
  return sortedUnique(out);
}

const OWNER_PREFIX = `${OWNER_SCOPE}:`;

/** Whether a rule allows a scope: listed, or an owner scope under a rule that lists `aoa:owner`. */
const ruleAllows = (allowed: string[], scope: string): boolean =>
  allowed.includes(scope) || (scope.startsWith(OWNER_PREFIX) && allowed.includes(OWNER_SCOPE));

/** The parts of a chain that hold whatever the rule: who may present a parent, and what it allows. */
function checkChain({ principal, parent, env, nowSeconds }: DelegationRequest): Deny | undefined {
  if (principal.kind === 'idp' && parent)
    return deny('ROOT_ONLY', 'an IdP identity delegates at the root, not within a token');
  if (principal.kind === 'app' && !parent) {
    return deny(
      'PARENT_REQUIRED',
      `${principalName(principal)} can only delegate within the token it presents`,
    );
  }
  if (!parent) return undefined;
  if (env !== parent.env)
    return deny(
      'ENVIRONMENT_CHANGE',
      `environment cannot change down a chain: the presented token is for ${parent.env}`,
      {
        constraint: 'parent.env',
      },
    );
  if (parent.expSeconds <= nowSeconds)
    return deny('PARENT_EXPIRED', 'the presented token has expired', { constraint: 'parent.exp' });
  if (parent.depth + 1 > parent.maxDepth) {
    return deny(
      'DEPTH_EXCEEDED',
      `the presented token may not be delegated further (max depth ${parent.maxDepth})`,
      {
        constraint: 'parent.aoa_max_depth',
      },
    );
  }
  return undefined;
}

function checkTtl({ ttlSeconds }: DelegationRequest): Deny | undefined {
  return Number.isFinite(ttlSeconds) && ttlSeconds >= 0
    ? undefined
    : deny('INVALID_TTL', 'ttl must be 0 or a number of seconds');
}

function resolveAudience(app: AppConfig, { audience, parent, child }: DelegationRequest): string[] | Deny {
  for (const aud of audience) {
    if (!app.audiences.includes(aud))
      return deny('AUDIENCE_NOT_OF_APP', `audience ${aud} is not an audience of app ${child}`, {
        constraint: `apps.${child}.audiences`,
      });
    if (parent && !parent.audience.includes(aud))
      return deny('AUDIENCE_NOT_IN_PARENT', `audience ${aud} is not in the presented token`, {
        constraint: 'parent.aud',
      });
  }
  const resolved = sortedUnique(
    audience.length > 0 ? audience : app.audiences.filter((aud) => !parent || parent.audience.includes(aud)),
  );
  if (resolved.length === 0)
    return deny('AUDIENCE_NOT_IN_PARENT', `no audience of app ${child} is within the presented token`, {
      constraint: 'parent.aud',
    });
  return resolved;
}

/** How far a rule got (later stages give more specific reasons), or the decision it allows. */
type RuleOutcome = Extract<Decision, { allow: true }> | { allow: false; stage: number; deny: Deny };

function evaluateRule(
  policy: Policy,
  rule: RuleConfig,
  request: DelegationRequest,
  scopes: string[],
  audience: string[],
  input: ConditionInput,
): RuleOutcome {
  const { env, parent, nowSeconds, ttlSeconds } = request;
  const refuse = (stage: number, code: RefusalReason, reason: string, constraint?: string): RuleOutcome => ({
    allow: false,
    stage,
    deny: deny(code, reason, { rule: rule.name, ...(constraint ? { constraint } : {}) }),
  });
  const allowed = rule.scopes[env] ?? [];
  const missing = scopes.filter((scope) => !ruleAllows(allowed, scope));
  if (missing.length > 0)
    return refuse(
      1,
      'SCOPE_NOT_ALLOWED',
      `rule ${rule.name} does not allow scope ${missing.join(' ')} in ${env}`,
    );

  if (rule.when && !holds(rule.when, input)) {
    return refuse(2, 'CONDITION_FAILED', `rule ${rule.name}: condition ${conditionText(rule.when, input)}`);
  }

  const depth = parent ? parent.depth + 1 : 0;
  const bearer = !request.holderJkt;
  if (bearer && !rule.bearerAllowed) {
    return refuse(
      3,
      'HOLDER_KEY_REQUIRED',
      `rule ${rule.name} requires a key-bound token: holder_jkt is required`,
    );
  }
  // The bound that binds is found first and named only when it refuses: an allowed request builds
  // none of the refusal texts.
  let binding: TtlBound = 'rule';
  let boundSeconds = rule.maxTtlSeconds;
  if (policy.limits.maxTokenTtlSeconds < boundSeconds) {
    binding = 'limits';
    boundSeconds = policy.limits.maxTokenTtlSeconds;
  }
  if (parent && parent.expSeconds - nowSeconds < boundSeconds) {
    binding = 'parent';
    boundSeconds = parent.expSeconds - nowSeconds;
  }
  if (ttlSeconds > boundSeconds) {
    const { name, constraint } = ttlBoundText(binding, rule.name);
    return refuse(4, 'TTL_EXCEEDED', `ttl ${ttlSeconds}s exceeds ${name} (${boundSeconds}s)`, constraint);
  }
  const lifetime = ttlSeconds > 0 ? ttlSeconds : boundSeconds;
  const expSeconds = parent ? Math.min(nowSeconds + lifetime, parent.expSeconds) : nowSeconds + lifetime;
  return {
    allow: true,
    rule: rule.name,
    scopes,
    audience,
    expSeconds,
    bearer,
    depth,
    maxDepth: Math.min(
      depth + (rule.mayDelegate ? rule.maxDepth : 0),
      parent?.maxDepth ?? Number.POSITIVE_INFINITY,
    ),
  };
}

/** What caps a token's lifetime: its rule's `max_ttl`, the policy's limit, or the presented token. */
type TtlBound = 'rule' | 'limits' | 'parent';

function ttlBoundText(bound: TtlBound, rule: string): { name: string; constraint: string } {
  switch (bound) {
    case 'rule':
      return { name: `rule ${rule} max_ttl`, constraint: `rules.${rule}.max_ttl` };
    case 'limits':
      return { name: 'limits.max_token_ttl', constraint: 'limits.max_token_ttl' };
    case 'parent':
      return { name: "the presented token's remaining lifetime", constraint: 'parent.exp' };
  }
}

const sortedUnique = (values: readonly string[]): string[] =>
  values.length < 2 ? [...values] : [...new Set(values)].sort();
