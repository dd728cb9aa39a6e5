import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A person who can sign in to the test IdP with the authorization code grant. */
export interface IdpUser {
  /** The login name, and the `sub` of the person's tokens. */
  login: string;
  password: string;
  /** Put in the person's access token's `groups` claim. */
  groups?: string[];
  /** The `name` claim of the ID token. */
  name?: string;
}

/** The part of an oidc-provider `Provider` the sign-in pages use. */
export interface InteractionProvider {
  interactionDetails(request: IncomingMessage, response: ServerResponse): Promise<Interaction>;
  interactionFinished(
    request: IncomingMessage,
    response: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: GrantClass;
}

interface Interaction {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}

interface GrantInstance {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

interface GrantClass {
  new (properties: { accountId: string; clientId: string }): GrantInstance;
  find(id: string): Promise<GrantInstance | undefined>;
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/login)?$/;
const MAX_FORM_BYTES = 4096;

/**
 * Serves the test IdP's sign-in: `GET /interaction/<uid>` shows a login form (or, once signed in,
 * grants what the first-party client asked and returns to it), `POST /interaction/<uid>/login` checks
 * the login and password. Answers whether the request was one of these.
 */
export async function handleInteraction(
  provider: InteractionProvider,
  users: ReadonlyMap<string, IdpUser>,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<boolean> {
  const match = INTERACTION.exec(new URL(request.url ?? '/', 'http://x').pathname);
  if (!match) return false;
  const details = await provider.interactionDetails(request, response);
  if (match[2] === '/login') {
    if (request.method !== 'POST') {
      answerPage(response, 405, '<p>Method not allowed</p>');
      return true;
    }
    const form = new URLSearchParams(await readBody(request));
    const user = users.get(form.get('login') ?? '');
    if (!user || !samePassword(user.password, form.get('password') ?? '')) {
      answerPage(response, 401, loginForm(details.uid, 'Unknown login or wrong password.'));
      return true;
    }
    await provider.interactionFinished(request, response, { login: { accountId: user.login } });
    return true;
  }
  if (details.prompt.name === 'login') {
    answerPage(response, 200, loginForm(details.uid));
    return true;
  }
  await provider.interactionFinished(
    request,
    response,
    { consent: { grantId: await grantAll(provider, details) } },
    { mergeWithLastSubmission: true },
  );
  return true;
}

/** A first-party IdP: consent is implied, so grant exactly what is missing. */
async function grantAll(provider: InteractionProvider, details: Interaction): Promise<string> {
  const accountId = details.session?.accountId ?? '';
  const clientId = String(details.params.client_id ?? '');
  const grant =
    (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ??
    new provider.Grant({ accountId, clientId });
  const missing = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

function samePassword(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(request: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of request) {
    body += chunk;
    if (body.length > MAX_FORM_BYTES) throw new Error('sign-in form too large');
  }
  return body;
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginForm(uid: string, error?: string): string {
  return `<h1>Sign in to the development IdP</h1>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label>Login <input name="login" autocomplete="username" required autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>`;
}

function answerPage(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Development IdP</title>
<style>body{font:16px system-ui;margin:4rem auto;max-width:24rem}label{display:block;margin:.5rem 0}input{display:block;width:100%}</style>
</head><body>${body}</body></html>`);
}
