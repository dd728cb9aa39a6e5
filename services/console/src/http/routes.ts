import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, HttpHandler, Logger } from '@aoa/core';
import { isName, OPERATOR_SCOPE, OWNER_SCOPE } from '@aoa/core';
import type { events, revoker } from '@aoa/proto';
import { decodeJwt } from 'jose';
import type * as oidc from 'openid-client';
import { type AoaServices, type OperatorCredential, ServiceRefusal } from '../domain/services.js';
import { csrfMatches, type Session, type SessionStore } from '../domain/sessions.js';
import { descendantsOf, layoutLineage } from '../domain/tree.js';
import { creepDays, grantRows, tokenRows } from '../domain/views.js';
import { FeedLimits, feedFilters, feedStream } from './feed.js';
import {
  confirmPage,
  creepPage,
  errorPage,
  feedPage,
  grantsPage,
  noRightsPage,
  overviewPage,
  type RevocationPreview,
  revocationsPage,
  revokedPage,
  signedInPage,
  signInPage,
  treePage,
} from './pages.js';
import { cookie, cookies, FormError, queryOf, readForm, redirect, sendPage, sendText } from './web.js';

export const SESSION_COOKIE = 'aoa_console';
const LOGIN_COOKIE = 'aoa_console_login';
/** An operator token with less than this left is replaced before a call. */
const OPERATOR_RENEW_MS = 60_000;
const BUSY = 'The console holds as many sessions as it may: try again later.';

/**
 * How long the IdP's access token lives, in seconds: `expires_in`, else its own `exp` − `iat` (a JWT),
 * else nothing (the person signs in again at the first page).
 */
function lifetimeSeconds(accessToken: string, expiresIn: number | undefined): number {
  if (expiresIn !== undefined) return expiresIn;
  try {
    const { exp, iat } = decodeJwt(accessToken);
    return exp !== undefined && iat !== undefined ? Math.max(0, exp - iat) : 0;
  } catch {
    return 0;
  }
}

/** Live feeds (each polls the auditor 4 times a second) a session, and the whole console, may hold. */
const MAX_FEEDS_PER_SESSION = 3;
const MAX_FEEDS = 100;
/** After policy refused a person an operator token, how long before the console asks again. */
const REFUSAL_RETRY_MS = 60_000;
const JTI = /^[A-Za-z0-9_-]{16,128}$/;
const GRANT_ID = /^[A-Za-z0-9_-]{8,64}$/;
const ID = /^[A-Za-z0-9_-]{1,128}$/;

export interface ConsoleDeps {
  services: AoaServices;
  /** The IdP as openid-client discovered it, with the console's client there. */
  oidc: { config: oidc.Configuration; client: typeof oidc; resource: string; scope: string };
  sessions: SessionStore;
  /** The console's own base URL (redirect URI, expected `Origin`), known once it listens. */
  publicUrl(): string;
  clock: Clock;
  log: Logger;
}

type Page = (
  req: IncomingMessage,
  res: ServerResponse,
  session: Session,
  operator: OperatorCredential,
) => Promise<void>;

/**
 * The console's routes. Every page needs a session and an operator token (policy decides who gets
 * one); every state-changing request is a POST carrying the session's CSRF token from the same origin.
 */
