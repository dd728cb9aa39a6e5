import { z } from 'zod';
import type { ActorClaim, AoaClaims } from './claims.js';
import { AppError } from './errors.js';
import { NAME_PATTERN } from './names.js';

const name = z.string().regex(NAME_PATTERN);
const jti = z.string().regex(/^[A-Za-z0-9_-]{22,128}$/);
const seconds = z.number().int().nonnegative();

const actor: z.ZodType<ActorClaim> = z.lazy(() =>
  z.object({ sub: z.string().min(1).max(200), act: actor.optional() }),
);

const lineageEntry = z.object({
  jti,
  app: name,
  env: name,
  iat_ms: seconds,
  kid: z.string().min(1).max(128),
  grant: z.string().min(1).max(128).optional(),
});

/** The shape every aoa access token's payload must have, checked after its signature. */
export const aoaClaimsSchema = z.object({
  iss: z.string().min(1),
  sub: z.string().min(1).max(512),
  aud: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .transform((a) => (Array.isArray(a) ? a : [a])),
  client_id: z.string().min(1).max(200),
  env: name,
  scope: z.string().max(4096),
  iat: seconds,
  nbf: seconds,
  exp: seconds,
  jti,
  act: actor,
  aoa_lineage: z.array(lineageEntry).max(32),
  aoa_iat_ms: seconds,
  aoa_max_depth: z.number().int().min(0).max(32),
  aoa_rule: z.string().min(1).max(200),
  aoa_grant: z.string().min(1).max(128).optional(),
  cnf: z.object({ jkt: z.string().regex(/^[A-Za-z0-9_-]{43}$/) }).optional(),
});

/** Validates a verified payload as aoa claims; anything else is `unauthenticated`. */
export function parseAoaClaims(payload: unknown): AoaClaims {
  const result = aoaClaimsSchema.safeParse(payload);
  if (!result.success) {
    const first = result.error.issues[0];
    const where = first ? first.path.map(String).join('.') : '';
    throw new AppError(
      'unauthenticated',
      `token claims do not match the aoa token shape (${where || 'payload'})`,
    );
  }
  return result.data as AoaClaims;
}
