import {
  checkTlsPair,
  durationField,
  httpUrlField,
  listenerTls,
  listenField,
  parseConfig,
  readableFileField,
  TLS_ENV,
} from '@aoa/core';
import { z } from 'zod';

const url = httpUrlField();
const target = z
  .string({ error: 'required' })
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port');
const requiredFile = readableFileField().refine((file) => file !== undefined, 'required');

/** The console's environment variables; only `main.ts` reads `process.env`. */
export const ConsoleEnv = z
  .object({
    AOA_CONSOLE_HTTP_LISTEN: listenField('127.0.0.1:7440'),
    // The console's own address as browsers reach it: the OIDC redirect and the cookie scope.
    AOA_CONSOLE_URL: url.optional(),
    // Sign-in: an OpenID provider, the console's client there, and the resource (audience) to ask a
    // token for: the audience aoa's policy trusts for that IdP.
    AOA_CONSOLE_OIDC_ISSUER: url,
    AOA_CONSOLE_OIDC_CLIENT_ID: z.string({ error: 'required' }).min(1, 'required'),
    AOA_CONSOLE_OIDC_CLIENT_SECRET_FILE: requiredFile,
    AOA_CONSOLE_OIDC_RESOURCE: url,
    // What to ask for: Okta custom authorization servers give the audience for `resource`; Entra ID
    // (v2) ignores `resource` and wants the API's scope here, e.g. `openid profile api://aoa/access`.
    AOA_CONSOLE_OIDC_SCOPE: z
      .string()
      .regex(
        /^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/,
        'must be space-separated scope tokens',
      )
      .default('openid profile'),
    // The console as an aoa client: it exchanges each person's token through Delegate with this key.
    AOA_CONSOLE_CLIENT_ID: z.string().default('console'),
    AOA_CONSOLE_CLIENT_KEY_FILE: requiredFile,
    AOA_CONSOLE_APP: z.string().default('console'),
    AOA_CONSOLE_ENV: z.string().default('ops'),
    AOA_CONSOLE_SESSION_TTL: durationField('8h'),
    AOA_CONSOLE_MAX_SESSIONS: z.coerce.number().int().min(1).max(100_000).default(1000),
    AOA_ISSUER_URL: url,
    AOA_ISSUER_GRPC: target,
    AOA_AUDITOR_GRPC: target,
    AOA_AUDITOR_GRPC_URL: url.optional(),
    AOA_REVOKER_GRPC: target,
    AOA_REVOKER_GRPC_URL: url.optional(),
    AOA_ROTATOR_GRPC: target,
    AOA_ROTATOR_GRPC_URL: url.optional(),
    // The CA of the services' gRPC certificates; unset: plaintext (loopback development only).
    AOA_GRPC_CA_FILE: readableFileField(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    ...TLS_ENV,
  })
  .superRefine((env, ctx) => {
    checkTlsPair(env, ctx);
    if (env.AOA_CONSOLE_SESSION_TTL < 60 || env.AOA_CONSOLE_SESSION_TTL > 86_400) {
      ctx.addIssue({
        code: 'custom',
        path: ['AOA_CONSOLE_SESSION_TTL'],
        message: 'must be between 1m and 24h',
      });
    }
  });

/** A service the console calls: where to connect, and the base URL its DPoP proofs name (`htu`). */
export interface ServiceTarget {
  address: string;
  grpcUrl: string;
}

/** Console configuration after validation. */
export interface ConsoleConfig {
  httpListen: { host: string; port: number };
  publicUrl: string | undefined;
  oidc: { issuer: string; clientId: string; clientSecretFile: string; resource: string; scope: string };
  client: { id: string; keyFile: string; app: string; env: string };
  sessionTtlSeconds: number;
  maxSessions: number;
  issuerUrl: string;
  issuerGrpc: string;
  auditor: ServiceTarget;
  revoker: ServiceTarget;
  rotator: ServiceTarget;
  grpcCaFile: string | undefined;
  tls: { certFile: string; keyFile: string } | undefined;
  logLevel: string;
}

/** Parses and validates the console's environment; throws `ConfigError` listing every problem. */
export function loadConsoleConfig(env: Record<string, string | undefined>): ConsoleConfig {
  const e = parseConfig(ConsoleEnv, env);
  const scheme = e.AOA_GRPC_CA_FILE ? 'https' : 'http';
  const service = (address: string, grpcUrl: string | undefined): ServiceTarget => ({
    address,
    grpcUrl: grpcUrl?.replace(/\/$/, '') ?? `${scheme}://${address}`,
  });
  return {
    httpListen: e.AOA_CONSOLE_HTTP_LISTEN,
    publicUrl: e.AOA_CONSOLE_URL,
    oidc: {
      issuer: e.AOA_CONSOLE_OIDC_ISSUER,
      clientId: e.AOA_CONSOLE_OIDC_CLIENT_ID,
      clientSecretFile: e.AOA_CONSOLE_OIDC_CLIENT_SECRET_FILE as string,
      resource: e.AOA_CONSOLE_OIDC_RESOURCE,
      scope: e.AOA_CONSOLE_OIDC_SCOPE,
    },
    client: {
      id: e.AOA_CONSOLE_CLIENT_ID,
      keyFile: e.AOA_CONSOLE_CLIENT_KEY_FILE as string,
      app: e.AOA_CONSOLE_APP,
      env: e.AOA_CONSOLE_ENV,
    },
    sessionTtlSeconds: e.AOA_CONSOLE_SESSION_TTL,
    maxSessions: e.AOA_CONSOLE_MAX_SESSIONS,
    issuerUrl: e.AOA_ISSUER_URL,
    issuerGrpc: e.AOA_ISSUER_GRPC,
    auditor: service(e.AOA_AUDITOR_GRPC, e.AOA_AUDITOR_GRPC_URL),
    revoker: service(e.AOA_REVOKER_GRPC, e.AOA_REVOKER_GRPC_URL),
    rotator: service(e.AOA_ROTATOR_GRPC, e.AOA_ROTATOR_GRPC_URL),
    grpcCaFile: e.AOA_GRPC_CA_FILE,
    tls: listenerTls(e),
    logLevel: e.LOG_LEVEL,
  };
}
