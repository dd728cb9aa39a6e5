import { rpc } from '@aoa/proto';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { AppError, type ErrorCode, toAppError } from './errors.js';
import type { Logger } from './logger.js';
import { ERROR_INFO_DOMAIN } from './refusals.js';

const ERROR_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.ErrorInfo';

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
 * Logs a failure once and turns it into the gRPC error a caller sees: public message only, never a
 * stack or token material. The trailers carry a `google.rpc.Status` in `grpc-status-details-bin` whose
 * one `google.rpc.ErrorInfo` gives the stable reason (`REFUSAL_REASONS`, or the upper-cased code) in
 * domain `aoa`, with the refusing `rule` or broken `constraint` as metadata; the same rule also as
 * `aoa-rule`, and the code as `aoa-error-code`.
 */
export function toGrpcError(error: unknown, log: Logger): Partial<ServiceError> {
  const appError = toAppError(error);
  const metadata = new Metadata();
  metadata.set('aoa-error-code', appError.code);
  if (appError.rule) metadata.set('aoa-rule', appError.rule);
  const code = GRPC_STATUS[appError.code];
  metadata.set('grpc-status-details-bin', statusDetails(appError, code));
  if (appError.code === 'internal') {
    log.error({ err: appError.cause ?? appError }, 'internal error');
  } else {
    log.info(
      {
        code: appError.code,
        reason: appError.message,
        errorReason: appError.reason,
        rule: appError.rule,
        constraint: appError.constraint,
        ...appError.detail,
      },
      'request refused',
    );
  }
  return { code, details: appError.message, metadata };
}

/** The reason and context of a refusal as gRPC's richer error model carries it. */
export function errorInfoOf(error: AppError): rpc.ErrorInfo {
  const metadata: Record<string, string> = {};
  if (error.rule) metadata.rule = error.rule;
  if (error.constraint) metadata.constraint = error.constraint;
  return { reason: error.reason ?? error.code.toUpperCase(), domain: ERROR_INFO_DOMAIN, metadata };
}

function statusDetails(error: AppError, code: status): Buffer {
  const details = [
    { typeUrl: ERROR_INFO_TYPE_URL, value: Buffer.from(rpc.ErrorInfo.encode(errorInfoOf(error)).finish()) },
  ];
  return Buffer.from(rpc.Status.encode({ code, message: error.message, details }).finish());
}

/**
 * Reads the `google.rpc.ErrorInfo` of a failed call's trailers (what {@link toGrpcError} sends), or
 * undefined when there is none.
 *
 * @example
 * catch (error) { errorInfoFrom((error as ServiceError).metadata)?.reason; } // 'SCOPE_NOT_IN_PARENT'
 */
export function errorInfoFrom(metadata: Metadata | undefined): rpc.ErrorInfo | undefined {
  const raw = metadata?.get('grpc-status-details-bin')[0];
  if (!Buffer.isBuffer(raw)) return undefined;
  try {
    const detail = rpc.Status.decode(raw).details.find((any) => any.typeUrl === ERROR_INFO_TYPE_URL);
    return detail ? rpc.ErrorInfo.decode(detail.value) : undefined;
  } catch {
    return undefined;
  }
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
