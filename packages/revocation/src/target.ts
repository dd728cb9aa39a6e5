import { revocationKeys } from '@aoa/core';

/** What a revocation names (contract section 4), already validated. */
export type RevokeTarget =
  | { kind: 'jti'; jti: string }
  | { kind: 'grant'; grant: string }
  | { kind: 'app'; environment: string; app: string }
  | { kind: 'sub'; subject: string }
  | { kind: 'kid'; kid: string };

/**
 * The KV key of a target and whether it is absolute (`jti`, `grant`, `kid`) or a watermark.
 *
 * @example
 * const { key, absolute } = targetKey({ kind: 'jti', jti }); // { key: 'jti.<jti>', absolute: true }
 */
export function targetKey(target: RevokeTarget): { key: string; absolute: boolean } {
  switch (target.kind) {
    case 'jti':
      return { key: revocationKeys.jti(target.jti), absolute: true };
    case 'grant':
      return { key: revocationKeys.grant(target.grant), absolute: true };
    case 'kid':
      return { key: revocationKeys.kid(target.kid), absolute: true };
    case 'app':
      return { key: revocationKeys.app(target.environment, target.app), absolute: false };
    case 'sub':
      return { key: revocationKeys.sub(target.subject), absolute: false };
  }
}

/** The target in clear for the audit trail (the KV key hashes subjects). */
export function auditTarget(target: RevokeTarget): Record<string, string> {
  switch (target.kind) {
    case 'jti':
      return { jti: target.jti };
    case 'grant':
      return { grant_id: target.grant };
    case 'kid':
      return { kid: target.kid };
    case 'sub':
      return { subject: target.subject };
    case 'app':
      return {};
  }
}
