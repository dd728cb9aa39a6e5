import {
  checkClientCaNeedsTls,
  durationField,
  httpUrlField,
  listenField,
  natsAppsApiField,
  parseConfig,
  readableFileField,
  replayWindowField,
  type ServiceConfig,
  serviceConfig,
  serviceEnv,
  type TlsFiles,
  withClientCa,
} from '@aoa/core';
import { z } from 'zod';

const url = httpUrlField();

/** The rotator's environment variables; only `main.ts` reads `process.env`. */
export const RotatorEnv = serviceEnv({
  AOA_POLICY_FILE: z.string({ error: 'required' }).min(1, 'required'),
  // The issuer identifier: client assertions name it as `aud`, aoa tokens as `iss`.
  AOA_ISSUER_URL: url,
  AOA_ROTATOR_GRPC_LISTEN: listenField('127.0.0.1:7421'),
  AOA_ROTATOR_HTTP_LISTEN: listenField('127.0.0.1:7422'),
  // The gRPC base URL callers reach this rotator by: operator DPoP proofs name it (+ method) as `htu`.
  AOA_ROTATOR_GRPC_URL: url.optional(),
  // CA certificates (PEM) whose client certificates authenticate registered clients on the gRPC
  // listener (RFC 8705, matched by tls_client_auth_san_uri, as on the issuer); needs the TLS pair.
  AOA_ROTATOR_TLS_CLIENT_CA_FILE: readableFileField(),
  AOA_REPLAY_WINDOW: replayWindowField(),
  AOA_AUDIT_MAX_AGE: durationField('30d'),
  AOA_AUDIT_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 ** 3),
  AOA_GRANT_MAX_LIFETIME: durationField('30d'),
  // How often the rotator looks for due grants, and how long a taken lease keeps other replicas off.
  AOA_ROTATOR_SCAN_INTERVAL: durationField('1s'),
  AOA_ROTATOR_LEASE: durationField('30s'),
  AOA_ROTATOR_MINT_TIMEOUT: durationField('5s'),
  AOA_NATS_APPS_API: natsAppsApiField(),
}).superRefine((env, ctx) => {
  checkClientCaNeedsTls(env, 'AOA_ROTATOR_TLS_CLIENT_CA_FILE', ctx);
  if (env.AOA_ROTATOR_SCAN_INTERVAL <= 0 || env.AOA_ROTATOR_SCAN_INTERVAL > 60) {
    ctx.addIssue({
      code: 'custom',
      path: ['AOA_ROTATOR_SCAN_INTERVAL'],
      message: 'must be over 0 and at most 1m',
    });
  }
  if (env.AOA_ROTATOR_LEASE < 2 * env.AOA_ROTATOR_SCAN_INTERVAL) {
    ctx.addIssue({
      code: 'custom',
      path: ['AOA_ROTATOR_LEASE'],
      message: 'must be at least twice the scan interval',
    });
  }
});

/** Rotator configuration after validation. */
export interface RotatorConfig extends ServiceConfig {
  policyFile: string;
  issuerUrl: string;
  grpcListen: { host: string; port: number };
  httpListen: { host: string; port: number };
  /** The gRPC base URL of DPoP `htu`s; undefined: derived from the listener. */
  grpcUrl: string | undefined;
  /** The gRPC listener's TLS: `tls`, asking for client certificates when their CAs are configured. */
  grpcTls: TlsFiles | undefined;
  replayWindowSeconds: number;
  auditMaxAgeSeconds: number;
  auditMaxBytes: number;
  maxGrantLifetimeSeconds: number;
  scanMs: number;
  leaseMs: number;
  mintTimeoutMs: number;
  /** The apps account's JetStream API, where the apps' mirrors are kept; unset without accounts. */
  natsAppsApi: string | undefined;
}

/** Parses and validates the rotator's environment; throws `ConfigError` listing every problem. */
export function loadRotatorConfig(env: Record<string, string | undefined>): RotatorConfig {
  const e = parseConfig(RotatorEnv, env);
  const base = serviceConfig(e);
  return {
    ...base,
    grpcTls: withClientCa(base.tls, e.AOA_ROTATOR_TLS_CLIENT_CA_FILE),
    policyFile: e.AOA_POLICY_FILE,
    issuerUrl: e.AOA_ISSUER_URL,
    grpcListen: e.AOA_ROTATOR_GRPC_LISTEN,
    httpListen: e.AOA_ROTATOR_HTTP_LISTEN,
    grpcUrl: e.AOA_ROTATOR_GRPC_URL,
    replayWindowSeconds: e.AOA_REPLAY_WINDOW,
    auditMaxAgeSeconds: e.AOA_AUDIT_MAX_AGE,
    auditMaxBytes: e.AOA_AUDIT_MAX_BYTES,
    maxGrantLifetimeSeconds: e.AOA_GRANT_MAX_LIFETIME,
    scanMs: Math.round(e.AOA_ROTATOR_SCAN_INTERVAL * 1000),
    leaseMs: Math.round(e.AOA_ROTATOR_LEASE * 1000),
    natsAppsApi: e.AOA_NATS_APPS_API,
    mintTimeoutMs: Math.round(e.AOA_ROTATOR_MINT_TIMEOUT * 1000),
  };
}
