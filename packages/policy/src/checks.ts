import { isName, parseDurationSeconds } from '@aoa/core';
import type { Problems } from './errors.js';
import { quote } from './errors.js';
import type { SectionName } from './sections.js';

/**
 * A policy file's sections as read, before or despite their schema: the cross-item checks look at
 * whatever is well-formed enough to check, so one pass reports every problem in the file.
 */
export interface RawSections {
  /** Undefined when `limits` itself is invalid. */
  maxTokenTtlSeconds: number | undefined;
  sections: Record<SectionName, unknown[]>;
  /** Sections that are not lists: nothing is known about their names, so nothing dangles into them. */
  broken: Set<SectionName>;
}

type Raw = Record<string, unknown>;
type Path = (string | number)[];

const NAME_KEY: Record<SectionName, string> = {
  idps: 'namespace',
  clients: 'id',
  roles: 'name',
  apps: 'name',
  rules: 'name',
  grants: 'name',
};
const WHAT: Record<SectionName, string> = {
  idps: 'idp namespace',
  clients: 'client id',
  roles: 'role name',
  apps: 'app name',
  rules: 'rule name',
  grants: 'grant name',
};

/**
 * The checks that span items: duplicate names, references to what does not exist, and rules that
 * contradict themselves or the limits. A reference that is not a valid name is left to the schema.
 */
export function checkPolicy(input: RawSections, problems: Problems): void {
  const { sections } = input;
  const names = {} as Record<SectionName, Set<string>>;
  for (const section of Object.keys(sections) as SectionName[]) {
    const entries = sections[section].map((item, index) => ({ index, key: str(item, NAME_KEY[section]) }));
    names[section] = new Set(entries.flatMap((entry) => (entry.key === undefined ? [] : [entry.key])));
    firstSeen(entries, (index, first, key) =>
      problems.add(
        [section, index, NAME_KEY[section]],
        `duplicate ${WHAT[section]} ${quote(key)} (also ${section}[${first}])`,
      ),
    );
  }
  const refer = (path: Path, value: string, section: SectionName, problem: string) => {
    if (isName(value) && !input.broken.has(section) && !names[section].has(value))
      problems.add(path, problem);
  };
  const noIdp = (namespace: string) => `no idp has namespace ${quote(namespace)}`;

  firstSeen(
    sections.idps.map((idp, index) => ({ index, key: str(idp, 'issuer') })),
    (index, first) => problems.add(['idps', index, 'issuer'], `issuer is already trusted as idps[${first}]`),
  );
  firstSeen(
    sections.clients.map((client, index) => ({ index, key: str(client, 'tls_client_auth_san_uri') })),
    (index, first) =>
      problems.add(
        ['clients', index, 'tls_client_auth_san_uri'],
        `this certificate already authenticates clients[${first}]`,
      ),
  );
  sections.clients.forEach((client, index) => {
    const jwks = list(client, 'jwks');
    firstSeen(
      jwks.map(({ index: i, value }) => ({ index: i, key: str(value, 'kid') })),
      (i, first) => problems.add(['clients', index, 'jwks', i, 'kid'], `duplicate kid (also jwks[${first}])`),
    );
    const federatedIdp = str(obj(client)?.federated, 'idp');
    if (federatedIdp !== undefined)
      refer(['clients', index, 'federated', 'idp'], federatedIdp, 'idps', noIdp(federatedIdp));
    for (const { index: i, value: entry } of list(client, 'may_present')) {
      const idp = str(entry, 'idp');
      if (idp !== undefined) refer(['clients', index, 'may_present', i, 'idp'], idp, 'idps', noIdp(idp));
    }
    for (const { index: i, value } of strings(client, 'owners')) {
      refer(['clients', index, 'owners', i], value, 'roles', `no role is named ${quote(value)}`);
    }
  });
  sections.roles.forEach((role, index) => {
    const members = obj(role)?.members;
    const at = (kind: string, i: number): Path => ['roles', index, 'members', kind, i];
    for (const { index: i, value } of strings(members, 'groups')) {
      const namespace = value.slice(0, Math.max(0, value.indexOf(':')));
      refer(at('groups', i), namespace, 'idps', noIdp(namespace));
    }
    for (const { index: i, value } of strings(members, 'subjects')) {
      const namespace = value.split(':')[1] ?? '';
      if (value.startsWith('idp:')) refer(at('subjects', i), namespace, 'idps', noIdp(namespace));
    }
    for (const { index: i, value } of strings(members, 'clients')) {
      refer(at('clients', i), value, 'clients', `no client has id ${quote(value)}`);
    }
    for (const { index: i, value } of strings(members, 'apps')) {
      refer(at('apps', i), value, 'apps', `no app is named ${quote(value)}`);
    }
    for (const { index: i, value } of strings(members, 'idps')) {
      refer(at('idps', i), value, 'idps', noIdp(value));
      if (str(role, 'when') === undefined) {
        problems.add(
          at('idps', i),
          `admits every identity of idp ${value}: add a when condition saying which`,
        );
      }
    }
  });
  sections.rules.forEach((rule, index) => {
    const role = str(rule, 'role');
    if (role !== undefined) refer(['rules', index, 'role'], role, 'roles', `no role is named ${quote(role)}`);
    for (const { index: i, value } of strings(rule, 'children')) {
      refer(['rules', index, 'children', i], value, 'apps', `no app is named ${quote(value)}`);
    }
    checkRuleEnvironments(rule, index, sections.apps, problems);
    checkRuleLimits(rule, index, input.maxTokenTtlSeconds, problems);
  });
  sections.grants.forEach((grant, index) => {
    const client = str(grant, 'parent_client');
    if (client !== undefined) {
      refer(['grants', index, 'parent_client'], client, 'clients', `no client has id ${quote(client)}`);
    }
    const app = str(grant, 'app');
    if (app !== undefined) refer(['grants', index, 'app'], app, 'apps', `no app is named ${quote(app)}`);
    const namespace = /^idp:([^:]+):/.exec(str(grant, 'sub') ?? '')?.[1];
    if (namespace !== undefined) refer(['grants', index, 'sub'], namespace, 'idps', noIdp(namespace));
    const attestIdp = str(obj(obj(grant)?.attest), 'idp');
    if (attestIdp !== undefined) {
      const idp = sections.idps.find((candidate) => str(candidate, 'namespace') === attestIdp);
      if (!idp) problems.add(['grants', index, 'attest', 'idp'], noIdp(attestIdp));
      else if (str(idp, 'profile') !== 'kubernetes') {
        problems.add(
          ['grants', index, 'attest', 'idp'],
          `idp ${attestIdp} is not of profile kubernetes: pods attest with service-account tokens`,
        );
      }
    }
    firstSeen(
      list(grant, 'agents').map(({ index: i, value }) => ({ index: i, key: str(value, 'id') })),
      (i, first) =>
        problems.add(['grants', index, 'agents', i, 'id'], `duplicate agent id (also agents[${first}])`),
    );
  });
}

