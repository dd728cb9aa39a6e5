import type { z } from 'zod';

/** Thrown at startup when configuration is invalid; lists each problem as `KEY: problem`, never a value. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

/**
 * Parses environment variables (or any string map) against a zod object schema keyed by variable name.
 *
 * @example
 * const config = parseConfig(IssuerEnv, process.env);
 */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = issue.path.map(String).join('.') || '(root)';
    return `${key}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/** Parses `host:port` listen addresses; port 0 asks for a free one. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!match) throw new TypeError('expected host:port');
  const port = Number(match[2]);
  if (port > 65535) throw new TypeError('port out of range');
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/** Parses durations like `90s`, `15m`, `2h`, `30d` or plain seconds into seconds. */
export function parseDurationSeconds(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) throw new TypeError('must be a whole number of seconds');
    return value;
  }
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new TypeError('expected a duration like 90s, 15m, 2h or 30d');
  const n = Number(match[1]);
  switch (match[2]) {
    case 'ms':
      return n / 1000;
    case 'm':
      return n * 60;
    case 'h':
      return n * 3600;
    case 'd':
      return n * 86400;
    default:
      return n;
  }
}

/** The host of a listener as it goes in a URL: IPv6 bracketed, the wildcard as loopback. */
export const hostForUrl = (host: string): string =>
  host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;

/**
 * A service's gRPC base URL, the prefix of the `htu` its DPoP proofs name: the configured one (its
 * `AOA_<SERVICE>_GRPC_URL`) without a trailing slash, else the listener's own address.
 *
 * @example
 * const grpcUrl = grpcBaseUrl(config.grpcUrl, config.grpcListen.host, grpcPort, Boolean(config.tls));
 */
export const grpcBaseUrl = (
  configured: string | undefined,
  host: string,
  port: number,
  tls: boolean,
): string =>
  configured ? configured.replace(/\/$/, '') : `${tls ? 'https' : 'http'}://${hostForUrl(host)}:${port}`;
