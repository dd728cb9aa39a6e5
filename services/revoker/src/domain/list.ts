import { AppError, assertName, type RevocationRecord, revocationKeys } from '@aoa/core';
import { type Caller, mayList } from './authority.js';
import { JTI_PATTERN } from './target.js';

export interface RawListRequest {
  kind?: string;
  environment?: string;
  app?: string;
  jti?: string;
  pageSize?: number;
  pageToken?: string;
}

export interface ListedRevocation {
  key: string;
  record: RevocationRecord;
}

const KINDS = new Set(['jti', 'app', 'sub', 'kid', 'grant']);
const MAX_PAGE = 1000;

/**
 * Pages through the revocations in force (keys in order; the page token is the last key returned).
 * Administrators see all; other callers what they revoked themselves, or one token's entry by `jti`.
 *
 * @example
 * const page = listRevocations(caller, mirror.list(), { kind: 'app', environment: 'prod' });
 */
export function listRevocations(
  caller: Caller,
  all: ListedRevocation[],
  raw: RawListRequest,
): { items: ListedRevocation[]; nextPageToken: string } {
  const pageSize = raw.pageSize || 100;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE) {
    throw new AppError('invalid_argument', `page_size: between 1 and ${MAX_PAGE}`);
  }
  if (raw.kind && !KINDS.has(raw.kind)) {
    throw new AppError('invalid_argument', 'kind: one of jti, app, sub, kid, grant');
  }
  if (raw.jti && !JTI_PATTERN.test(raw.jti)) throw new AppError('invalid_argument', 'jti: malformed');
  if (raw.pageToken && (raw.pageToken.length > 300 || !/^[A-Za-z0-9_.-]+$/.test(raw.pageToken))) {
    throw new AppError('invalid_argument', 'page_token: malformed');
  }
  const env = raw.environment ? assertName('environment', raw.environment) : undefined;
  const app = raw.app ? assertName('app', raw.app) : undefined;
  const exact = raw.jti ? revocationKeys.jti(raw.jti) : undefined;
  const matches = all.filter(({ key, record }) => {
    if (exact !== undefined && key !== exact) return false;
    if (raw.kind && !key.startsWith(`${raw.kind}.`)) return false;
    // environment and app narrow to app watermarks
    if (env && !key.startsWith(`app.${env}.`)) return false;
    if (app && !(key.startsWith('app.') && key.endsWith(`.${app}`))) return false;
    if (raw.pageToken && key <= raw.pageToken) return false;
    return mayList(caller, record.by, exact !== undefined);
  });
  const items = matches.slice(0, pageSize);
  const last = items.at(-1);
  return { items, nextPageToken: matches.length > pageSize && last ? last.key : '' };
}
