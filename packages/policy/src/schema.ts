import { isName, parseDurationSeconds } from '@aoa/core';
import { z } from 'zod';
import { type Condition, compileCondition } from './conditions.js';
import { quote } from './errors.js';
import { importClientJwk } from './jwk.js';
import { IDP_PROFILES, TENANT_PLACEHOLDER } from './profiles.js';

/** RFC 6749 section 3.3 `scope-token`. */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
export const DEFAULT_MAX_TOKEN_TTL_SECONDS = 3600;
/** How far an IdP's clock may run ahead of or behind ours (`iat`, `nbf`, `exp`), by default and at most. */
export const DEFAULT_IDP_CLOCK_SKEW_SECONDS = 5;
export const MAX_IDP_CLOCK_SKEW_SECONDS = 300;
const IDP_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

export const name = (what: string) =>
  z.string().superRefine((value, ctx) => {
    if (!isName(value)) {
      ctx.addIssue({
        code: 'custom',
        message: `${quote(value)} is not a valid ${what} name (lowercase letters, digits and inner dashes, 1 to 63)`,
      });
    }
  });

export const text = z.string().min(1, { error: 'must not be empty' });

/** A list with no repeated entries; a repeat is reported at its own index. */
export const uniqueList = <T extends z.ZodType<string>>(item: T, what: string) =>
  z.array(item).superRefine((values, ctx) => {
    values.forEach((value, index) => {
      if (values.indexOf(value) !== index) {
        ctx.addIssue({ code: 'custom', path: [index], message: `${what} ${quote(value)} is listed twice` });
      }
    });
  });

/** Reads a lifetime as `15m`, `1h`, ... or whole seconds; at least one second. */
export function readDuration(value: unknown): { seconds: number } | { problem: string } {
  if (typeof value !== 'string' && typeof value !== 'number') {
    return { problem: 'must be a duration like 15m or a whole number of seconds' };
  }
  let seconds: number;
  try {
    seconds = parseDurationSeconds(value);
  } catch (error) {
    return { problem: `${quote(value)}: ${(error as Error).message}` };
  }
  if (seconds < 1) return { problem: `${quote(value)} is shorter than 1s` };
  if (!Number.isInteger(seconds)) return { problem: `${quote(value)} is not a whole number of seconds` };
  return { seconds };
}

/** A lifetime (see `readDuration`); absent, `fallback`, or required when there is none. */
export const duration = (fallback: number | undefined) =>
  z
    .unknown()
    .optional()
    .transform((value, ctx): number => {
      if (value === undefined && fallback !== undefined) return fallback;
      if (value === undefined) return fail(ctx, 'required');
      const read = readDuration(value);
      return 'seconds' in read ? read.seconds : fail(ctx, read.problem);
    });

