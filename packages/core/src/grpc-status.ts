import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { AppError, type ErrorCode, toAppError } from './errors.js';
import type { Logger } from './logger.js';

/** The one table from aoa error codes to gRPC status codes; a new code without a row fails to compile. */
export const GRPC_STATUS: Record<ErrorCode, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  unauthenticated: status.UNAUTHENTICATED,
  permission_denied: status.PERMISSION_DENIED,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  failed_precondition: status.FAILED_PRECONDITION,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

/**
 * Logs a failure once and turns it into the gRPC error a caller sees: public message only, the
 * refusing rule in `aoa-rule` trailer metadata, never a stack or token material.
 */
export function toGrpcError(error: unknown, log: Logger): Partial<ServiceError> {
  const appError = toAppError(error);
  const metadata = new Metadata();
  metadata.set('aoa-error-code', appError.code);
  if (appError.rule) metadata.set('aoa-rule', appError.rule);
  if (appError.code === 'internal') {
    log.error({ err: appError.cause ?? appError }, 'internal error');
  } else {
    log.info(
      { code: appError.code, reason: appError.message, rule: appError.rule, ...appError.detail },
      'request refused',
    );
  }
  return { code: GRPC_STATUS[appError.code], details: appError.message, metadata };
}

/**
 * Reads one text value of a gRPC metadata key: undefined when absent, `invalid_argument` when sent
 * twice or as binary.
 *
 * @example
 * const assertion = singleMetadata(call.metadata, 'client-assertion');
 */
export function singleMetadata(metadata: Metadata, key: string): string | undefined {
  const values = metadata.get(key);
  if (values.length > 1) throw new AppError('invalid_argument', `${key}: send one value`);
  const value = values[0];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new AppError('invalid_argument', `${key}: must be ASCII text`);
  return value;
}
