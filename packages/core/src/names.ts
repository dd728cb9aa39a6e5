import { AppError } from './errors.js';

/**
 * App ids, agent ids and environment names: lowercase DNS-label shape. Nothing else can reach a NATS
 * subject, so no input can inject `.`, `*` or `>`.
 */
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const isName = (value: unknown): value is string =>
  typeof value === 'string' && NAME_PATTERN.test(value);

/**
 * Validates an app, agent or environment name and returns it.
 *
 * @example
 * const env = assertName('environment', request.environment);
 */
export function assertName(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new AppError('invalid_argument', `${field}: required`);
  }
  if (!NAME_PATTERN.test(value)) {
    throw new AppError(
      'invalid_argument',
      `${field}: must match ${NAME_PATTERN.source} (lowercase letters, digits and inner dashes, at most 63)`,
    );
  }
  return value;
}