export function fail(ctx: z.RefinementCtx, message: string): never {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

function issuerProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${quote(value)} is not an absolute URL`;
  }
  if (
    url.protocol === 'http:' &&
    !LOOPBACK_HOSTS.includes(url.hostname) &&
    !url.hostname.startsWith('127.')
  ) {
    return `${quote(value)} must use https (http only for loopback hosts)`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `${quote(value)} must use https`;
  if (url.search || url.hash || url.username || url.password) {
    return `${quote(value)} must not carry a query, fragment or credentials`;
  }
  return undefined;
}

const issuer = z.string().superRefine((value, ctx) => {
  const problem = issuerProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const algorithm = z.string().superRefine((value, ctx) => {
  if (IDP_ALGORITHMS.includes(value)) return;
  const refused = value.toLowerCase() === 'none' || /^HS\d+$/i.test(value);
  ctx.addIssue({
    code: 'custom',
    message: refused
      ? `algorithm ${quote(value)} is refused: IdP tokens must be signed with an asymmetric key`
      : `unsupported algorithm ${quote(value)}: use ${IDP_ALGORITHMS.join(', ')}`,
  });
});

const clockSkew = z
  .unknown()
  .optional()
  .transform((value, ctx): number => {
    if (value === undefined) return DEFAULT_IDP_CLOCK_SKEW_SECONDS;
    if (value === 0 || value === '0s') return 0;
    const read = readDuration(value);
    if (!('seconds' in read)) return fail(ctx, read.problem);
    if (read.seconds > MAX_IDP_CLOCK_SKEW_SECONDS) {
      return fail(
        ctx,
        `${quote(value)} is longer than ${MAX_IDP_CLOCK_SKEW_SECONDS}s: fix the clocks instead`,
      );
    }
    return read.seconds;
  });

export const LimitsSchema = z.strictObject({ max_token_ttl: duration(DEFAULT_MAX_TOKEN_TTL_SECONDS) });

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const tenant = z.string().superRefine((value, ctx) => {
  if (!GUID.test(value)) {
    ctx.addIssue({
      code: 'custom',
      message: `tenant ${quote(value)} must be a tenant id (a lowercase GUID)`,
    });
  }
});

/** How long a cluster's TokenReview answer is kept, by default and at most. */
export const DEFAULT_TOKEN_REVIEW_CACHE_SECONDS = 10;
export const MAX_TOKEN_REVIEW_CACHE_SECONDS = 60;
/** Where a pod finds its own service-account token and the cluster's CA. */
const IN_CLUSTER = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Asks the cluster's API server (TokenReview) whether it still accepts a service-account token, so a
 * deleted pod or service account is refused at once rather than when its token expires. aoa's own
 * service account needs the `system:auth-delegator` ClusterRole.
 */
const tokenReview = z.strictObject({
  server: issuer,
  ca_file: text.optional(),
  token_file: text.default(`${IN_CLUSTER}/token`),
  cache: duration(DEFAULT_TOKEN_REVIEW_CACHE_SECONDS).refine(
    (seconds) => seconds <= MAX_TOKEN_REVIEW_CACHE_SECONDS,
    { error: `must be at most ${MAX_TOKEN_REVIEW_CACHE_SECONDS}s: a deleted pod must show soon` },
  ),
});

/** Absent fields take the profile's defaults (`PROFILE_DEFAULTS`) when the policy is built. */
export const IdpSchema = z
  .strictObject({
    namespace: name('idp namespace'),
    profile: z.enum(IDP_PROFILES, { error: `must be one of ${IDP_PROFILES.join(', ')}` }).default('generic'),
    issuer,
    audience: text,
    subject_claim: text.optional(),
    groups_claim: z.union([text, uniqueList(text, 'claim')]).optional(),
    token_types: uniqueList(z.string(), 'token type').optional(),
    algorithms: uniqueList(algorithm, 'algorithm')
      .min(1, { error: 'must list at least one algorithm' })
      .optional(),
    required_claims: uniqueList(text, 'claim').optional(),
    /** Where the discovery document is, when not at `<issuer>/.well-known/...` (e.g. an Entra v1 template). */
    discovery_url: issuer.optional(),
    /** The tenants a `{tenantid}` issuer accepts; required with one. */
    tenants: uniqueList(tenant, 'tenant').min(1, { error: 'must list at least one tenant' }).optional(),
    /** Allowance for the IdP's clock: a token issued (`iat`) further in the future is refused. */
    clock_skew: clockSkew,
    token_review: tokenReview.optional(),
  })
  .superRefine((idp, ctx) => {
    const templated = idp.issuer.includes(TENANT_PLACEHOLDER);
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    if (templated && idp.profile !== 'entra')
      problem('issuer', `${TENANT_PLACEHOLDER} is only for profile entra`);
    if (templated && !idp.tenants)
      problem('tenants', `required with a ${TENANT_PLACEHOLDER} issuer: list the tenant ids to accept`);
    if (!templated && idp.tenants) problem('tenants', `only with a ${TENANT_PLACEHOLDER} issuer`);
    if (idp.token_review && idp.profile !== 'kubernetes')
      problem('token_review', 'only for profile kubernetes');
    if (idp.issuer.split(TENANT_PLACEHOLDER).length > 2)
      problem('issuer', `${TENANT_PLACEHOLDER} may appear once`);
  });

const clientJwk = z.record(z.string(), z.unknown()).transform((jwk, ctx) => {
  const result = importClientJwk(jwk);
  if ('key' in result) return result.key;
  for (const { path, problem } of result.problems) ctx.addIssue({ code: 'custom', path, message: problem });
  return z.NEVER;
});

const presentRule = z
  .strictObject({
    idp: name('idp namespace'),
    subjects: uniqueList(text, 'subject').default([]),
    groups: uniqueList(text, 'group').default([]),
  })
  .superRefine((entry, ctx) => {
    if (entry.subjects.length === 0 && entry.groups.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'lists neither subjects nor groups, so it allows nothing' });
    }
  });

/** How long after its `iat` a workload token still authenticates a federated client, by default and at most. */
export const DEFAULT_FEDERATED_MAX_AGE_SECONDS = 300;
export const MAX_FEDERATED_MAX_AGE_SECONDS = 3600;

/**
 * A client with no stored key, authenticated by a workload token of a trusted IdP whose claims meet
 * `when` (the pattern of Entra ID federated credentials): a CI job, a pod.
 */
const federation = z
  .strictObject({
    idp: name('idp namespace'),
    when: text,
    max_age: duration(DEFAULT_FEDERATED_MAX_AGE_SECONDS).refine(
      (seconds) => seconds <= MAX_FEDERATED_MAX_AGE_SECONDS,
      {
        error: `must be at most ${MAX_FEDERATED_MAX_AGE_SECONDS}s`,
      },
    ),
  })
  .transform((entry, ctx) => {
    const compiled = compileCondition(entry.when);
    if ('condition' in compiled) return { ...entry, when: compiled.condition };
    ctx.addIssue({ code: 'custom', path: ['when'], message: compiled.problem });
    return z.NEVER;
  });

/** An absolute URI as a certificate carries it in a SAN: a scheme, no whitespace, nothing else checked. */
const sanUri = z.string().superRefine((value, ctx) => {
  if (!/^[a-z][a-z0-9+.-]*:\S+$/i.test(value) || !URL.canParse(value)) {
    ctx.addIssue({
      code: 'custom',
      message: `${quote(value)} is not an absolute URI (e.g. spiffe://example.org/ns/argocd/sa/controller)`,
    });
  }
});

