import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IdpProfile } from '@aoa/policy';
import { startVendorIdp, type VendorIdp } from '@aoa/testkit';
import {
  DEV_ENTRA_TENANT,
  DEV_TOKEN_PROFILES,
  DEV_VENDORS,
  type DevTokenProfile,
  type DevVendorIssuers,
} from './dev-vendor-policy.js';

/** One vendor-shaped IdP of `aoa dev`, as dev.json records it (keyed by its policy namespace). */
export interface DevVendorFacts {
  profile: IdpProfile;
  /** The issuer of its tokens (entra: of tenant {@link DEV_ENTRA_TENANT}). */
  issuer: string;
  /** The `aud` its tokens carry unless asked otherwise: the audience the dev policy expects. */
  audience: string;
  /** `POST` here (JSON `{audience?, claims?}`, `authorization: Bearer <vendorTokenSecret>`) for a token. */
  tokenUrl: string;
}

/** The running vendor IdPs and the loopback endpoint that mints their tokens for `aoa dev token`. */
export interface DevVendors {
  /** What the dev policy trusts, per profile (entra: the `{tenantid}` template). */
  policyIssuers: DevVendorIssuers;
  facts: Record<string, DevVendorFacts>;
  secret: string;
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

/**
 * Starts one vendor-shaped IdP per {@link DEV_TOKEN_PROFILES} entry on loopback, and an HTTP endpoint
 * that mints a token of each (`/vendor-idps/<namespace>/token`), guarded by a secret kept in dev.json.
 *
 * @example
 * const vendors = await startDevVendors('https://aoa.dev');
 * vendors.facts.github?.tokenUrl; // 'http://127.0.0.1:40123/vendor-idps/github/token'
 */
export async function startDevVendors(audience: string): Promise<DevVendors> {
  const running = new Map<string, { profile: DevTokenProfile; idp: VendorIdp }>();
  const stopAll = async () => {
    for (const { idp } of running.values()) await idp.stop();
  };
  try {
    for (const profile of DEV_TOKEN_PROFILES) {
      const vendor = DEV_VENDORS[profile];
      const idp = await startVendorIdp({
        shape: vendor.shape,
        ...(profile === 'entra' ? { tenants: [DEV_ENTRA_TENANT] } : {}),
      });
      running.set(vendor.namespace, { profile, idp });
    }
    const secret = randomBytes(24).toString('base64url');
    const server = createServer(mintHandler(running, secret, audience));
    const origin = `http://127.0.0.1:${await listen(server)}`;
    const facts: Record<string, DevVendorFacts> = {};
    const policyIssuers = {} as DevVendorIssuers;
    for (const [namespace, { profile, idp }] of running) {
      facts[namespace] = {
        profile,
        issuer: idp.issuer,
        audience,
        tokenUrl: `${origin}/vendor-idps/${namespace}/token`,
      };
      policyIssuers[profile] = idp.templateIssuer ?? idp.issuer;
    }
    const stop = async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await stopAll();
    };
    return { policyIssuers, facts, secret, stop };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** `POST /vendor-idps/<namespace>/token`: the vendor's token with the dev defaults and the caller's claims. */
function mintHandler(
  running: ReadonlyMap<string, { profile: DevTokenProfile; idp: VendorIdp }>,
  secret: string,
  defaultAudience: string,
): (request: IncomingMessage, response: ServerResponse) => void {
  const expected = Buffer.from(`Bearer ${secret}`);
  return (request, response) => {
    void (async () => {
      const namespace = /^\/vendor-idps\/([a-z0-9-]+)\/token$/.exec(request.url ?? '')?.[1];
      const vendor = namespace === undefined ? undefined : running.get(namespace);
      if (!vendor) return answer(response, 404, { error: 'not_found', error_description: 'no such IdP' });
      if (request.method !== 'POST') return answer(response, 405, { error: 'method_not_allowed' });
      const presented = Buffer.from(request.headers.authorization ?? '');
      if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
        return answer(response, 401, { error: 'unauthorized', error_description: 'vendorTokenSecret' });
      }
      const body = await readJson(request);
      if (typeof body === 'string')
        return answer(response, 400, { error: 'invalid_request', error_description: body });
      const token = await vendor.idp.token({
        audience: body.audience ?? defaultAudience,
        claims: { ...DEV_VENDORS[vendor.profile].claims, ...body.claims },
      });
      answer(response, 200, { token });
    })().catch(() => answer(response, 500, { error: 'server_error' }));
  };
}

/** The request body `{audience?, claims?}`, or a problem with it. */
async function readJson(
  request: IncomingMessage,
): Promise<{ audience?: string; claims?: Record<string, unknown> } | string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return `body: at most ${MAX_BODY_BYTES} bytes`;
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    return 'body: not JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body: must be an object';
  const { audience, claims } = body as { audience?: unknown; claims?: unknown };
  if (audience !== undefined && (typeof audience !== 'string' || audience === ''))
    return 'audience: must be a non-empty string';
  if (claims !== undefined && (typeof claims !== 'object' || claims === null || Array.isArray(claims)))
    return 'claims: must be an object';
  return {
    ...(audience === undefined ? {} : { audience }),
    ...(claims === undefined ? {} : { claims: claims as Record<string, unknown> }),
  };
}

function answer(response: ServerResponse, status: number, body: Record<string, string>): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}
