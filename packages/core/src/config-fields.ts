import { accessSync, constants } from 'node:fs';
import { z } from 'zod';
import type { NatsTlsFiles } from './bus/connect.js';
import { parseDurationSeconds, parseListen } from './config.js';
import { DEFAULT_TLS_RELOAD_MS, type TlsFiles } from './tls-files.js';

/**
 * A duration variable (`90s`, `15m`, `2h`, `30d`) parsed to seconds, with a default.
 *
 * @example
 * const Env = z.object({ AOA_REPLAY_WINDOW: durationField('5m') });
 */
export const durationField = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      try {
        return parseDurationSeconds(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });

/**
 * A `host:port` listen variable, with a default; port 0 asks for a free one.
 *
 * @example
 * const Env = z.object({ AOA_REVOKER_GRPC_LISTEN: listenField('127.0.0.1:7411') });
 */
export const listenField = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      try {
        return parseListen(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });

/** An http(s) URL variable. */
export const httpUrlField = () => z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** An optional path to a file this process can read, checked when the configuration is loaded. */
export const readableFileField = () =>
  z
    .string()
    .min(1)
    .optional()
    .superRefine((path, ctx) => {
      if (path === undefined) return;
      try {
        accessSync(path, constants.R_OK);
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          message: `cannot read ${path}: ${(error as NodeJS.ErrnoException).code}`,
        });
      }
    });

/**
 * The variables every service reads to reach NATS and to log; {@link serviceEnv} adds them to a
 * service's schema with their cross-field checks.
 */
