import { z } from 'zod';
import { type AgentKeyPurpose, checkAgentJwk, sameAgentKey } from './agent-keys.js';
import { compileCondition } from './conditions.js';
import { quote } from './errors.js';
import { duration, fail, name, readDuration, scopeToken, text, uniqueList } from './schema.js';

/** The principal a grant names as its parent: `idp:<namespace>:<sub>`, as stored and minted. */
const PRINCIPAL = /^idp:([a-z0-9][a-z0-9-]{0,62}):([\x21-\x7e]{1,255})$/;
export const MIN_GRANT_TOKEN_TTL_SECONDS = 2;
export const MAX_GRANT_TOKEN_TTL_SECONDS = 86_400;

/**
 * Splits a grant's parent principal, `idp:<namespace>:<sub>`, into its parts; undefined when malformed.
 *
 * @example
 * parseGrantPrincipal('idp:corp:a:b'); // { idp: 'corp', sub: 'a:b' }
 */
export function parseGrantPrincipal(value: string): { idp: string; sub: string } | undefined {
  const match = PRINCIPAL.exec(value);
  return match?.[1] && match[2] ? { idp: match[1], sub: match[2] } : undefined;
}

const principal = z.string().superRefine((value, ctx) => {
  if (!parseGrantPrincipal(value)) {
    ctx.addIssue({
      code: 'custom',
      message: `${quote(value)} must read idp:<idp namespace>:<sub> (printable ASCII, no spaces)`,
    });
  }
});

const tokenTtl = duration(undefined).superRefine((seconds, ctx) => {
  if (seconds < MIN_GRANT_TOKEN_TTL_SECONDS || seconds > MAX_GRANT_TOKEN_TTL_SECONDS) {
    ctx.addIssue({ code: 'custom', message: `${seconds}s is not between 2s and 24h` });
  }
});

/** `none`, or a lifetime counted from the grant's creation; `none` reads as 0. */
const expiresIn = z
  .unknown()
  .optional()
  .transform((value, ctx): number => {
    if (value === 'none') return 0;
    if (value === undefined) return fail(ctx, 'required: a duration like 30d, or none');
    const read = readDuration(value);
    return 'seconds' in read ? read.seconds : fail(ctx, `${read.problem} (or none)`);
  });

const agentJwk = (purpose: AgentKeyPurpose) =>
  z.record(z.string(), z.unknown()).transform((value, ctx) => {
    const checked = checkAgentJwk(value, purpose);
    return 'jwk' in checked ? checked.jwk : fail(ctx, checked.problem);
  });

const agent = z
  .strictObject({
    id: name('agent'),
    encryption_jwk: agentJwk('encryption'),
    dpop_jwk: agentJwk('dpop'),
  })
  .superRefine((entry, ctx) => {
    if (sameAgentKey(entry.encryption_jwk, entry.dpop_jwk)) {
      ctx.addIssue({
        code: 'custom',
        path: ['dpop_jwk'],
        message: 'is the same key as encryption_jwk: use two different keys',
      });
    }
  });

/**
 * Agents enrol into the grant by their pod, with no join token: a projected service-account token of
 * the kubernetes IdP `idp`, of this namespace and service account, whose claims meet `when` if given.
 */
const attest = z
  .strictObject({
    idp: name('idp namespace'),
    namespace: name('namespace'),
    service_account: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, {
      error: 'must be a Kubernetes service account name (lowercase letters, digits, - and .)',
    }),
    when: text.optional(),
  })
  .transform((entry, ctx) => {
    if (entry.when === undefined) return { ...entry, when: undefined };
    const compiled = compileCondition(entry.when);
    if ('condition' in compiled) return { ...entry, when: compiled.condition };
    ctx.addIssue({ code: 'custom', path: ['when'], message: compiled.problem });
    return z.NEVER;
  });

/** A standing grant declared in policy; the policy itself is its authority. */
export const GrantSchema = z.strictObject({
  name: name('grant'),
  sub: principal,
  parent_client: name('client'),
  app: name('app'),
  env: name('environment'),
  scopes: uniqueList(scopeToken, 'scope').min(1, { error: 'a grant needs at least one scope' }),
  /** Empty: every audience of the app. */
  audience: uniqueList(text, 'audience').default([]),
  token_ttl: tokenTtl,
  expires_in: expiresIn,
  agents: z.array(agent).default([]),
  attest: attest.optional(),
});

export type RawGrant = z.output<typeof GrantSchema>;
