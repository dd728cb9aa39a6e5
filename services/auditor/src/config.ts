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

/** `AOA_AUDIT_DB` names PostgreSQL by URL; anything else is a PGlite directory. */
const POSTGRES_URL = /^postgres(ql)?:\/\//;

const count = (fallback: number, max: number) =>
  z.coerce.number().int().positive().max(max).default(fallback);

/** The auditor's environment variables; only `main.ts` reads `process.env`. */
export const AuditorEnv = serviceEnv({
  // The registered clients: every Auditor call needs an administrator (an admin client's assertion,
  // or an operator token with its DPoP proof).
  AOA_POLICY_FILE: z.string({ error: 'required' }).min(1, 'required'),
  // The issuer identifier: client assertions name it as `aud`, aoa tokens as `iss`.
  AOA_ISSUER_URL: httpUrlField(),
  AOA_REPLAY_WINDOW: replayWindowField(),
  // Trusted checkpoint public keys (a JWK, a JWK Set or PEM); without it, checkpoints are trusted on first use.
  AOA_AUDITOR_CHECKPOINT_PUBLIC_KEYS: z.string().min(1, 'must not be empty').optional(),
  // A postgres:// URL (production); anything else is a PGlite data directory (development only).
  AOA_AUDIT_DB: z.string().min(1).default('./data/audit'),
  // The PostgreSQL password, from a file (a secret mount), so the URL in the environment carries none.
  AOA_AUDIT_DB_PASSWORD_FILE: z.string().min(1, 'must not be empty').optional(),
  AOA_AUDITOR_GRPC_LISTEN: listenField('127.0.0.1:7431'),
  AOA_AUDITOR_HTTP_LISTEN: listenField('127.0.0.1:7432'),
  // The gRPC base URL callers reach this auditor by: operator DPoP proofs name it (+ method) as `htu`.
  AOA_AUDITOR_GRPC_URL: httpUrlField().optional(),
  // CA certificates (PEM) whose client certificates authenticate registered clients on the gRPC
  // listener (RFC 8705, matched by tls_client_auth_san_uri, as on the issuer); needs the TLS pair.
  AOA_AUDITOR_TLS_CLIENT_CA_FILE: readableFileField(),
  AOA_AUDITOR_BATCH_SIZE: count(500, 5000),
  AOA_AUDITOR_FLUSH: durationField('5ms'),
  // How long JetStream waits for a delivered event's ack before offering it again. Keep it at most two
  // thirds of the lease TTL: a paused writer's events are then offered again by the time the lease it
  // renews every third of the TTL has run out, and the next writer catches up without waiting on them.
  AOA_AUDITOR_ACK_WAIT: durationField('5s'),
  AOA_AUDITOR_MAX_EVENT_BYTES: count(64 * 1024, 1024 * 1024),
  AOA_AUDITOR_LEASE_TTL: durationField('10s'),
  AOA_AUDITOR_CHECKPOINT_EVERY: count(1000, 1_000_000),
  AOA_AUDITOR_CHECKPOINT_INTERVAL: durationField('10s'),
  // PKCS#8 PEM of an Ed25519 key; without it each auditor generates its own at start.
  AOA_AUDITOR_KEY_FILE: z.string().optional(),
  AOA_AUDIT_MAX_AGE: durationField('30d'),
  AOA_AUDIT_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 ** 3),
}).superRefine((env, ctx) => {
  checkClientCaNeedsTls(env, 'AOA_AUDITOR_TLS_CLIENT_CA_FILE', ctx);
  if (env.AOA_AUDIT_DB_PASSWORD_FILE && !POSTGRES_URL.test(env.AOA_AUDIT_DB)) {
    ctx.addIssue({
      code: 'custom',
      path: ['AOA_AUDIT_DB_PASSWORD_FILE'],
      message: 'only with a postgres:// AOA_AUDIT_DB',
    });
  }
});

/** Auditor configuration after validation. */
export interface AuditorConfig extends ServiceConfig {
  policyFile: string;
  issuerUrl: string;
  replayWindowSeconds: number;
  /** A file of trusted checkpoint public keys; undefined: trust on first use. */
  checkpointPublicKeysFile: string | undefined;
  store:
    | { kind: 'postgres'; url: string; passwordFile: string | undefined }
    | { kind: 'pglite'; dataDir: string };
  grpcListen: { host: string; port: number };
  httpListen: { host: string; port: number };
  /** The gRPC base URL of DPoP `htu`s; undefined: derived from the listener. */
  grpcUrl: string | undefined;
  /** The gRPC listener's TLS: `tls`, asking for client certificates when their CAs are configured. */
  grpcTls: TlsFiles | undefined;
  batchSize: number;
  flushMs: number;
  ackWaitMs: number;
  maxEventBytes: number;
  leaseTtlMs: number;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  keyFile: string | undefined;
  auditMaxAgeSeconds: number;
  auditMaxBytes: number;
}

/** Parses and validates the auditor's environment; throws `ConfigError` listing every problem. */
export function loadAuditorConfig(env: Record<string, string | undefined>): AuditorConfig {
  const e = parseConfig(AuditorEnv, env);
  const base = serviceConfig(e);
  return {
    ...base,
    grpcTls: withClientCa(base.tls, e.AOA_AUDITOR_TLS_CLIENT_CA_FILE),
    policyFile: e.AOA_POLICY_FILE,
    issuerUrl: e.AOA_ISSUER_URL,
    replayWindowSeconds: e.AOA_REPLAY_WINDOW,
    checkpointPublicKeysFile: e.AOA_AUDITOR_CHECKPOINT_PUBLIC_KEYS,
    store: POSTGRES_URL.test(e.AOA_AUDIT_DB)
      ? { kind: 'postgres', url: e.AOA_AUDIT_DB, passwordFile: e.AOA_AUDIT_DB_PASSWORD_FILE }
      : { kind: 'pglite', dataDir: e.AOA_AUDIT_DB },
    grpcListen: e.AOA_AUDITOR_GRPC_LISTEN,
    httpListen: e.AOA_AUDITOR_HTTP_LISTEN,
    grpcUrl: e.AOA_AUDITOR_GRPC_URL,
    batchSize: e.AOA_AUDITOR_BATCH_SIZE,
    flushMs: Math.max(1, e.AOA_AUDITOR_FLUSH * 1000),
    ackWaitMs: Math.max(1000, e.AOA_AUDITOR_ACK_WAIT * 1000),
    maxEventBytes: e.AOA_AUDITOR_MAX_EVENT_BYTES,
    leaseTtlMs: Math.max(300, e.AOA_AUDITOR_LEASE_TTL * 1000),
    checkpointEvery: e.AOA_AUDITOR_CHECKPOINT_EVERY,
    checkpointIntervalMs: Math.max(100, e.AOA_AUDITOR_CHECKPOINT_INTERVAL * 1000),
    keyFile: e.AOA_AUDITOR_KEY_FILE,
    auditMaxAgeSeconds: e.AOA_AUDIT_MAX_AGE,
    auditMaxBytes: e.AOA_AUDIT_MAX_BYTES,
  };
}
