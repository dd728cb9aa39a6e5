import { AppError, assertName } from '@aoa/core';
import type { RevokeTarget } from '@aoa/revocation';

export { type RevokeTarget, targetKey } from '@aoa/revocation';

/** The request as the adapter hands it over (generated proto shape, all fields optional). */
export interface RawRevokeRequest {
  jti?: string | undefined;
  grantId?: string | undefined;
  app?: { environment?: string; child?: string } | undefined;
  subject?: string | undefined;
  kid?: string | undefined;
  reason?: string | undefined;
}

/** jtis are base64url random, at least 128 bits (contract section 3). */
export const JTI_PATTERN = /^[A-Za-z0-9_-]{22,128}$/;
/** Key and grant ids: KV-key-safe tokens without dots, so they never split a key. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_REASON = 512;
const MAX_SUBJECT = 512;

const hasControl = (text: string): boolean =>
  [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/**
 * Validates a Revoke request: exactly one target, well-formed ids, names matching the app/env pattern,
 * a printable reason of bounded length. Anything else is `invalid_argument` naming the field.
 *
 * @example
 * const { target, reason } = validateRevokeRequest({ jti: 'k3l...', reason: 'leaked in a log' });
 */
export function validateRevokeRequest(raw: RawRevokeRequest): { target: RevokeTarget; reason: string } {
  const given = [raw.jti, raw.grantId, raw.app, raw.subject, raw.kid].filter(
    (v) => v !== undefined && v !== '',
  );
  if (given.length !== 1) {
    throw new AppError('invalid_argument', 'target: name exactly one of jti, grant_id, app, subject, kid');
  }
  const reason = raw.reason ?? '';
  if (reason.length > MAX_REASON || hasControl(reason)) {
    throw new AppError('invalid_argument', `reason: printable text of at most ${MAX_REASON} characters`);
  }
  return { target: parseTarget(raw), reason };
}

function parseTarget(raw: RawRevokeRequest): RevokeTarget {
  if (raw.jti) {
    if (!JTI_PATTERN.test(raw.jti)) throw new AppError('invalid_argument', 'jti: must be base64url, 22-128');
    return { kind: 'jti', jti: raw.jti };
  }
  if (raw.grantId) {
    if (!ID_PATTERN.test(raw.grantId)) {
      throw new AppError('invalid_argument', 'grant_id: letters, digits, - and _ only, at most 128');
    }
    return { kind: 'grant', grant: raw.grantId };
  }
  if (raw.kid) {
    if (!ID_PATTERN.test(raw.kid)) {
      throw new AppError('invalid_argument', 'kid: letters, digits, - and _ only, at most 128');
    }
    return { kind: 'kid', kid: raw.kid };
  }
  if (raw.subject) {
    if (raw.subject.length > MAX_SUBJECT || hasControl(raw.subject)) {
      throw new AppError('invalid_argument', `subject: printable text of at most ${MAX_SUBJECT} characters`);
    }
    return { kind: 'sub', subject: raw.subject };
  }
  const app = raw.app ?? {};
  return {
    kind: 'app',
    environment: assertName('app.environment', app.environment),
    app: assertName('app.child', app.child),
  };
}
