import type { auditor, events, revoker } from '@aoa/proto';
import type { Session } from '../domain/sessions.js';
import type { DelegationTree, TreeNode } from '../domain/tree.js';
import type { CreepDay, GrantRow, TokenRow } from '../domain/views.js';
import { html } from './web.js';

const NAV: Array<[string, string]> = [
  ['/', 'Overview'],
  ['/tree', 'Delegation tree'],
  ['/events', 'Live audit'],
  ['/grants', 'Grants and agents'],
  ['/revocations', 'Revocations'],
  ['/creep', 'Privilege creep'],
];

/** The page frame: navigation, who is signed in, and the sign-out form (CSRF-protected). */
export function layout(title: string, session: Session | undefined, body: string, current = ''): string {
  const nav = session
    ? `<nav>${NAV.map(([href, label]) => `<a href="${href}"${href === current ? ' aria-current="page"' : ''}>${label}</a>`).join('')}</nav>
<form class="signout" method="post" action="/logout"><input type="hidden" name="csrf" value="${html(session.csrf)}">
<span class="who" data-testid="who">${html(session.person.name)} <small>${html(session.person.sub)}</small>${rightsOf(session)}</span>
<button type="submit">Sign out</button></form>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(title)} · aoa console</title><link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script></head>
<body><header><a class="brand" href="/">aoa</a>${nav}</header><main><h1>${html(title)}</h1>${body}</main></body></html>`;
}

/** What the person's operator token lets them do, beside their name. */
function rightsOf(session: Session): string {
  const rights = session.operator?.rights;
  if (!rights) return '';
  const text = rights.admin ? 'administrator' : `owner of ${rights.owns.join(', ')}`;
  return ` <small class="rights" data-testid="rights">${html(text)}</small>`;
}

export function signInPage(idp: string, message = ''): string {
  return layout(
    'Sign in',
    undefined,
    `${message ? `<p class="notice" role="status">${html(message)}</p>` : ''}
<p>The console shows the delegation tree, the live audit and the revocations in force, and revokes with one click.
Sign in with your company identity provider (<code>${html(idp)}</code>).</p>
<p><a class="button" href="/login">Sign in</a></p>`,
  );
}

/** After the callback: a same-site navigation, so the SameSite=Strict session cookie goes with it. */
export function signedInPage(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/">
<title>Signed in · aoa console</title></head><body><p>Signed in. <a href="/">Continue</a></p></body></html>`;
}

export function noRightsPage(session: Session): string {
  return layout(
    'No console rights',
    session,
    `<p class="refusal" role="alert">Policy grants <b>${html(session.person.sub)}</b> no operator rights for the console,
so nothing is shown. ${session.refusal ? `The issuer's reason: <code>${html(session.refusal.reason)}</code>` : ''}</p>
<p>Ask an administrator to add you to a role with a rule for the console's app.</p>`,
  );
}

export function errorPage(session: Session | undefined, title: string, message: string, status = ''): string {
  return layout(
    title,
    session,
    `<p class="refusal" role="alert">${status ? `<code>${html(status)}</code> ` : ''}${html(message)}</p><p><a href="/">Back</a></p>`,
  );
}

export function overviewPage(
  session: Session,
  chain: auditor.VerifyChainResponse | undefined,
  recent: events.AuditEvent[],
): string {
  return layout(
    'Overview',
    session,
    `${chainPanel(chain)}
<section><h2>Latest events</h2>${eventTable(recent)}</section>`,
    '/',
  );
}