export const ClientSchema = z
  .strictObject({
    id: name('client'),
    admin: z.boolean().default(false),
    dpop_bound_access_tokens: z.boolean().default(false),
    jwks: z.array(clientJwk).min(1, { error: 'a client needs at least one public key' }).optional(),
    federated: federation.optional(),
    /**
     * RFC 8705 `tls_client_auth`: the URI SAN (a SPIFFE ID, for one) of the client certificate, issued
     * by a CA in AOA_ISSUER_TLS_CLIENT_CA_FILE (or a revoker's, rotator's or auditor's
     * AOA_<SERVICE>_TLS_CLIENT_CA_FILE), that authenticates this client on that service's gRPC port.
     */
    tls_client_auth_san_uri: sanUri.optional(),
    may_present: z.array(presentRule).default([]),
    /** Roles whose holders own the client: they may have owner tokens (`aoa:owner:<id>`) for its grants and tokens. */
    owners: uniqueList(name('role'), 'role').default([]),
  })
  .superRefine((client, ctx) => {
    const own = Boolean(client.jwks || client.tls_client_auth_san_uri);
    if (own === Boolean(client.federated)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'a client authenticates with jwks (its own keys) and/or tls_client_auth_san_uri (its certificate), ' +
          'or with federated (a workload token) alone',
      });
    }
  });

