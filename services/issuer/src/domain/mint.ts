import { type AoaClaims, actorApp, randomId, type SigningKey, signCompact } from '@aoa/core';
import type { Decision } from '@aoa/policy';

type Allowed = Extract<Decision, { allow: true }>;

/** Who the new token descends from: an IdP identity through a client, or a presented aoa token. */
export type Origin =
  | { kind: 'root'; idp: string; sub: string; clientId: string }
  | { kind: 'child'; parent: AoaClaims; parentKid: string };

/**
 * Builds the claims of a new token exactly as contract section 3 lays them out: `sub` the root
 * principal, `act` the actor chain with the child outermost, `aoa_lineage` the ancestors root first.
 */
export function buildClaims(args: {
  issuer: string;
  origin: Origin;
  child: string;
  env: string;
  decision: Allowed;
  holderJkt: string | undefined;
  nowMs: number;
}): AoaClaims {
  const { origin, decision } = args;
  const iat = Math.floor(args.nowMs / 1000);
  const act =
    origin.kind === 'root'
      ? { sub: `app:${args.child}` }
      : { sub: `app:${args.child}`, act: origin.parent.act };
  const claims: AoaClaims = {
    iss: args.issuer,
    sub: origin.kind === 'root' ? `idp:${origin.idp}:${origin.sub}` : origin.parent.sub,
    aud: decision.audience,
    client_id: origin.kind === 'root' ? `client:${origin.clientId}` : origin.parent.act.sub,
    env: args.env,
    scope: decision.scopes.join(' '),
    iat,
    nbf: iat,
    exp: decision.expSeconds,
    jti: randomId(),
    act,
    aoa_lineage:
      origin.kind === 'root'
        ? []
        : [...origin.parent.aoa_lineage, lineageLink(origin.parent, origin.parentKid)],
    aoa_iat_ms: args.nowMs,
    aoa_max_depth: decision.maxDepth,
    aoa_rule: decision.rule,
  };
  if (args.holderJkt) claims.cnf = { jkt: args.holderJkt };
  return claims;
}

function lineageLink(parent: AoaClaims, kid: string): AoaClaims['aoa_lineage'][number] {
  return {
    jti: parent.jti,
    app: actorApp(parent.act.sub) ?? '',
    env: parent.env,
    iat_ms: parent.aoa_iat_ms,
    kid,
    ...(parent.aoa_grant ? { grant: parent.aoa_grant } : {}),
  };
}

/** Signs claims as an RFC 9068 access token. */
export const signAccessToken = (claims: AoaClaims, key: SigningKey): string =>
  signCompact({ typ: 'at+jwt' }, claims, key);