/** The chain's status; undefined for an owner, to whom the auditor answers only their clients' events. */
function chainPanel(chain: auditor.VerifyChainResponse | undefined): string {
  if (!chain) {
    return `<section class="chain" data-testid="chain"><h2>Audit chain</h2>
<p>Shown to administrators: you see the events of the clients you own.</p></section>`;
  }
  const cp = chain.lastCheckpoint;
  const last = cp
    ? `<p data-testid="checkpoint">Last signed checkpoint: row ${html(cp.seq)} at ${html(cp.time?.toISOString() ?? '')}, key <code>${html(cp.publicKey.slice(0, 16))}…</code>${cp.matchesStore ? '' : ' — <b>the store no longer holds its hash</b>'}.</p>`
    : '<p data-testid="checkpoint">No signed checkpoint yet.</p>';
  return `<section class="chain ${chain.ok ? 'ok' : 'bad'}" data-testid="chain"><h2>Audit chain</h2>
<p>${chain.ok ? 'Intact' : 'BROKEN'}: ${html(chain.checked)} rows checked against the signed checkpoints.</p>${last}
${
  chain.problems.length > 0
    ? `<ul>${chain.problems
        .slice(0, 20)
        .map((p) => `<li>${html(p)}</li>`)
        .join('')}</ul>`
    : ''
}</section>`;
}

function eventTable(rows: events.AuditEvent[]): string {
  if (rows.length === 0) return '<p>No events.</p>';
  return `<table><thead><tr><th>time</th><th>type</th><th>subject</th><th>source</th></tr></thead><tbody>
${rows.map((e) => `<tr><td>${html(e.time?.toISOString() ?? '')}</td><td>${html(e.type)}</td><td>${subjectLink(e)}</td><td>${html(e.source)}</td></tr>`).join('')}
</tbody></table>`;
}

function subjectLink(event: events.AuditEvent): string {
  return event.type === 'delegation.issued'
    ? `<a href="/tree?jti=${encodeURIComponent(event.subject)}">${html(event.subject)}</a>`
    : html(event.subject);
}

export interface TreeSearch {
  jti: string;
  grant: string;
  subject: string;
  app: string;
  env: string;
}

export function treePage(
  session: Session,
  search: TreeSearch,
  tree: DelegationTree | undefined,
  matches: TokenRow[],
  message = '',
): string {
  const form = `<form class="search" method="get" action="/tree">
<label>Token jti <input name="jti" value="${html(search.jti)}"></label>
<label>or grant <input name="grant" value="${html(search.grant)}"></label>
<label>or subject <input name="subject" value="${html(search.subject)}" placeholder="idp:dev:orchestrator"></label>
<label>app <input name="app" value="${html(search.app)}"></label>
<label>env <input name="env" value="${html(search.env)}"></label>
<button type="submit">Show</button></form>`;
  const list =
    matches.length > 0
      ? `<section><h2>Tokens issued</h2><table><thead><tr><th>jti</th><th>child</th><th>env</th><th>scopes</th><th>agent</th><th>time</th></tr></thead><tbody>
${matches.map((t) => `<tr><td><a href="/tree?jti=${encodeURIComponent(t.jti)}">${html(t.jti)}</a></td><td>${html(t.child)}</td><td>${html(t.env)}</td><td>${html(t.scopes.join(' '))}</td><td>${html(t.agent)}</td><td>${html(t.time?.toISOString() ?? '')}</td></tr>`).join('')}
</tbody></table></section>`
      : '';
  const selected = tree?.nodes.find((n) => n.selected);
  return layout(
    'Delegation tree',
    session,
    `${form}${message ? `<p class="notice" role="status">${html(message)}</p>` : ''}
${tree ? treeSvg(tree) : ''}${tree && tree.cut > 0 ? `<p class="notice">${tree.cut} more tokens are not drawn.</p>` : ''}
${selected ? nodeDetails(session, selected) : ''}${list}`,
    '/tree',
  );
}