const groupMember = z.string().superRefine((value, ctx) => {
  const colon = value.indexOf(':');
  if (colon < 1 || colon === value.length - 1 || !isName(value.slice(0, colon))) {
    ctx.addIssue({ code: 'custom', message: `group ${quote(value)} must read <idp namespace>:<group>` });
  }
});

const subjectMember = z.string().superRefine((value, ctx) => {
  const match = /^idp:([^:]+):(.+)$/.exec(value);
  if (!match || !isName(match[1])) {
    ctx.addIssue({ code: 'custom', message: `subject ${quote(value)} must read idp:<idp namespace>:<sub>` });
  }
});

/**
 * Compiles an entry's `when` at load, so a policy with a broken condition is refused naming the
 * entry and the column; the compiled condition replaces its source.
 */
function compileWhen<T extends { name: string; when?: string | undefined }>(
  what: 'role' | 'rule',
): (entry: T, ctx: z.RefinementCtx) => Omit<T, 'when'> & { when: Condition | undefined } {
  return (entry, ctx) => {
    if (entry.when === undefined) return { ...entry, when: undefined };
    const compiled = compileCondition(entry.when);
    if ('condition' in compiled) return { ...entry, when: compiled.condition };
    ctx.addIssue({ code: 'custom', path: ['when'], message: `${what} ${entry.name}: ${compiled.problem}` });
    return z.NEVER;
  };
}

export const RoleSchema = z
  .strictObject({
    name: name('role'),
    members: z
      .strictObject({
        groups: uniqueList(groupMember, 'group').default([]),
        subjects: uniqueList(subjectMember, 'subject').default([]),
        clients: uniqueList(name('client'), 'client').default([]),
        apps: uniqueList(name('app'), 'app').default([]),
        /** Every identity of these IdPs, for a role whose `when` says which (a CI job, a pod). */
        idps: uniqueList(name('idp namespace'), 'idp').default([]),
      })
      .default({ groups: [], subjects: [], clients: [], apps: [], idps: [] }),
    /** A CEL condition on the identity's claims; the role is held only when it holds. */
    when: text.optional(),
  })
  .transform(compileWhen('role'));

export const AppSchema = z.strictObject({
  name: name('app'),
  environments: uniqueList(name('environment'), 'environment').min(1, {
    error: 'an app needs at least one environment',
  }),
  audiences: uniqueList(text, 'audience').min(1, { error: 'an app needs at least one audience' }),
});

export const scopeToken = z.string().superRefine((value, ctx) => {
  if (!SCOPE_TOKEN.test(value)) {
    ctx.addIssue({ code: 'custom', message: `scope ${quote(value)} is not a valid RFC 6749 scope token` });
  }
});

export const RuleSchema = z
  .strictObject({
    name: name('rule'),
    role: name('role'),
    children: uniqueList(name('app'), 'app').min(1, { error: 'a rule needs at least one child app' }),
    environments: uniqueList(name('environment'), 'environment').min(1, {
      error: 'a rule needs at least one environment',
    }),
    scopes: z.record(z.string(), uniqueList(scopeToken, 'scope')),
    /** Absent: the policy's `limits.max_token_ttl`, filled in after limits are known. */
    max_ttl: duration(0),
    may_delegate: z.boolean().default(false),
    max_depth: z
      .int({ error: 'must be a whole number' })
      .min(0, { error: 'must not be negative' })
      .default(0),
    bearer_allowed: z.boolean().default(false),
    /** A CEL condition on the claims and the request; the rule allows nothing when it does not hold. */
    when: text.optional(),
  })
  .transform(compileWhen('rule'));

export type RawIdp = z.output<typeof IdpSchema>;
export type RawClient = z.output<typeof ClientSchema>;
export type RawRole = z.output<typeof RoleSchema>;
export type RawApp = z.output<typeof AppSchema>;
export type RawRule = z.output<typeof RuleSchema>;
