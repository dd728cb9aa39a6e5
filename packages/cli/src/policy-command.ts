import { readFile } from 'node:fs/promises';
import { NAME_PATTERN, parseDurationSeconds } from '@aoa/core';
import {
  type ConditionTrace,
  conditionTrace,
  type Decision,
  type DelegationRequest,
  decide,
  findIdp,
  loadPolicyFile,
  type Policy,
  PolicyError,
  policyWarnings,
  SCOPE_TOKEN,
} from '@aoa/policy';
import { parseCommand, usage } from './args.js';
import { EXIT } from './caller.js';

/** The issuer's default `AOA_REVOCATION_MAX_AGE`: no policy may allow tokens that outlive it. */
const DEFAULT_REVOCATION_MAX_AGE = '24h';

/** decide() asks only whether a token is key-bound, not to which key: any RFC 7638 thumbprint will do. */
const ANY_HOLDER_JKT = 'A'.repeat(43);

/**
 * Loads a policy as the issuer does: the same parser and checks, then the issuer's own limit (tokens
 * may not outlive the revocation bucket's max age).
 *
 * @example
 * const loaded = await checkPolicyFile('policy.yaml', 86_400);
 * if (!loaded.ok) for (const p of loaded.problems) console.error(p);
 * @throws TypeError for a negative `revocationMaxAgeSeconds`
 */
export async function checkPolicyFile(
  file: string,
  revocationMaxAgeSeconds: number,
): Promise<{ ok: true; policy: Policy } | { ok: false; problems: string[] }> {
  if (!(revocationMaxAgeSeconds >= 0)) throw new TypeError('revocationMaxAgeSeconds must be >= 0');
  let policy: Policy;
  try {
    policy = await loadPolicyFile(file);
  } catch (error) {
    if (error instanceof PolicyError) return { ok: false, problems: error.problems };
    throw error;
  }
  if (policy.limits.maxTokenTtlSeconds > revocationMaxAgeSeconds) {
    return {
      ok: false,
      problems: [
        `limits.max_token_ttl (${policy.limits.maxTokenTtlSeconds}s) exceeds the revocation bucket's max age (${revocationMaxAgeSeconds}s)`,
      ],
    };
  }
  return { ok: true, policy };
}

/** The flags of `aoa policy explain` that describe the request, as parsed. */
export interface ExplainFlags {
  principal?: string | undefined;
  group: string[];
  child?: string | undefined;
  env?: string | undefined;
  scope: string[];
  audience: string[];
  ttl: string;
  bearer: boolean;
}

/**
 * Turns the flags into the decide() input the issuer builds for a root delegation by that IdP
 * identity, or a usage message naming what is wrong.
 *
 * @example
 * explainRequestOf({ principal: 'idp:corp:alice', group: [], child: 'dashboards', env: 'prod',
 *   scope: ['read:metrics'], audience: [], ttl: '0', bearer: false }, Date.now());
 */
export function explainRequestOf(flags: ExplainFlags, nowMs: number): DelegationRequest | { usage: string } {
  const principal = /^idp:([^:]+):(.+)$/.exec(flags.principal ?? '');
  if (!principal?.[1] || !principal[2]) return { usage: '--principal must be idp:NAMESPACE:SUBJECT' };
  if (!flags.child || !flags.env || flags.scope.length === 0) {
    return { usage: '--child, --env and at least one --scope are required' };
  }
  for (const [flag, value] of [
    ['--child', flags.child],
    ['--env', flags.env],
  ] as const) {
    if (!NAME_PATTERN.test(value)) return { usage: `${flag} ${JSON.stringify(value)} is not a valid name` };
  }
  const badScope = flags.scope.find((scope) => !SCOPE_TOKEN.test(scope));
  if (badScope !== undefined) return { usage: `--scope ${JSON.stringify(badScope)} is not a scope token` };
  if (!/^\d+$/.test(flags.ttl)) return { usage: '--ttl must be a whole number of seconds (0: the longest)' };
  return {
    principal: { kind: 'idp', idp: principal[1], sub: principal[2], groups: flags.group },
    child: flags.child,
    env: flags.env,
    scopes: [...new Set(flags.scope)],
    audience: [...new Set(flags.audience)],
    ttlSeconds: Number(flags.ttl),
    holderJkt: flags.bearer ? undefined : ANY_HOLDER_JKT,
    parent: undefined,
    nowSeconds: Math.floor(nowMs / 1000),
  };
}

/**
 * The decision the issuer would take for `request` under `policy`; an identity from an IdP the policy
 * does not trust is refused before any rule, as the issuer refuses its token.
 */
export function explainDecision(policy: Policy, request: DelegationRequest): Decision {
  const { principal } = request;
  if (principal.kind === 'idp' && !findIdp(policy, principal.idp)) {
    return {
      allow: false,
      code: 'UNTRUSTED_ISSUER',
      reason: `no trusted IdP has namespace ${principal.idp}`,
      rule: undefined,
      constraint: 'idps',
    };
  }
  return decide(policy, request);
}

/** The `when` lines of `aoa policy explain`: each condition evaluated, and why it held or failed. */
export function formatConditions(trace: ConditionTrace[]): string {
  return trace
    .map(
      (entry) =>
        `  when      ${entry.where}: ${entry.source} -> ${entry.holds ? 'holds' : entry.error ? `fails (${entry.error})` : 'false'}\n`,
    )
    .join('');
}