function treeSvg(tree: DelegationTree): string {
  const w = tree.nodeWidth;
  const h = tree.nodeHeight;
  const edges = tree.edges
    .map(
      (edge) =>
        `<polyline class="edge" points="${edge.points.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')}"/>`,
    )
    .join('');
  const nodes = tree.nodes
    .map((node) => {
      const x = node.x - w / 2;
      const y = node.y - h / 2;
      const classes = [
        'node',
        node.revoked ? `revoked revoked-${node.revoked}` : '',
        node.selected ? 'selected' : '',
      ]
        .filter(Boolean)
        .join(' ');
      const scopes = node.scopes.join(' ');
      return `<a href="/tree?jti=${encodeURIComponent(node.jti)}" class="${classes}" data-jti="${html(node.jti)}">
<title>${html(`${node.jti}\n${node.sub}\nscopes: ${scopes}${node.dropped.length > 0 ? `\nnarrowed: −${node.dropped.join(' −')}` : ''}${node.revoked ? `\nrevoked (${node.revoked})` : ''}`)}</title>
<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w}" height="${h}" rx="8"/>
<text x="${(x + 10).toFixed(1)}" y="${(y + 20).toFixed(1)}" class="app">${html(node.child || '?')} · ${html(node.env)}${node.revoked ? ' ⊘' : ''}</text>
<text x="${(x + 10).toFixed(1)}" y="${(y + 38).toFixed(1)}" class="scopes">${html(truncate(scopes, 30))}</text>
<text x="${(x + 10).toFixed(1)}" y="${(y + 54).toFixed(1)}" class="jti">${html(truncate(node.jti, 30))}</text></a>`;
    })
    .join('');
  return `<svg class="tree" data-testid="tree" viewBox="0 0 ${tree.width} ${tree.height}" width="${tree.width}" height="${tree.height}" role="img" aria-label="delegation tree">${edges}${nodes}</svg>`;
}

const truncate = (text: string, max: number): string =>
  text.length > max ? `${text.slice(0, max - 1)}…` : text;

function nodeDetails(session: Session, node: TreeNode): string {
  const admin = session.operator?.rights.admin === true;
  return `<section class="details" data-testid="details"><h2>Token ${html(node.jti)}</h2>
<dl><dt>subject</dt><dd>${html(node.sub)}</dd><dt>child</dt><dd>${html(node.child)} in ${html(node.env)}</dd>
<dt>scopes</dt><dd>${html(node.scopes.join(' '))}${node.dropped.length > 0 ? ` <small>(narrowed: −${html(node.dropped.join(' −'))})</small>` : ''}</dd>
<dt>issued</dt><dd>${html(node.time?.toISOString() ?? '')}</dd><dt>descendants</dt><dd>${node.descendants}</dd>
${admin ? `<dt>state</dt><dd>${node.revoked ? `revoked${node.revoked === 'ancestor' ? ' through an ancestor' : ''}` : 'live'}</dd>` : ''}</dl>
${
  admin
    ? node.revoked === 'self'
      ? ''
      : revokeButton(session, 'jti', node.jti, `Revoke this token and its ${node.descendants} descendants`)
    : // The revoker judges an owner's jti revocation by the token itself, which the console never holds.
      '<p class="notice">Revocation marks and revoking a token are for administrators; revoke your grants on the grants page.</p>'
}</section>`;
}

function revokeButton(
  session: Session,
  kind: string,
  value: string,
  label: string,
  extra: Record<string, string> = {},
): string {
  return `<form method="post" action="/revoke/confirm" class="inline">
<input type="hidden" name="csrf" value="${html(session.csrf)}"><input type="hidden" name="kind" value="${html(kind)}">
<input type="hidden" name="value" value="${html(value)}">${Object.entries(extra)
    .map(([k, v]) => `<input type="hidden" name="${html(k)}" value="${html(v)}">`)
    .join('')}
<button type="submit" class="danger">${html(label)}</button></form>`;
}

export function feedPage(
  session: Session,
  chain: auditor.VerifyChainResponse | undefined,
  filters: URLSearchParams,
): string {
  const field = (name: string, label: string, placeholder: string) =>
    `<label>${label} <input name="${name}" value="${html(filters.get(name) ?? '')}" placeholder="${placeholder}"></label>`;
  return layout(
    'Live audit',
    session,
    `${chainPanel(chain)}
<form class="search" method="get" action="/events">${field('type', 'type', 'delegation.issued')}${field('app', 'app', 'dashboards')}${field('env', 'env', 'prod')}${field('subject', 'subject', 'jti, grant or key')}<button type="submit">Filter</button></form>
<p class="live" data-testid="live-status">Connecting…</p>
<table class="feed"><thead><tr><th>time</th><th>type</th><th>subject</th><th>app</th><th>env</th></tr></thead><tbody id="feed" data-testid="feed"></tbody></table>`,
    '/events',
  );
}

