import { AppError, randomId, sha256Hex } from '@aoa/core';

/** A stored join token: only the hash of the token is the key; the value says what it admits. */
export interface JoinTokenRecord {
  grant: string;
  /** Unix milliseconds. */
  expires_at_ms: number;
  /** Set by the one Enroll that consumed it (compare-and-set). */
  used_at_ms?: number;
  created_by: string;
}

const PREFIX = 'aoajt_';
const JOIN_TOKEN = /^aoajt_[A-Za-z0-9_-]{43}$/;
export const DEFAULT_JOIN_TTL_SECONDS = 600;
export const MAX_JOIN_TTL_SECONDS = 86400;

/** A fresh join token: 256 random bits, recognisable by its prefix (secret scanners can match it). */
export const newJoinToken = (): string => `${PREFIX}${randomId(32)}`;

/** The KV key part of a join token: hex SHA-256, so the bucket never holds a usable token. */
export function joinTokenHash(token: string): string {
  if (typeof token !== 'string' || !JOIN_TOKEN.test(token)) {
    throw new AppError('unauthenticated', 'join token: malformed');
  }
  return sha256Hex(token);
}

/** A join token's lifetime from a request: 0 is the default; at most a day. */
export function joinTokenTtl(requested: number): number {
  if (requested === 0) return DEFAULT_JOIN_TTL_SECONDS;
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_JOIN_TTL_SECONDS) {
    throw new AppError('invalid_argument', `ttl_seconds: must be between 1 and ${MAX_JOIN_TTL_SECONDS}`);
  }
  return requested;
}

/** Refuses a join token that was already used or has expired. */
export function checkJoinToken(record: JoinTokenRecord | undefined, nowMs: number): JoinTokenRecord {
  if (!record) throw new AppError('unauthenticated', 'join token: unknown');
  if (record.used_at_ms !== undefined) throw new AppError('unauthenticated', 'join token: already used');
  if (record.expires_at_ms <= nowMs) throw new AppError('unauthenticated', 'join token: expired');
  return record;
}