export function consoleRoutes(deps: ConsoleDeps): Record<string, HttpHandler> {
  const { services, sessions, clock, log } = deps;
  const feeds = new FeedLimits(MAX_FEEDS_PER_SESSION, MAX_FEEDS);
  const origin = () => new URL(deps.publicUrl()).origin;
  const secure = () => deps.publicUrl().startsWith('https:');
  const sessionOf = (req: IncomingMessage) => sessions.get(cookies(req).get(SESSION_COOKIE));
  const clearSession = () =>
    cookie(SESSION_COOKIE, '', { path: '/', maxAgeSeconds: 0, sameSite: 'Strict', secure: secure() });

  /**
   * The session's operator token, asked for again when it runs out; undefined when policy refuses
   * (asked again only after {@link REFUSAL_RETRY_MS}, so a refused person's clicks do not flood the
   * issuer and the audit) or when the IdP token has expired (the session ends).
   */
  async function operatorOf(session: Session): Promise<OperatorCredential | undefined> {
    const now = clock.nowMs();
    if (session.operator && session.operator.expiresAtMs - now > OPERATOR_RENEW_MS) return session.operator;
    session.operator = undefined;
    if (session.idpExpiresAtMs <= now) {
      sessions.destroy(session.id);
      return undefined;
    }
    if (session.refusal && now - session.refusal.atMs < REFUSAL_RETRY_MS) return undefined;
    // Concurrent requests of one session share one exchange (one Delegate, one audit event).
    session.exchanging ??= exchange(session, now).finally(() => {
      session.exchanging = undefined;
    });
    return session.exchanging;
  }

  /** Policy's answer is final for this person for now: no rights, or not signed in at the IdP. */
  const isRefusal = (error: unknown): error is ServiceRefusal =>
    error instanceof ServiceRefusal &&
    (error.code === 'PERMISSION_DENIED' || error.code === 'UNAUTHENTICATED');

  /**
   * An administrator's token if policy grants one, else an owner's. The scope last granted is asked
   * for first, so an owner's renewals leave no refusal in the audit; refused, the others are tried.
   */
  async function grantedToken(session: Session): Promise<OperatorCredential> {
    const order = [...new Set([session.scope ?? OPERATOR_SCOPE, OPERATOR_SCOPE, OWNER_SCOPE])];
    let refusal: unknown;
    for (const scope of order) {
      try {
        const credential = await services.operatorToken(session.idpAccessToken, scope);
        session.scope = scope;
        return credential;
      } catch (error) {
        if (!isRefusal(error)) throw error;
        refusal = error;
      }
    }
    throw refusal;
  }

  async function exchange(session: Session, now: number): Promise<OperatorCredential | undefined> {
    try {
      session.operator = await grantedToken(session);
      session.refusal = undefined;
    } catch (error) {
      if (!isRefusal(error)) throw error;
      session.scope = undefined;
      session.refusal = { reason: error.reason || error.code, atMs: now };
      log.info(
        { sub: session.person.sub, code: error.code, reason: error.reason, details: error.details },
        'no operator token for this person',
      );
    }
    return session.operator;
  }

  const idpName = () => deps.oidc.config.serverMetadata().issuer;

  /** The session, while it is still the live one for its id (not signed out, expired or replaced). */
  const live = (session: Session) => sessions.get(session.id) === session;

  const page =
    (handler: Page): HttpHandler =>
    async (req, res) => {
      const session = sessionOf(req);
      if (!session) return void redirect(res, '/', { 'set-cookie': clearSession() });
      try {
        const operator = await operatorOf(session);
        if (!live(session)) return void redirect(res, '/', { 'set-cookie': clearSession() });
        if (!operator) return void sendPage(res, 403, noRightsPage(session));
        await handler(req, res, session, operator);
      } catch (error) {
        failed(res, session, error);
      }
    };

  /** A POST: a live session, the session's CSRF token, and (when the browser says) the same origin. */
  const action =
    (
      handler: (
        req: IncomingMessage,
        res: ServerResponse,
        session: Session,
        operator: OperatorCredential,
        form: URLSearchParams,
      ) => Promise<void>,
    ): HttpHandler =>
    async (req, res) => {
      const session = sessionOf(req);
      if (!session)
        return void sendPage(
          res,
          401,
          errorPage(undefined, 'Signed out', 'Your session has ended: sign in again.'),
        );
      let form: URLSearchParams;
      try {
        form = await readForm(req);
      } catch (error) {
        if (error instanceof FormError)
          return void sendPage(res, 400, errorPage(session, 'Bad request', error.message));
        throw error;
      }
      const sentFrom = req.headers.origin;
      const site = req.headers['sec-fetch-site'];
      if (
        !csrfMatches(session, form.get('csrf')) ||
        (sentFrom !== undefined && sentFrom !== origin()) ||
        (site !== undefined && site !== 'same-origin')
      ) {
        log.warn(
          { sub: session.person.sub, origin: sentFrom, site },
          "refused a request without this session's CSRF token",
        );
        return void sendPage(
          res,
          403,
          errorPage(session, 'Refused', 'This request did not come from a console page (CSRF check failed).'),
        );
      }
      try {
        const operator = await operatorOf(session);
        if (!operator) return void sendPage(res, 403, noRightsPage(session));
        await handler(req, res, session, operator, form);
      } catch (error) {
        failed(res, session, error);
      }
    };

  /**
   * A service's refusal as a page. A revoked operator token ends the session (sign in again, and
   * policy decides afresh); an outage says so without the services' internals, which are logged.
   */
  function failed(res: ServerResponse, session: Session, error: unknown): void {
    if (!(error instanceof ServiceRefusal)) throw error;
    if (error.reason === 'TOKEN_REVOKED') {
      sessions.destroy(session.id);
      log.warn({ sub: session.person.sub }, 'operator token revoked: session ended');
      return void sendPage(
        res,
        401,
        signInPage(idpName(), 'Your operator token was revoked: sign in again.'),
        { 'set-cookie': clearSession() },
      );
    }
    const client = error.code === 'INVALID_ARGUMENT' || error.code === 'NOT_FOUND';
    if (error.code === 'PERMISSION_DENIED' || client) {
      return void sendPage(
        res,
        client ? 400 : 403,
        errorPage(session, 'The service refused', error.details, error.code),
      );
    }
    log.warn({ code: error.code, details: error.details }, 'a service call failed');
    sendPage(res, 502, errorPage(session, 'A service is unavailable', 'Try again in a moment.', error.code));
  }

  const revokedJtis = async (operator: OperatorCredential) =>
    new Set(
      (await services.listRevocations(operator))
        .filter((r) => r.kind === 'jti')
        .map((r) => r.key.slice('jti.'.length)),
    );

  async function preview(operator: OperatorCredential, form: URLSearchParams): Promise<RevocationPreview> {
    const kind = form.get('kind') ?? '';
    const value = (form.get('value') ?? '').trim();
    const environment = (form.get('environment') ?? '').trim();
    const bad = (message: string): never => {
      throw new ServiceRefusal('INVALID_ARGUMENT', message, '');
    };
    switch (kind) {
      case 'jti': {
        if (!JTI.test(value)) bad('a jti is 16-128 base64url characters');
        const lineage = await services.lineage(operator, value).catch((error: unknown) => {
          if (error instanceof ServiceRefusal && error.code === 'NOT_FOUND') return undefined;
          throw error;
        });
        const self = lineage?.node;
        return {
          kind,
          value,
          environment: '',
          description: self
            ? `Token ${value} (${self.child} in ${self.env}, ${self.sub}).`
            : `Token ${value} (not in the audit: its descendants cannot be counted).`,
          descendants: self && descendantsOf(self),
        };
      }
      case 'grant':
        if (!ID.test(value)) bad('a grant id is 1-128 base64url characters');
        return {
          kind,
          value,
          environment: '',
          description: `Grant ${value}: every credential minted for it, now and later.`,
          descendants: undefined,
        };
      case 'app':
        if (!isName(value) || !isName(environment)) bad('an app and an environment are lowercase names');
        return {
          kind,
          value,
          environment,
          description: `Every token of app ${value} in ${environment} issued until now.`,
          descendants: undefined,
        };
      case 'subject':
        if (value.length === 0 || value.length > 512) bad('a subject is 1-512 characters');
        return {
          kind,
          value,
          environment: '',
          description: `Every token of subject ${value} issued until now, and its grants.`,
          descendants: undefined,
        };
      case 'kid':
        if (!ID.test(value)) bad('a kid is 1-128 base64url characters');
        return {
          kind,
          value,
          environment: '',
          description: `Every token signed with key ${value}.`,
          descendants: undefined,
        };
      default:
        return bad('choose what to revoke');
    }
  }

  const revokeRequest = (p: RevocationPreview, reason: string): revoker.RevokeRequest => {
    switch (p.kind) {
      case 'jti':
        return { jti: p.value, reason };
      case 'grant':
        return { grantId: p.value, reason };
      case 'app':
        return { app: { environment: p.environment, child: p.value }, reason };
      case 'subject':
        return { subject: p.value, reason };
      default:
        return { kid: p.value, reason };
    }
  };

  /** The audit chain's status for an administrator; an owner is not asked about the whole log. */
  const chainOf = (operator: OperatorCredential) =>
    operator.rights.admin ? services.verifyChain(operator) : Promise.resolve(undefined);

  /** The newest `keep` events of the last `sinceMs` (of `types`, when given). */
  const recent = (operator: OperatorCredential, sinceMs: number, keep: number, types: string[] = []) =>
    services.latest(operator, { since: new Date(clock.nowMs() - sinceMs), types }, keep);

  return {
    'GET /': async (req, res) => {
      const session = sessionOf(req);
      if (!session) return void sendPage(res, 200, signInPage(idpName()));
      await page(async (_req, res, session, operator) => {
        const [chain, events] = await Promise.all([chainOf(operator), recent(operator, 3_600_000, 20)]);
        sendPage(res, 200, overviewPage(session, chain, [...events].reverse()));
      })(req, res);
    },

    'GET /login': async (_req, res) => {
      const { client, config, resource, scope } = deps.oidc;
      const verifier = client.randomPKCECodeVerifier();
      const login = sessions.beginLogin(verifier);
      if (!login) return void sendPage(res, 503, signInPage(idpName(), BUSY));
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: `${origin()}/callback`,
        scope,
        resource,
        state: login.state,
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      redirect(res, url.href, {
        'set-cookie': cookie(LOGIN_COOKIE, login.state, {
          path: '/callback',
          maxAgeSeconds: 600,
          sameSite: 'Lax',
          secure: secure(),
        }),
      });
    },

    'GET /callback': async (req, res) => {
      const { client, config, resource } = deps.oidc;
      const clearLogin = cookie(LOGIN_COOKIE, '', {
        path: '/callback',
        maxAgeSeconds: 0,
        sameSite: 'Lax',
        secure: secure(),
      });
      const state = cookies(req).get(LOGIN_COOKIE) ?? '';
      const login = state && queryOf(req).get('state') === state ? sessions.takeLogin(state) : undefined;
      if (!login) {
        return void sendPage(
          res,
          400,
          signInPage(idpName(), 'That sign-in was not started here, or took too long: try again.'),
          { 'set-cookie': clearLogin },
        );
      }
      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(
          config,
          new URL(req.url ?? '/', origin()),
          { pkceCodeVerifier: login.codeVerifier, expectedState: login.state },
          { resource },
        );
      } catch (error) {
        log.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'sign-in failed at the IdP',
        );
        return void sendPage(res, 401, signInPage(idpName(), 'The identity provider did not sign you in.'), {
          'set-cookie': clearLogin,
        });
      }
      const claims = tokens.claims();
      const sub = typeof claims?.sub === 'string' ? claims.sub : '';
      const name = typeof claims?.name === 'string' ? claims.name : sub;
      const session = sessions.create({
        person: { sub, name },
        idpAccessToken: tokens.access_token,
        idpExpiresAtMs: clock.nowMs() + lifetimeSeconds(tokens.access_token, tokens.expiresIn()) * 1000,
      });
      if (!session) return void sendPage(res, 503, signInPage(idpName(), BUSY), { 'set-cookie': clearLogin });
      log.info({ sub }, 'signed in');
      sendPage(res, 200, signedInPage(), {
        'set-cookie': [
          cookie(SESSION_COOKIE, session.id, {
            path: '/',
            maxAgeSeconds: (session.expiresAtMs - clock.nowMs()) / 1000,
            sameSite: 'Strict',
            secure: secure(),
          }),
          clearLogin,
        ],
      });
    },

    'POST /logout': async (req, res) => {
      const session = sessionOf(req);
      if (session) {
        const form = await readForm(req).catch(() => new URLSearchParams());
        if (!csrfMatches(session, form.get('csrf'))) {
          return void sendPage(
            res,
            403,
            errorPage(
              session,
              'Refused',
              'This request did not come from a console page (CSRF check failed).',
            ),
          );
        }
        sessions.destroy(session.id);
        log.info({ sub: session.person.sub }, 'signed out');
      }
      redirect(res, '/', { 'set-cookie': clearSession() });
    },

    'GET /tree': page(async (req, res, session, operator) => {
      const q = queryOf(req);
      const search = {
        jti: q.get('jti') ?? '',
        grant: q.get('grant') ?? '',
        subject: q.get('subject') ?? '',
        app: q.get('app') ?? '',
        env: q.get('env') ?? '',
      };
      if (search.jti) {
        if (!JTI.test(search.jti))
          return void sendPage(
            res,
            400,
            treePage(session, search, undefined, [], 'A jti is 16-128 base64url characters.'),
          );
        const [lineage, revoked] = await Promise.all([
          services.lineage(operator, search.jti),
          revokedJtis(operator),
        ]);
        return void sendPage(res, 200, treePage(session, search, layoutLineage(lineage, revoked), []));
      }
      if (search.grant && !GRANT_ID.test(search.grant))
        return void sendPage(
          res,
          400,
          treePage(session, search, undefined, [], 'A grant id is 8-64 base64url characters.'),
        );
      if (!search.grant && !search.subject && !search.app && !search.env)
        return void sendPage(res, 200, treePage(session, search, undefined, []));
      // A grant's tokens are in its grant.minted events (subject: the grant id), one per agent.
      const found: events.AuditEvent[] = await services.latest(
        operator,
        search.grant
          ? { types: ['grant.minted'], subject: search.grant, app: search.app, env: search.env }
          : { types: ['delegation.issued'], app: search.app, env: search.env },
        search.subject ? 50_000 : 100,
      );
      const matches = tokenRows(found.filter((e) => !search.subject || e.data?.sub === search.subject)).slice(
        0,
        100,
      );
      sendPage(
        res,
        200,
        treePage(session, search, undefined, matches, matches.length === 0 ? 'No token matches.' : ''),
      );
    }),

    'GET /events': page(async (req, res, session, operator) => {
      sendPage(res, 200, feedPage(session, await chainOf(operator), queryOf(req)));
    }),

    'GET /events/stream': async (req, res) => {
      const session = sessionOf(req);
      const operator = session && (await operatorOf(session).catch(() => undefined));
      if (!session || !operator) return void sendText(res, 401, 'sign in first');
      const filters = feedFilters(queryOf(req));
      if (typeof filters === 'string') return void sendText(res, 400, filters);
      if (!feeds.open(session.id)) return void sendText(res, 429, 'too many live feeds open');
      try {
        await feedStream(req, res, {
          services,
          clock,
          log,
          filters,
          // Each poll asks again: a session signed out, expired or replaced ends its feeds.
          operator: () => (live(session) ? operatorOf(session) : Promise.resolve(undefined)),
        });
      } finally {
        feeds.close(session.id);
      }
    },

    'GET /grants': page(async (_req, res, session, operator) => {
      const [grants, audit] = await Promise.all([
        services.listGrants(operator),
        recent(operator, 86_400_000, 50_000, ['grant.minted', 'credential.delivered']),
      ]);
      sendPage(res, 200, grantsPage(session, grantRows(grants, audit, clock.nowMs())));
    }),

    'POST /grants/rotate': action(async (_req, res, session, operator, form) => {
      const grant = form.get('grant') ?? '';
      if (!ID.test(grant))
        return void sendPage(
          res,
          400,
          errorPage(session, 'Bad request', 'a grant id is 1-128 base64url characters'),
        );
      await services.rotateNow(operator, grant);
      log.info({ sub: session.person.sub, grant }, 'rotate now');
      redirect(res, '/grants');
    }),

    'GET /revocations': page(async (_req, res, session, operator) => {
      sendPage(res, 200, revocationsPage(session, await services.listRevocations(operator)));
    }),

    'POST /revoke/confirm': action(async (_req, res, session, operator, form) => {
      sendPage(res, 200, confirmPage(session, await preview(operator, form)));
    }),

    'POST /revoke': action(async (_req, res, session, operator, form) => {
      const target = await preview(operator, form);
      const reason = (form.get('reason') ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 200);
      const response = await services.revoke(
        operator,
        revokeRequest(target, reason || 'revoked from the console'),
      );
      log.info({ sub: session.person.sub, key: response.key }, 'revoked from the console');
      sendPage(res, 200, revokedPage(session, target, response));
    }),

    'GET /creep': page(async (_req, res, session, operator) => {
      if (!operator.rights.admin) {
        const why = 'Privilege creep is measured across every app, so only administrators see it.';
        return void sendPage(res, 403, errorPage(session, 'Administrators only', why));
      }
      const [usage, alerts] = await Promise.all([
        services.unusedScopes(operator),
        recent(operator, 14 * 86_400_000, 50_000, ['alert.privilege_creep']),
      ]);
      sendPage(
        res,
        200,
        creepPage(session, usage, alerts.slice(-200).reverse(), creepDays(alerts, clock.nowMs())),
      );
    }),
  };
}
