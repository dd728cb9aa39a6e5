import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { sha256Hex } from '@aoa/core';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { checkPolicy, type RawSections } from './checks.js';
import { type PathSegment, PolicyError, Problems, quote } from './errors.js';
import { checkGrantsAllowed } from './grant-checks.js';
import type { RawGrant } from './grant-schema.js';
import { PROFILE_DEFAULTS } from './profiles.js';
import {
  LimitsSchema,
  type RawApp,
  type RawClient,
  type RawIdp,
  type RawRole,
  type RawRule,
} from './schema.js';
import { ROOT_KEYS, SECTIONS, type SectionName } from './sections.js';
import type { IdpConfig, Policy } from './types.js';

/** Aliases a policy may expand before it is refused: enough for reuse, too few for an alias bomb. */
const MAX_ALIASES = 100;

/**
 * Parses and validates a policy file's text. Every problem in the file is reported at once, each as
 * `<file>: <path>: <problem>`; `path` is only used for its base name in those messages and is kept on
 * the result.
 *
 * @example
 * const policy = parsePolicy(await readFile('policy.yaml', 'utf8'), 'policy.yaml');
 * policy.rules[0]?.maxTtlSeconds; // 900
 * @throws PolicyError listing every problem
 */
export function parsePolicy(text: string, path: string): Policy {
  const problems = new Problems(basename(path));
  const data = readYaml(text, problems);
  if (!problems.empty) throw new PolicyError(problems.list);
  const { raw, parsed } = readSections(data, problems);
  checkPolicy(raw, problems);
  if (!problems.empty || parsed.maxTokenTtlSeconds === undefined) throw new PolicyError(problems.list);
  const policy = buildPolicy(parsed, parsed.maxTokenTtlSeconds, sha256Hex(text), path);
  // Only a policy whose every part is valid can judge its own grants.
  checkGrantsAllowed(policy, problems);
  if (!problems.empty) throw new PolicyError(problems.list);
  return deepFreeze(policy);
}

/**
 * Reads and parses a policy file.
 *
 * @example
 * const policy = await loadPolicyFile('/etc/aoa/policy.yaml');
 * @throws PolicyError when the file cannot be read or is invalid
 */
export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new PolicyError([`${basename(path)}: (file): cannot read the policy file (${code})`]);
  }
  return parsePolicy(text, path);
}

function readYaml(text: string, problems: Problems): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  for (const error of doc.errors) {
    // The pretty message quotes the offending lines; keep only its first line, without the position.
    const message = (error.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    const at = error.linePos?.[0];
    problems.add(at ? `line ${at.line}, column ${at.col}` : '(yaml)', `YAML syntax: ${message}`);
  }
  if (!problems.empty) return undefined;
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (error) {
    problems.add('(yaml)', `YAML: ${((error as Error).message.split('\n')[0] ?? '').slice(0, 120)}`);
    return undefined;
  }
}

/** The items of each section that passed their schema, in file order. */
interface Parsed {
  maxTokenTtlSeconds: number | undefined;
  idps: RawIdp[];
  clients: RawClient[];
  roles: RawRole[];
  apps: RawApp[];
  rules: RawRule[];
  grants: RawGrant[];
}

function readSections(data: unknown, problems: Problems): { raw: RawSections; parsed: Parsed } {
  const raw: RawSections = {
    maxTokenTtlSeconds: undefined,
    sections: { idps: [], clients: [], roles: [], apps: [], rules: [], grants: [] },
    broken: new Set(),
  };
  const parsed: Parsed = {
    maxTokenTtlSeconds: undefined,
    idps: [],
    clients: [],
    roles: [],
    apps: [],
    rules: [],
    grants: [],
  };
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    problems.add([], `must be a mapping with the keys ${ROOT_KEYS.join(', ')}`);
    return { raw, parsed };
  }
  const root = data as Record<string, unknown>;
  for (const key of Object.keys(root)) if (!ROOT_KEYS.includes(key)) problems.add([key], 'unknown key');
  if (root.version === undefined) problems.add(['version'], 'required');
  else if (root.version !== 1)
    problems.add(['version'], `unsupported version ${quote(root.version)}: expected 1`);

  const limits = parseWith(LimitsSchema, root.limits ?? {}, ['limits'], problems);
  raw.maxTokenTtlSeconds = limits?.max_token_ttl;
  parsed.maxTokenTtlSeconds = limits?.max_token_ttl;

  for (const section of Object.keys(SECTIONS) as SectionName[]) {
    const list = root[section] ?? [];
    if (!Array.isArray(list)) {
      problems.add([section], 'must be a list');
      raw.broken.add(section);
      continue;
    }
    raw.sections[section] = list;
    const schema = SECTIONS[section] as z.ZodType;
    const items = parsed[section] as unknown[];
    list.forEach((value: unknown, index) => {
      const item = parseWith(schema, value, [section, index], problems);
      if (item !== undefined) items.push(item);
    });
  }
  return { raw, parsed };
}

