import { randomBytes, randomInt } from 'node:crypto';
import type { KidStyle, VendorSigningKey } from './vendor-idp-keys.js';

/** The vendors, and for Entra ID the access-token version, whose token shape a vendor IdP copies. */
export type VendorShape =
  | 'okta'
  | 'entra-v1'
  | 'entra-v2'
  | 'github-actions'
  | 'gitlab'
  | 'kubernetes'
  | 'terraform-cloud';

export type Claims = Record<string, unknown>;

/** What a profile knows when it writes a token's claims. */
export interface MintInput {
  /** The issuer of the provider that mints (for Entra ID, the tenant's). */
  readonly issuer: string;
  readonly audience: string;
  /** Set by oidc-provider; `exp` is `iat` plus the profile's `ttlSeconds`. */
  readonly iat: number;
  readonly exp: number;
  /** Entra ID only. */
  readonly tenantId?: string;
}

/** Where the front server sends a request: to a provider (rewritten) or to a fixed JSON document. */
export type Route =
  | {
      readonly kind: 'provider';
      /** Which provider: the tenant id for Entra ID, `''` for single-issuer shapes. */
      readonly tenantId: string;
      /** The path the provider routes on. */
      readonly url: string;
      /** What oidc-provider derives its mount path from (`originalUrl` minus `url`), as Express sets it. */
      readonly originalUrl: string;
    }
  | { readonly kind: 'json'; readonly contentType: string; readonly body: unknown };

/** Everything that makes a token look like one vendor's. */
export interface ShapeProfile {
  readonly kidStyle: KidStyle;
  readonly ttlSeconds: number;
  /** oidc-provider routes, relative to where the provider is mounted. */
  readonly routes: { readonly token: string; readonly jwks: string };
  /** Header members besides `alg` and `kid`; `typ: undefined` drops oidc-provider's `at+jwt`. */
  header(key: VendorSigningKey): Claims;
  /** The vendor's default claims for one token, in the order the vendor's documentation lists them. */
  claims(input: MintInput): Claims;
  /**
   * Claims that the vendor computes from others (`sub` mostly). Recomputed from the merged claims, so an
   * override of `repository` moves `sub` with it, unless the caller set the derived claim too.
   */
  derive?(claims: Readonly<Claims>): Claims;
}

/**
 * `base` with the caller's overrides on top (a shallow merge; nested objects are replaced whole), the
 * derived claims recomputed from the result unless overridden themselves, and every claim whose value is
 * `undefined` removed.
 */
export function mergeClaims(
  base: Claims,
  overrides: Claims = {},
  derive?: (claims: Readonly<Claims>) => Claims,
): Claims {
  const merged: Claims = { ...base, ...overrides };
  for (const [name, value] of Object.entries(derive?.(merged) ?? {})) {
    if (!Object.hasOwn(overrides, name) && Object.hasOwn(merged, name)) merged[name] = value;
  }
  for (const [name, value] of Object.entries(merged)) {
    if (value === undefined) delete merged[name];
  }
  return merged;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Bitcoin's base58: the alphabet of HCP Terraform's `org-`, `ws-` and `run-` ids. */
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

export function randomFrom(alphabet: string, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[randomInt(alphabet.length)];
  return text;
}

export const randomAlphanumeric = (length: number): string => randomFrom(ALPHANUMERIC, length);
export const randomBase58 = (length: number): string => randomFrom(BASE58, length);
export const randomBase64url = (bytes: number): string => randomBytes(bytes).toString('base64url');
export const randomHex = (bytes: number): string => randomBytes(bytes).toString('hex');
/** A decimal id as a string, the way GitHub and GitLab put numeric ids in tokens. */
export const randomDecimal = (digits: number): string =>
  String(randomInt(1, 10)) + randomFrom('0123456789', digits - 1);

export function stringClaim(claims: Readonly<Claims>, name: string): string {
  const value = claims[name];
  return typeof value === 'string' ? value : '';
}
