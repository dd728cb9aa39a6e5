import { auditor as pb } from '@aoa/proto';

/** The filter flags of `aoa audit query`, `tail` and `creep`, as parsed. */
export interface AuditFilterFlags {
  since?: string | undefined;
  until?: string | undefined;
  type?: string[] | undefined;
  app?: string | undefined;
  env?: string | undefined;
  subject?: string | undefined;
  jti?: string | undefined;
  outcome?: string | undefined;
  limit?: string | undefined;
}

export const MAX_LIMIT = 10_000;
const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const DURATION = /^(\d{1,9})([smhd])$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/;
const TYPE = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const JTI = /^[A-Za-z0-9_-]{1,128}$/;

/** A usage mistake: the message names the flag and what it expects. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * `--since`/`--until`: a duration back from now (`90s`, `15m`, `1h`, `7d`) or an ISO 8601 time.
 *
 * @throws UsageError naming the flag
 */
export function parseTimeFlag(flag: string, value: string, nowMs: number): Date {
  const duration = DURATION.exec(value);
  if (duration)
    return new Date(nowMs - Number(duration[1]) * (UNITS[duration[2] as string] as number) * 1000);
  const time = ISO_TIME.test(value) ? new Date(value) : undefined;
  if (!time || Number.isNaN(time.getTime())) {
    throw new UsageError(
      `--${flag}: expected a duration back from now (90s, 15m, 1h, 7d) or an ISO 8601 time (2026-01-31T12:00:00Z), got ${JSON.stringify(value.slice(0, 64))}`,
    );
  }
  return time;
}

function checked(flag: string, value: string | undefined, pattern: RegExp, expects: string): string {
  if (value === undefined) return '';
  if (!pattern.test(value))
    throw new UsageError(`--${flag}: ${expects}, got ${JSON.stringify(value.slice(0, 64))}`);
  return value;
}

/**
 * Turns the filter flags into a `QueryRequest`, checking each the way the auditor will, so a mistake is
 * reported precisely before any call.
 *
 * @throws UsageError naming the flag and what it expects
 * @example
 * queryRequestOf({ since: '1h', type: ['delegation.issued'], app: 'jobs' }, Date.now());
 */
export function queryRequestOf(flags: AuditFilterFlags, nowMs: number): pb.QueryRequest {
  const since = flags.since === undefined ? undefined : parseTimeFlag('since', flags.since, nowMs);
  const until = flags.until === undefined ? undefined : parseTimeFlag('until', flags.until, nowMs);
  if (since && until && since >= until) throw new UsageError('--since must be before --until');
  const types = flags.type ?? [];
  for (const t of types)
    checked('type', t, TYPE, 'expected an event type of dotted lowercase words (delegation.issued)');
  let limit = 0;
  if (flags.limit !== undefined) {
    limit = /^\d{1,6}$/.test(flags.limit) ? Number(flags.limit) : Number.NaN;
    if (!(limit >= 1 && limit <= MAX_LIMIT)) {
      throw new UsageError(
        `--limit: expected a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(flags.limit.slice(0, 64))}`,
      );
    }
  }
  if (flags.subject !== undefined && (flags.subject === '' || flags.subject.length > 1024)) {
    throw new UsageError('--subject: expected 1 to 1024 characters');
  }
  return pb.QueryRequest.fromPartial({
    since,
    until,
    types,
    app: checked('app', flags.app, NAME, 'expected an app id (lowercase letters, digits, -)'),
    env: checked('env', flags.env, NAME, 'expected an environment name (lowercase letters, digits, -)'),
    subject: flags.subject ?? '',
    jti: checked('jti', flags.jti, JTI, 'expected a jti (base64url)'),
    outcome: checked(
      'outcome',
      flags.outcome,
      /^[a-z_]{1,64}$/,
      'expected a lowercase word (issued, denied)',
    ),
    limit,
  });
}

/** A lineage argument: one jti. */
export function jtiOf(value: string | undefined): string {
  if (value === undefined) throw new UsageError('give the jti of the token: aoa audit lineage JTI');
  if (!JTI.test(value))
    throw new UsageError(`JTI: expected a base64url jti, got ${JSON.stringify(value.slice(0, 64))}`);
  return value;
}
