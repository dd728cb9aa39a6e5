import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths removed from every log line, a safety net behind the rule that code logs a jti, a kid or a
 * fingerprint and never a token, a key or an authorization header.
 */
export const REDACT_PATHS = [
  'token',
  'access_token',
  'subject_token',
  'actor_token',
  'assertion',
  'client_assertion',
  'proof',
  'dpop',
  'authorization',
  'privateKey',
  'private_key',
  'jwk.d',
  'd',
  'req.headers.authorization',
  'req.headers.dpop',
  'metadata["client-assertion"]',
  'metadata.dpop',
  '*.token',
  '*.access_token',
  '*.subject_token',
  '*.assertion',
  '*.client_assertion',
  '*.authorization',
  '*.dpop',
  '*.d',
];

export interface LoggerOptions {
  level?: string;
  service: string;
  destination?: DestinationStream;
}

/**
 * The root logger of a service; components take `logger.child({ component })`.
 *
 * @example
 * const log = createLogger({ service: 'issuer', level: 'info' }).child({ component: 'grpc' });
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination,
  );
}
