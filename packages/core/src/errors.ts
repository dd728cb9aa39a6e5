import type { RefusalReason } from './refusals.js';

/**
 * The one error type every aoa component throws for a caller-facing failure. `code` is stable and
 * can be switched on; `message` is public text, safe for callers and logs (never token material);
 * `detail` is internal context for logs only.
 *
 * @example
 * throw new AppError('permission_denied', 'no rule allows scope write:config for jobs in prod');
 */
export type ErrorCode =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'unavailable'
  | 'internal';

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  /** The policy rule that refused, for permission_denied. */
  readonly rule: string | undefined;
  /** The stable reason of a refusal (see `REFUSAL_REASONS`); absent, the code names it. */
  readonly reason: RefusalReason | undefined;
  /** The bound a refusal broke when no rule did, e.g. `parent.scope` or `limits.max_token_ttl`. */
  readonly constraint: string | undefined;
  /** Internal context for logs; never sent to a caller. */
  readonly detail: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      rule?: string | undefined;
      reason?: RefusalReason;
      constraint?: string | undefined;
      detail?: Record<string, unknown>;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.rule = options.rule;
    this.reason = options.reason;
    this.constraint = options.constraint;
    this.detail = options.detail;
  }
}

export const isAppError = (error: unknown): error is AppError => error instanceof AppError;

/** Turns anything thrown into an AppError; unknown failures become `internal` with generic text. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  return new AppError('internal', 'internal error', { cause: error });
}