function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  at: PathSegment[],
  problems: Problems,
): z.output<S> | undefined {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const path = [...at, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.add([...path, key], 'unknown key');
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      problems.add(path, 'required');
    } else if (issue.code === 'invalid_type' && issue.expected === 'int' && typeof issue.input === 'number') {
      problems.add(path, 'must be a whole number');
    } else if (issue.code === 'invalid_type') {
      problems.add(path, `expected ${issue.expected}, got ${describe(issue.input)}`);
    } else {
      problems.add(path, issue.message);
    }
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** An IdP entry with its profile's defaults filled in. */
function buildIdp(idp: RawIdp): IdpConfig {
  const defaults = PROFILE_DEFAULTS[idp.profile];
  const groups = idp.groups_claim ?? defaults.groupsClaims;
  return {
    namespace: idp.namespace,
    profile: idp.profile,
    issuer: idp.issuer,
    tenants: idp.tenants ?? [],
    discoveryUrl: idp.discovery_url,
    audience: idp.audience,
    subjectClaim: idp.subject_claim ?? defaults.subjectClaim,
    groupsClaims: typeof groups === 'string' ? [groups] : groups,
    tokenTypes: (idp.token_types ?? defaults.tokenTypes)?.map((type) => type.toLowerCase()),
    algorithms: idp.algorithms ?? defaults.algorithms,
    requiredClaims: idp.required_claims ?? defaults.requiredClaims,
    clockSkewSeconds: idp.clock_skew,
    tokenReview: idp.token_review && {
      server: idp.token_review.server.replace(/\/+$/, ''),
      caFile: idp.token_review.ca_file,
      tokenFile: idp.token_review.token_file,
      cacheSeconds: idp.token_review.cache,
    },
  };
}

function buildPolicy(s: Parsed, maxTokenTtlSeconds: number, hash: string, path: string): Policy {
  return {
    version: 1,
    hash,
    path,
    limits: { maxTokenTtlSeconds },
    idps: s.idps.map(buildIdp),
    clients: s.clients.map((client) => ({
      id: client.id,
      admin: client.admin,
      keys: client.jwks ?? [],
      federated: client.federated && {
        idp: client.federated.idp,
        when: client.federated.when,
        maxAgeSeconds: client.federated.max_age,
      },
      tlsClientAuthSanUri: client.tls_client_auth_san_uri,
      mayPresent: client.may_present,
      dpopBoundAccessTokens: client.dpop_bound_access_tokens,
      owners: client.owners,
    })),
    roles: s.roles.map((role) => ({ name: role.name, members: role.members, when: role.when })),
    apps: s.apps.map((app) => ({ name: app.name, environments: app.environments, audiences: app.audiences })),
    rules: s.rules.map((rule) => ({
      name: rule.name,
      role: rule.role,
      children: rule.children,
      environments: rule.environments,
      scopes: Object.fromEntries(
        Object.entries(rule.scopes).map(([env, scopes]) => [env, [...scopes].sort()]),
      ),
      maxTtlSeconds: rule.max_ttl === 0 ? maxTokenTtlSeconds : rule.max_ttl,
      mayDelegate: rule.may_delegate,
      maxDepth: rule.max_depth,
      bearerAllowed: rule.bearer_allowed,
      when: rule.when,
    })),
    grants: s.grants.map((grant) => ({
      name: grant.name,
      sub: grant.sub,
      parentClient: grant.parent_client,
      app: grant.app,
      env: grant.env,
      scopes: [...grant.scopes].sort(),
      audience: [...grant.audience].sort(),
      tokenTtlSeconds: grant.token_ttl,
      expiresInSeconds: grant.expires_in,
      agents: grant.agents.map((agent) => ({
        id: agent.id,
        encryptionJwk: agent.encryption_jwk,
        dpopJwk: agent.dpop_jwk,
      })),
      attest: grant.attest && {
        idp: grant.attest.idp,
        namespace: grant.attest.namespace,
        serviceAccount: grant.attest.service_account,
        when: grant.attest.when,
      },
    })),
  };
}

/** Freezes the plain data of a policy so no consumer can change a policy another one is reading. */
function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (!Array.isArray(value) && Object.getPrototypeOf(value) !== Object.prototype) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}
