import { type auditor, events } from '@aoa/proto';

const MAX_VALUE = 80;

/** An event as proto3 JSON: what `--json` prints. */
export const eventJson = (event: events.AuditEvent): unknown => events.AuditEvent.toJSON(event);

function scalar(value: unknown): string {
  const text = Array.isArray(value)
    ? value.map((v) => (typeof v === 'object' && v !== null ? '{…}' : String(v))).join(',')
    : typeof value === 'object' && value !== null
      ? '{…}'
      : String(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

/** The fields a reader looks for first; the rest follow in name order. */
const FIRST = [
  'child',
  'env',
  'jti',
  'grant_id',
  'sub',
  'client_id',
  'scopes_granted',
  'scopes',
  'audience',
  'rule',
];
const rank = (key: string) => (FIRST.includes(key) ? FIRST.indexOf(key) : FIRST.length);

/** One line per event: time, type, subject, then the event's fields as `key=value`. */
export function formatEvent(event: events.AuditEvent): string {
  const fields = Object.entries(event.data ?? {})
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .filter(([, v]) => v !== '' && v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${scalar(v)}`);
  const time = event.time ? event.time.toISOString() : '-';
  return [time, event.type, event.subject || '-', ...fields].join('  ');
}

export function formatEvents(list: events.AuditEvent[]): string {
  if (list.length === 0) return 'no matching events\n';
  return `${list.map(formatEvent).join('\n')}\n`;
}

function nodeLine(node: auditor.LineageNode): string {
  const time = node.time ? node.time.toISOString() : 'no issuance event stored';
  const what = node.child ? `${node.child}/${node.env}  [${node.scopes.join(' ')}]  ${node.sub}` : '';
  return `${node.jti}  ${what}  ${time}`.replace(/ {2,}$/, '');
}

/**
 * The delegation tree as indented text: ancestors root first, each one level deeper, then the token
 * asked about (marked `*`) with every token delegated from it below.
 */
export function formatLineage(response: auditor.LineageResponse): string {
  const lines: string[] = [];
  response.ancestors.forEach((node, depth) => {
    lines.push(`${'  '.repeat(depth)}${depth === 0 ? '' : '└─ '}${nodeLine(node)}`);
  });
  const walk = (node: auditor.LineageNode, depth: number, self: boolean) => {
    const branch = depth === 0 ? '' : '└─ ';
    lines.push(`${'  '.repeat(depth)}${branch}${self ? '* ' : ''}${nodeLine(node)}`);
    for (const child of node.children) walk(child, depth + 1, false);
  };
  if (response.node) walk(response.node, response.ancestors.length, true);
  return `${lines.join('\n')}\n`;
}

/** The verification verdict; every problem on its own line. */
export function formatVerify(result: auditor.VerifyChainResponse): string {
  const cp = result.lastCheckpoint;
  const last = cp
    ? `last signed checkpoint: seq ${cp.seq} at ${cp.time?.toISOString() ?? '?'} by key ${cp.publicKey.slice(0, 12)}…${cp.matchesStore ? '' : ' (the store no longer holds its hash)'}\n`
    : 'no signed checkpoint yet\n';
  if (result.ok)
    return `audit chain intact: ${result.checked} rows checked against the signed checkpoints\n${last}`;
  return `audit chain NOT intact: ${result.checked} rows checked, ${result.problems.length} problem(s):\n${result.problems
    .map((p) => `  - ${p}\n`)
    .join('')}${last}`;
}

type Growth = {
  scopes?: { before?: string[]; added?: string[] };
  audiences?: { before?: string[]; added?: string[] };
  ttl?: { before?: number; after?: number };
  depth?: { before?: number; after?: number };
};

/** One line per creep alert: when, which app in which environment, what grew (old and new), which rule. */
export function formatCreep(alerts: events.AuditEvent[]): string {
  if (alerts.length === 0) return 'no privilege creep alerts\n';
  const lines = alerts.map((alert) => {
    const d = alert.data ?? {};
    const g = (d.growth ?? {}) as Growth;
    const grew = [
      g.scopes &&
        `scopes +${(g.scopes.added ?? []).join(',')} (had ${(g.scopes.before ?? []).join(',') || 'none'})`,
      g.audiences &&
        `audiences +${(g.audiences.added ?? []).join(',')} (had ${(g.audiences.before ?? []).join(',') || 'none'})`,
      g.ttl && `ttl ${g.ttl.before}s -> ${g.ttl.after}s`,
      g.depth && `depth ${g.depth.before} -> ${g.depth.after}`,
    ].filter(Boolean);
    const token = d.jti ? `jti ${d.jti}` : d.grant_id ? `grant ${d.grant_id}` : '';
    const time = alert.time ? alert.time.toISOString() : '-';
    return `${time}  ${d.child}/${d.env}  ${grew.join('; ')}  rule ${d.rule}  ${token}`.trimEnd();
  });
  return `${lines.join('\n')}\n`;
}

/**
 * One line per app (its privilege baseline) and per live grant: the scopes no verifier reported a
 * request needing, of those issued or granted.
 */
export function formatUnused(report: auditor.UnusedScopesResponse): string {
  const line = (u: auditor.ScopeUsage) => {
    const who = u.grantId ? `grant ${u.grantId} (${u.app}/${u.env})` : `${u.app}/${u.env}`;
    const unused = u.unused.length > 0 ? `unused ${u.unused.join(',')}` : 'every scope in use';
    return `${who}  ${unused}  (${u.exercised.length} of ${u.granted.length} in use)`;
  };
  const rows = [...report.apps, ...report.grants].map(line);
  return rows.length === 0 ? 'nothing issued or granted yet\n' : `${rows.join('\n')}\n`;
}