/** The human answer of `aoa policy explain`. */
export function formatDecision(decision: Decision, nowSeconds: number): string {
  if (!decision.allow) {
    const rule = decision.rule ? `  rule      ${decision.rule}\n` : '';
    const bound = decision.constraint ? `  bound     ${decision.constraint}\n` : '';
    return `denied: ${decision.reason}\n  reason    ${decision.code}\n${rule}${bound}`;
  }
  const ttl = decision.expSeconds - nowSeconds;
  return (
    `allowed by rule ${decision.rule}\n` +
    `  scopes    ${decision.scopes.join(' ')}\n` +
    `  audience  ${decision.audience.join(' ')}\n` +
    `  ttl       ${ttl}s\n` +
    `  token     ${decision.bearer ? 'bearer' : 'key-bound (DPoP)'}\n` +
    `  depth     ${decision.depth} (may be delegated down to depth ${decision.maxDepth})\n`
  );
}

/** `aoa policy check|explain`. */
export async function policyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'check':
      return check(rest);
    case 'explain':
      return explain(rest);
    default:
      return usage('policy', `unknown subcommand ${JSON.stringify(sub ?? '')} (try check, explain)`);
  }
}

const REVOCATION_MAX_AGE_OPTION = {
  'revocation-max-age': { type: 'string', default: DEFAULT_REVOCATION_MAX_AGE },
} as const;

/** Loads FILE for `check` and `explain`; prints the problems (exit 1) or bad usage (exit 2). */
async function loadFor(
  command: string,
  file: string | undefined,
  maxAge: string,
  json: boolean,
): Promise<Policy | number> {
  if (!file) return usage(`policy ${command}`, 'give the policy FILE');
  let maxAgeSeconds: number;
  try {
    maxAgeSeconds = parseDurationSeconds(maxAge);
  } catch (error) {
    return usage(`policy ${command}`, `--revocation-max-age: ${(error as Error).message}`);
  }
  const loaded = await checkPolicyFile(file, maxAgeSeconds);
  if (loaded.ok) return loaded.policy;
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, problems: loaded.problems }, null, 2)}\n`);
  else process.stderr.write(loaded.problems.map((p) => `${p}\n`).join(''));
  return EXIT.failure;
}

async function check(args: string[]): Promise<number> {
  const parsed = parseCommand('policy check', {
    args,
    allowPositionals: true,
    options: { json: { type: 'boolean', default: false }, ...REVOCATION_MAX_AGE_OPTION },
  });
  if (!parsed) return EXIT.usage;
  const { values, positionals } = parsed;
  if (positionals.length > 1) return usage('policy check', 'give one FILE');
  const policy = await loadFor('check', positionals[0], values['revocation-max-age'], values.json);
  if (typeof policy === 'number') return policy;
  const counts = { clients: policy.clients.length, apps: policy.apps.length, rules: policy.rules.length };
  const warnings = policyWarnings(policy);
  if (!values.json) process.stderr.write(warnings.map((w) => `${policy.path}: warning: ${w}\n`).join(''));
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ ok: true, file: policy.path, sha256: policy.hash, ...counts, warnings }, null, 2)}\n`
      : `ok: ${counts.clients} clients, ${counts.apps} apps, ${counts.rules} rules (sha256 ${policy.hash})\n`,
  );
  return EXIT.ok;
}

async function explain(args: string[]): Promise<number> {
  const parsed = parseCommand('policy explain', {
    args,
    allowPositionals: true,
    options: {
      principal: { type: 'string' },
      group: { type: 'string', multiple: true, default: [] },
      child: { type: 'string' },
      env: { type: 'string' },
      scope: { type: 'string', multiple: true, default: [] },
      audience: { type: 'string', multiple: true, default: [] },
      ttl: { type: 'string', default: '0' },
      bearer: { type: 'boolean', default: false },
      claims: { type: 'string' },
      json: { type: 'boolean', default: false },
      ...REVOCATION_MAX_AGE_OPTION,
    },
  });
  if (!parsed) return EXIT.usage;
  const { values, positionals } = parsed;
  if (positionals.length > 1) return usage('policy explain', 'give one FILE');
  const request = explainRequestOf(values, Date.now());
  if ('usage' in request) return usage('policy explain', request.usage);
  if (values.claims !== undefined) {
    const claims = await readClaims(values.claims);
    if (typeof claims === 'string') return usage('policy explain', claims);
    request.claims = claims;
  }
  const policy = await loadFor('explain', positionals[0], values['revocation-max-age'], values.json);
  if (typeof policy === 'number') return policy;
  const decision = explainDecision(policy, request);
  const conditions = conditionTrace(policy, request);
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ ...jsonOf(decision, request.nowSeconds), conditions }, null, 2)}\n`
      : formatDecision(decision, request.nowSeconds) + formatConditions(conditions),
  );
  return decision.allow ? EXIT.ok : EXIT.refused;
}

/** The token claims conditions read, from a JSON file (a decoded token payload), or what is wrong. */
async function readClaims(file: string): Promise<Record<string, unknown> | string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    return `--claims ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`;
  }
  try {
    const claims: unknown = JSON.parse(text);
    if (typeof claims === 'object' && claims !== null && !Array.isArray(claims)) {
      return claims as Record<string, unknown>;
    }
  } catch {
    // reported below, as for any other non-object
  }
  return `--claims ${file}: must hold a JSON object (the token's decoded payload)`;
}

function jsonOf(decision: Decision, nowSeconds: number): Record<string, unknown> {
  if (!decision.allow) {
    const { code, reason, rule, constraint } = decision;
    return { allowed: false, code, reason, rule: rule ?? null, constraint: constraint ?? null };
  }
  const { allow: _allow, expSeconds, ...granted } = decision;
  return { allowed: true, ...granted, ttlSeconds: expSeconds - nowSeconds };
}
