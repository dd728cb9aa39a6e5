import {
  checkClientCaNeedsTls,
  durationField,
  httpUrlField,
  listenField,
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

/** The revoker's environment variables; only `main.ts` reads `process.env`. */
export const RevokerEnv = serviceEnv({
  AOA_POLICY_FILE: z.string({ error: 'required' }).min(1, 'required'),
  // The issuer identifier: client assertions name it as `aud`, aoa tokens as `iss`.
  AOA_ISSUER_URL: url,
  AOA_REVOKER_GRPC_LISTEN: listenField('127.0.0.1:7411'),
  AOA_REVOKER_HTTP_LISTEN: listenField('127.0.0.1:7412'),
  AOA_REVOKER_GRPC_URL: url.optional(),
  // CA certificates (PEM) whose client certificates authenticate registered clients on the gRPC
  // listener (RFC 8705, matched by tls_client_auth_san_uri, as on the issuer); needs the TLS pair.
  AOA_REVOKER_TLS_CLIENT_CA_FILE: readableFileField(),
  AOA_REPLAY_WINDOW: replayWindowField(),
  AOA_REVOCATION_MAX_AGE: durationField('24h'),
  AOA_AUDIT_MAX_AGE: durationField('30d'),
  AOA_AUDIT_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 ** 3),
  AOA_AUDIT_OUTBOX_RETRY: durationField('1s'),
}).superRefine((env, ctx) => {
  checkClientCaNeedsTls(env, 'AOA_REVOKER_TLS_CLIENT_CA_FILE', ctx);
  if (env.AOA_REVOCATION_MAX_AGE < 60) {
    ctx.addIssue({ code: 'custom', path: ['AOA_REVOCATION_MAX_AGE'], message: 'must be at least 1m' });
  }
});

/** Revoker configuration after validation. */
export interface RevokerConfig extends ServiceConfig {
  policyFile: string;
  issuerUrl: string;
  grpcListen: { host: string; port: number };
  httpListen: { host: string; port: number };
  grpcUrl: string | undefined;
  /** The gRPC listener's TLS: `tls`, asking for client certificates when their CAs are configured. */
  grpcTls: TlsFiles | undefined;
  replayWindowSeconds: number;
  revocationMaxAgeSeconds: number;
  auditMaxAgeSeconds: number;
  auditMaxBytes: number;
  outboxRetryMs: number;
}

/** Parses and validates the revoker's environment; throws `ConfigError` listing every problem. */
export function loadRevokerConfig(env: Record<string, string | undefined>): RevokerConfig {
  const e = parseConfig(RevokerEnv, env);
  const base = serviceConfig(e);
  return {
    ...base,
    grpcTls: withClientCa(base.tls, e.AOA_REVOKER_TLS_CLIENT_CA_FILE),
    policyFile: e.AOA_POLICY_FILE,
    issuerUrl: e.AOA_ISSUER_URL,
    grpcListen: e.AOA_REVOKER_GRPC_LISTEN,
    httpListen: e.AOA_REVOKER_HTTP_LISTEN,
    grpcUrl: e.AOA_REVOKER_GRPC_URL,
    replayWindowSeconds: e.AOA_REPLAY_WINDOW,
    revocationMaxAgeSeconds: e.AOA_REVOCATION_MAX_AGE,
    auditMaxAgeSeconds: e.AOA_AUDIT_MAX_AGE,
    auditMaxBytes: e.AOA_AUDIT_MAX_BYTES,
    outboxRetryMs: Math.max(50, e.AOA_AUDIT_OUTBOX_RETRY * 1000),
  };
}
