import { AppError, actorApp, depthOf, TOKEN_TYPE_ACCESS_TOKEN } from '@aoa/core';
import { decide, type Policy } from '@aoa/policy';
import type { DelegateResult, Facts, IssuerContext } from './delegate.js';
import { buildClaims, type Origin, signAccessToken } from './mint.js';
import type { DelegateInput } from './request.js';
import type { VerifiedSubject } from './subject-token.js';

/**
 * The policy decision for a proved caller and a verified subject, and the token it allows: every
 * Delegate path (client, sub-delegating child, federated workload) ends here.
 */
export function decideAndSign(
  ctx: IssuerContext,
  input: DelegateInput,
  subject: VerifiedSubject,
  origin: Origin,
  facts: Facts,
  policy: Policy,
): DelegateResult {
  const nowMs = ctx.clock.nowMs();
  const parent = origin.kind === 'child' ? origin.parent : undefined;
  const decision = decide(policy, {
    principal:
      subject.kind === 'idp'
        ? { kind: 'idp', idp: subject.idp.namespace, sub: subject.sub, groups: subject.groups }
        : { kind: 'app', app: actorApp(subject.claims.act.sub) ?? '' },
    child: input.child,
    env: input.environment,
    scopes: input.scopes,
    audience: input.audience,
    ttlSeconds: input.ttlSeconds,
    holderJkt: input.holderJkt,
    parent: parent && {
      env: parent.env,
      scopes: parent.scope.split(' ').filter(Boolean),
      audience: parent.aud,
      expSeconds: parent.exp,
      depth: depthOf(parent),
      maxDepth: parent.aoa_max_depth,
    },
    nowSeconds: Math.floor(nowMs / 1000),
    claims: subject.kind === 'idp' ? subject.claims : { ...subject.claims },
  });
  if (!decision.allow) {
    if (decision.rule) facts.rule = decision.rule;
    throw new AppError('permission_denied', decision.reason, {
      reason: decision.code,
      rule: decision.rule,
      constraint: decision.constraint,
    });
  }
  facts.rule = decision.rule;
  const key = ctx.signingKey();
  const claims = buildClaims({
    issuer: ctx.issuer,
    origin,
    child: input.child,
    env: input.environment,
    decision,
    holderJkt: input.holderJkt,
    nowMs,
  });
  return {
    accessToken: signAccessToken(claims, key),
    tokenType: claims.cnf ? 'DPoP' : 'Bearer',
    expiresAt: claims.exp,
    scopes: decision.scopes,
    jti: claims.jti,
    issuedTokenType: TOKEN_TYPE_ACCESS_TOKEN,
    rule: decision.rule,
    depth: decision.depth,
    kid: key.kid,
    claims,
  };
}