export function grantsPage(session: Session, grants: GrantRow[], message = ''): string {
  const rows = grants
    .map(
      (
        row,
      ) => `<tr data-grant="${html(row.grant.id)}"><td><a href="/tree?grant=${encodeURIComponent(row.grant.id)}" title="Its tokens">${html(row.grant.id)}</a></td><td>${html(row.grant.child)} · ${html(row.grant.environment)}</td>
<td>${html(row.grant.scopes.join(' '))}</td><td>${html(row.grant.state)}</td><td>${html(row.lastRotation ?? '—')}</td><td>${html(row.nextRotation ?? '—')}</td>
<td class="${row.lagSeconds > 0 ? 'late' : ''}">${row.lagSeconds > 0 ? `${row.lagSeconds} s late` : 'on time'}</td>
<td>${row.agents.length === 0 ? 'none' : row.agents.map((a) => `${html(a.agent)} <small>${html(a.lastDelivery ?? 'no delivery yet')}</small>`).join('<br>')}</td>
<td>${row.grant.state === 'active' ? `<form method="post" action="/grants/rotate"><input type="hidden" name="csrf" value="${html(session.csrf)}"><input type="hidden" name="grant" value="${html(row.grant.id)}"><button type="submit">Rotate now</button></form>${revokeButton(session, 'grant', row.grant.id, 'Revoke')}` : ''}</td></tr>`,
    )
    .join('');
  return layout(
    'Grants and agents',
    session,
    `${message ? `<p class="notice" role="status">${html(message)}</p>` : ''}
<table><thead><tr><th>grant</th><th>child</th><th>scopes</th><th>state</th><th>last rotation</th><th>next rotation (about)</th><th>lag</th><th>agents, last delivery</th><th></th></tr></thead>
<tbody>${rows || '<tr><td colspan="9">No grants.</td></tr>'}</tbody></table>`,
    '/grants',
  );
}

export function revocationsPage(session: Session, revocations: revoker.Revocation[]): string {
  const rows = revocations
    .map(
      (r) =>
        `<tr><td>${html(r.kind)}</td><td><code>${html(r.key)}</code></td><td>${html(new Date(Number(r.atMs)).toISOString())}</td><td>${html(r.by)}</td><td>${html(r.reason)}</td></tr>`,
    )
    .join('');
  return layout(
    'Revocations',
    session,
    `<section><h2>Revoke</h2><form method="post" action="/revoke/confirm" class="revoke">
<input type="hidden" name="csrf" value="${html(session.csrf)}">
<label>What <select name="kind"><option value="jti">a token (jti) and its descendants</option><option value="grant">a grant</option>
<option value="app">an app in an environment</option><option value="subject">a subject</option><option value="kid">a signing key (kid)</option></select></label>
<label>Value <input name="value" required placeholder="jti, grant id, app, subject or kid"></label>
<label>Environment (for an app) <input name="environment"></label>
<button type="submit" class="danger">Review</button></form></section>
<section><h2>In force</h2><table data-testid="revocations"><thead><tr><th>kind</th><th>key</th><th>at</th><th>by</th><th>reason</th></tr></thead>
<tbody>${rows || '<tr><td colspan="5">None.</td></tr>'}</tbody></table></section>`,
    '/revocations',
  );
}

/** What a revocation will cut, for the person to confirm before it happens. */
export interface RevocationPreview {
  kind: string;
  value: string;
  environment: string;
  description: string;
  /** Tokens known (from the audit lineage) to fall with it, when that can be counted. */
  descendants: number | undefined;
}

export function confirmPage(session: Session, preview: RevocationPreview): string {
  return layout(
    'Confirm revocation',
    session,
    `<p class="warning" role="alert" data-testid="confirm">${html(preview.description)}${
      preview.descendants !== undefined
        ? ` This cuts <b data-testid="descendants">${preview.descendants}</b> descendant token${preview.descendants === 1 ? '' : 's'} too.`
        : ''
    } Revocation cannot be undone from the console.</p>
<form method="post" action="/revoke"><input type="hidden" name="csrf" value="${html(session.csrf)}">
<input type="hidden" name="kind" value="${html(preview.kind)}"><input type="hidden" name="value" value="${html(preview.value)}">
<input type="hidden" name="environment" value="${html(preview.environment)}">
<label>Reason <input name="reason" maxlength="200" value="revoked from the console"></label>
<button type="submit" class="danger">Revoke</button> <a href="/revocations">Cancel</a></form>`,
  );
}