function checkRuleEnvironments(rule: unknown, index: number, apps: unknown[], problems: Problems): void {
  const environments = strings(rule, 'environments');
  const scopes = obj(obj(rule)?.scopes);
  for (const { index: i, value: env } of environments) {
    for (const { value: child } of strings(rule, 'children')) {
      const app = apps.find((candidate) => str(candidate, 'name') === child);
      const known = strings(app, 'environments').map((entry) => entry.value);
      if (Array.isArray(obj(app)?.environments) && !known.includes(env)) {
        problems.add(['rules', index, 'environments', i], `app ${child} has no environment ${quote(env)}`);
      }
    }
    if (!scopes) continue;
    const granted = scopes[env];
    if (granted === undefined) problems.add(['rules', index, 'scopes'], `environment ${env} has no scopes`);
    else if (Array.isArray(granted) && granted.length === 0) {
      problems.add(['rules', index, 'scopes', env], `environment ${env} has no scopes`);
    }
  }
  const declared = environments.map((entry) => entry.value);
  for (const env of Object.keys(scopes ?? {})) {
    if (Array.isArray(obj(rule)?.environments) && !declared.includes(env)) {
      problems.add(
        ['rules', index, 'scopes', env],
        `environment ${quote(env)} is not one of the rule's environments`,
      );
    }
  }
}

function checkRuleLimits(rule: unknown, index: number, limit: number | undefined, problems: Problems): void {
  const raw = obj(rule);
  const maxTtl = seconds(raw?.max_ttl);
  if (limit !== undefined && maxTtl !== undefined && maxTtl > limit) {
    problems.add(['rules', index, 'max_ttl'], `${maxTtl}s is longer than limits.max_token_ttl (${limit}s)`);
  }
  const mayDelegate = raw?.may_delegate ?? false;
  const maxDepth = raw?.max_depth ?? 0;
  if (typeof mayDelegate !== 'boolean' || typeof maxDepth !== 'number') return;
  if (!mayDelegate && maxDepth > 0) {
    problems.add(
      ['rules', index, 'max_depth'],
      `is ${maxDepth} but may_delegate is false: set may_delegate or max_depth 0`,
    );
  }
  if (mayDelegate && maxDepth === 0) {
    problems.add(
      ['rules', index, 'may_delegate'],
      'is true but max_depth is 0, so no token could ever sub-delegate',
    );
  }
}

/** Calls `onRepeat` for every entry whose defined key an earlier entry already had. */
function firstSeen(
  entries: { index: number; key: string | undefined }[],
  onRepeat: (index: number, first: number, key: string) => void,
): void {
  const seen = new Map<string, number>();
  for (const { index, key } of entries) {
    if (key === undefined) continue;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else onRepeat(index, first, key);
  }
}

const obj = (value: unknown): Raw | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Raw) : undefined;

const str = (value: unknown, key: string): string | undefined => {
  const field = obj(value)?.[key];
  return typeof field === 'string' ? field : undefined;
};

const list = (value: unknown, key: string): { index: number; value: unknown }[] => {
  const field = obj(value)?.[key];
  return Array.isArray(field) ? field.map((item: unknown, index) => ({ index, value: item })) : [];
};

const strings = (value: unknown, key: string): { index: number; value: string }[] =>
  list(value, key).flatMap((entry) =>
    typeof entry.value === 'string' ? [{ index: entry.index, value: entry.value }] : [],
  );

function seconds(value: unknown): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  try {
    return parseDurationSeconds(value);
  } catch {
    return undefined;
  }
}