export const SERVICE_ENV = {
  NATS_URL: z.string({ error: 'required' }).min(1, 'required'),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD_FILE: z.string().optional(),
  // TLS to NATS (PEM): the CA that signed the servers' certificates; for mutual TLS also this
  // service's certificate and key.
  NATS_TLS_CA_FILE: readableFileField(),
  NATS_TLS_CERT_FILE: readableFileField(),
  NATS_TLS_KEY_FILE: readableFileField(),
  // Replicas of every stream and bucket a service creates: 3 (or 5) on a NATS cluster, so an
  // acknowledged write survives the loss of a server.
  AOA_NATS_REPLICAS: z.enum(['1', '3', '5'], { error: 'must be 1, 3 or 5' }).default('1').transform(Number),
  AOA_SUBJECT_PREFIX: z.string().default('aoa'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** The NATS TLS variables of {@link SERVICE_ENV} after parsing. */
interface NatsTlsEnv {
  NATS_TLS_CA_FILE?: string | undefined;
  NATS_TLS_CERT_FILE?: string | undefined;
  NATS_TLS_KEY_FILE?: string | undefined;
}

/** A client certificate for NATS needs its key, and the other way round. */
function checkNatsTls(env: NatsTlsEnv, ctx: z.RefinementCtx): void {
  if (Boolean(env.NATS_TLS_CERT_FILE) !== Boolean(env.NATS_TLS_KEY_FILE)) {
    ctx.addIssue({
      code: 'custom',
      path: [env.NATS_TLS_CERT_FILE ? 'NATS_TLS_KEY_FILE' : 'NATS_TLS_CERT_FILE'],
      message: 'mutual TLS to NATS needs both NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE',
    });
  }
}

/**
 * The TLS files for {@link connectNats}, or undefined when none is set (TLS is then used only if the
 * server requires it, trusting the system's CAs).
 */
function natsTlsFiles(env: NatsTlsEnv): NatsTlsFiles | undefined {
  const files: NatsTlsFiles = {};
  if (env.NATS_TLS_CA_FILE) files.caFile = env.NATS_TLS_CA_FILE;
  if (env.NATS_TLS_CERT_FILE) files.certFile = env.NATS_TLS_CERT_FILE;
  if (env.NATS_TLS_KEY_FILE) files.keyFile = env.NATS_TLS_KEY_FILE;
  return Object.keys(files).length > 0 ? files : undefined;
}

/** TLS certificate and key files for a service's listeners; {@link serviceEnv} adds and checks them. */
export const TLS_ENV = {
  AOA_TLS_CERT_FILE: z.string().optional(),
  AOA_TLS_KEY_FILE: z.string().optional(),
  // How often the listeners re-read their TLS files (and client CAs), so renewed certificates apply
  // without a restart; 0s reads them once.
  AOA_TLS_RELOAD_INTERVAL: durationField(`${DEFAULT_TLS_RELOAD_MS / 1000}s`),
};

/** The listeners' TLS files from a validated environment, or undefined for plaintext. */
export function listenerTls(env: {
  AOA_TLS_CERT_FILE?: string | undefined;
  AOA_TLS_KEY_FILE?: string | undefined;
  AOA_TLS_RELOAD_INTERVAL?: number | undefined;
}): TlsFiles | undefined {
  return env.AOA_TLS_CERT_FILE && env.AOA_TLS_KEY_FILE
    ? {
        certFile: env.AOA_TLS_CERT_FILE,
        keyFile: env.AOA_TLS_KEY_FILE,
        reloadMs: (env.AOA_TLS_RELOAD_INTERVAL ?? DEFAULT_TLS_RELOAD_MS / 1000) * 1000,
      }
    : undefined;
}

/** TLS needs both files or neither. */
export function checkTlsPair(
  env: { AOA_TLS_CERT_FILE?: string | undefined; AOA_TLS_KEY_FILE?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (Boolean(env.AOA_TLS_CERT_FILE) !== Boolean(env.AOA_TLS_KEY_FILE)) {
    ctx.addIssue({
      code: 'custom',
      path: ['AOA_TLS_KEY_FILE'],
      message: 'TLS needs both AOA_TLS_CERT_FILE and AOA_TLS_KEY_FILE',
    });
  }
}

/**
 * A listener's client-certificate CAs (`AOA_<SERVICE>_TLS_CLIENT_CA_FILE`, RFC 8705) need its own TLS
 * pair: a client certificate is only ever asked for in a TLS handshake.
 */
export function checkClientCaNeedsTls(
  env: { AOA_TLS_CERT_FILE?: string | undefined } & Record<string, unknown>,
  variable: string,
  ctx: z.RefinementCtx,
): void {
  if (env[variable] && !env.AOA_TLS_CERT_FILE) {
    ctx.addIssue({
      code: 'custom',
      path: [variable],
      message: 'client certificates need TLS: set AOA_TLS_CERT_FILE and AOA_TLS_KEY_FILE too',
    });
  }
}

/** A listener's TLS pair, asking for client certificates from `clientCaFile` when one is given (RFC 8705). */
export const withClientCa = (
  tls: TlsFiles | undefined,
  clientCaFile: string | undefined,
): TlsFiles | undefined => tls && (clientCaFile ? { ...tls, clientCaFile } : tls);

/**
 * A service's environment schema: {@link SERVICE_ENV}, {@link TLS_ENV} and the service's own variables,
 * with the TLS pair checks every service needs already attached (chain the service's own refinements).
 *
 * @example
 * export const RevokerEnv = serviceEnv({ AOA_POLICY_FILE: z.string() }).superRefine((env, ctx) => {});
 */
export function serviceEnv<T extends z.ZodRawShape>(shape: T) {
  return z.object({ ...SERVICE_ENV, ...shape, ...TLS_ENV }).superRefine((env, ctx) => {
    // The generic shape hides the fields' types; these two come from SERVICE_ENV and TLS_ENV.
    const tls = env as NatsTlsEnv & Parameters<typeof checkTlsPair>[0];
    checkTlsPair(tls, ctx);
    checkNatsTls(tls, ctx);
  });
}

/**
 * `AOA_NATS_APPS_API`: the apps account's JetStream API as the services' account imports it (e.g.
 * `$JS.apps.API`, infra/nats/auth.conf); the issuer and the rotator keep the apps' mirrors there.
 * Unset: verifiers and agents share the services' account (`aoa dev`, tests without accounts).
 */
export const natsAppsApiField = () =>
  z
    .string()
    .regex(/^[$\w-]+(\.[$\w-]+)*$/, 'must be a subject prefix without wildcards, e.g. $JS.apps.API')
    .optional();

/** `AOA_REPLAY_WINDOW`: how long a client assertion or DPoP proof `jti` is remembered, 10 s to 1 h. */
export const replayWindowField = () =>
  durationField('5m').refine((seconds) => seconds >= 10 && seconds <= 3600, {
    error: 'must be between 10s and 1h',
  });

/** What every service reads from {@link SERVICE_ENV} and {@link TLS_ENV}: NATS, its listeners' TLS, logging. */
export interface ServiceConfig {
  natsUrl: string;
  natsUser: string | undefined;
  natsPasswordFile: string | undefined;
  natsTls: NatsTlsFiles | undefined;
  natsReplicas: number;
  subjectPrefix: string;
  tls: TlsFiles | undefined;
  logLevel: string;
}

/**
 * The {@link ServiceConfig} part of a service's validated environment.
 *
 * @example
 * return { ...serviceConfig(e), policyFile: e.AOA_POLICY_FILE };
 */
export function serviceConfig(
  e: NatsTlsEnv & {
    NATS_URL: string;
    NATS_USER?: string | undefined;
    NATS_PASSWORD_FILE?: string | undefined;
    AOA_NATS_REPLICAS: number;
    AOA_SUBJECT_PREFIX: string;
    LOG_LEVEL: string;
    AOA_TLS_CERT_FILE?: string | undefined;
    AOA_TLS_KEY_FILE?: string | undefined;
    AOA_TLS_RELOAD_INTERVAL?: number | undefined;
  },
): ServiceConfig {
  return {
    natsUrl: e.NATS_URL,
    natsUser: e.NATS_USER,
    natsPasswordFile: e.NATS_PASSWORD_FILE,
    natsTls: natsTlsFiles(e),
    natsReplicas: e.AOA_NATS_REPLICAS,
    subjectPrefix: e.AOA_SUBJECT_PREFIX,
    tls: listenerTls(e),
    logLevel: e.LOG_LEVEL,
  };
}