export function revokedPage(
  session: Session,
  preview: RevocationPreview,
  response: revoker.RevokeResponse,
): string {
  return layout(
    'Revoked',
    session,
    `<p class="notice" role="status" data-testid="revoked">${html(preview.description)} Revoked: <code>${html(response.key)}</code> (revocation ${html(response.revocationId)}).</p>
${preview.kind === 'jti' ? `<p><a href="/tree?jti=${encodeURIComponent(preview.value)}">See the tree</a></p>` : ''}<p><a href="/revocations">Revocations in force</a></p>`,
  );
}

export function creepPage(
  session: Session,
  usage: { apps: Array<{ env: string; app: string; grantId: string; granted: string[]; unused: string[] }> },
  alerts: events.AuditEvent[],
  days: CreepDay[],
): string {
  const usageRows = usage.apps
    .map(
      (u) =>
        `<tr><td>${html(u.app)}</td><td>${html(u.env)}</td><td>${html(u.granted.join(' '))}</td><td class="${u.unused.length > 0 ? 'late' : ''}">${html(u.unused.join(' ') || '—')}</td></tr>`,
    )
    .join('');
  const alertRows = alerts
    .map(
      (e) =>
        `<tr data-testid="creep-alert"><td>${html(e.time?.toISOString() ?? '')}</td><td>${html(e.data?.child)}</td><td>${html(e.data?.env)}</td><td>${html(e.data?.rule)}</td><td>${html(growthText(e.data?.growth))}</td></tr>`,
    )
    .join('');
  return layout(
    'Privilege creep',
    session,
    `<section><h2>Creep alerts per day</h2>${creepChart(days)}</section>
<section><h2>Unused scopes per app</h2><table><thead><tr><th>app</th><th>env</th><th>granted</th><th>never exercised</th></tr></thead>
<tbody>${usageRows || '<tr><td colspan="4">No usage reports yet.</td></tr>'}</tbody></table></section>
<section><h2>Alerts</h2><table><thead><tr><th>time</th><th>app</th><th>env</th><th>rule</th><th>what grew</th></tr></thead>
<tbody>${alertRows || '<tr><td colspan="5">No alerts.</td></tr>'}</tbody></table></section>`,
    '/creep',
  );
}

/** An alert's growth as one line: `scopes +a +b; audiences +x; ttl 300→900 s; depth 0→1`. */
function growthText(growth: unknown): string {
  if (typeof growth !== 'object' || growth === null) return '';
  const g = growth as Record<string, { added?: unknown[]; before?: unknown; after?: unknown }>;
  const parts: string[] = [];
  for (const key of ['scopes', 'audiences']) {
    const added = g[key]?.added;
    if (Array.isArray(added)) parts.push(`${key} ${added.map((a) => `+${String(a)}`).join(' ')}`);
  }
  if (g.ttl) parts.push(`ttl ${String(g.ttl.before)}→${String(g.ttl.after)} s`);
  if (g.depth) parts.push(`depth ${String(g.depth.before)}→${String(g.depth.after)}`);
  return parts.join('; ');
}

function creepChart(days: CreepDay[]): string {
  const width = 640;
  const height = 160;
  const max = Math.max(1, ...days.map((d) => d.alerts));
  const bar = width / Math.max(1, days.length);
  const bars = days
    .map((d, i) => {
      const h = Math.round((d.alerts / max) * (height - 30));
      const x = (i * bar + 2).toFixed(1);
      return `<rect class="bar" x="${x}" y="${height - 20 - h}" width="${(bar - 4).toFixed(1)}" height="${h}"><title>${html(d.day)}: ${d.alerts}</title></rect>
<text class="label" x="${x}" y="${height - 6}">${html(d.day.slice(5))}</text>`;
    })
    .join('');
  return `<svg class="chart" data-testid="creep-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="creep alerts per day">${bars}</svg>`;
}
