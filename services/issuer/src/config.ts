import {
  checkTlsPair,
  durationField,
  httpUrlField,
  listenField,
  parseConfig,
  SERVICE_ENV,
  TLS_ENV,
} from '@aoa/core';
import { z } from 'zod';

const url = httpUrlField();

/** The issuer's environment variables; only `main.ts` reads `process.env`. */
export const IssuerEnv = z
  .object({
    ...SERVICE_ENV,
    AOA_POLICY_FILE: z.string().min(1, 'required'),
    AOA_ISSUER_URL: url.optional(),
    AOA_ISSUER_GRPC_LISTEN: listenField('127.0.0.1:7401'),
    AOA_ISSUER_HTTP_LISTEN: listenField('127.0.0.1:7402'),
    AOA_ISSUER_GRPC_URL: url.optional(),
    AOA_KEY_MANAGER: z.enum(['memory', 'sealed']).default('memory'),
    AOA_KEK_FILE: z.string().optional(),
    AOA_REPLAY_WINDOW: durationField('5m'),
    AOA_REVOCATION_MAX_AGE: durationField('24h'),
    AOA_AUDIT_MAX_AGE: durationField('30d'),
    AOA_AUDIT_MAX_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(8 * 1024 ** 3),
    AOA_AUDIT_OUTBOX_RETRY: durationField('1s'),
    AOA_TOKEN_RATE_PER_CLIENT: z.coerce.number().min(0).default(200),
    AOA_TOKEN_RATE_PER_SOURCE: z.coerce.number().min(0).default(500),
    AOA_DPOP_NONCE_SECRET_FILE: z.string().optional(),
    ...TLS_ENV,
  })
  .superRefine((env, ctx) => {
    if (env.AOA_KEY_MANAGER === 'sealed' && !env.AOA_KEK_FILE) {
      ctx.addIssue({
        code: 'custom',
        path: ['AOA_KEK_FILE'],
        message: 'required when AOA_KEY_MANAGER=sealed',
      });
    }
    checkTlsPair(env, ctx);
    if (env.AOA_REPLAY_WINDOW < 10 || env.AOA_REPLAY_WINDOW > 3600) {
      ctx.addIssue({ code: 'custom', path: ['AOA_REPLAY_WINDOW'], message: 'must be between 10s and 1h' });
    }
  });

/** Issuer configuration after validation, with URLs derived from the listeners when not given. */
export interface IssuerConfig {
  natsUrl: string;
  natsUser: string | undefined;
  natsPasswordFile: string | undefined;
  subjectPrefix: string;
  policyFile: string;
  issuerUrl: string | undefined;
  grpcListen: { host: string; port: number };
  httpListen: { host: string; port: number };
  grpcUrl: string | undefined;
  keyManager: 'memory' | 'sealed';
  kekFile: string | undefined;
  replayWindowSeconds: number;
  revocationMaxAgeSeconds: number;
  auditMaxAgeSeconds: number;
  auditMaxBytes: number;
  /** How often the revocation audit outbox retries (RFC 7009 revocations are audited through it). */
  outboxRetryMs: number;
  tls: { certFile: string; keyFile: string } | undefined;
  logLevel: string;
  /** Token endpoint requests per second (burst twice that) per client and per source; 0 disables. */
  tokenRatePerClient: number;
  tokenRatePerSource: number;
  /** Shared secret for DPoP nonces across replicas; a per-process random one when absent. */
  dpopNonceSecretFile: string | undefined;
}

export function loadIssuerConfig(env: Record<string, string | undefined>): IssuerConfig {
  const e = parseConfig(IssuerEnv, env);
  return {
    natsUrl: e.NATS_URL,
    natsUser: e.NATS_USER,
    natsPasswordFile: e.NATS_PASSWORD_FILE,
    subjectPrefix: e.AOA_SUBJECT_PREFIX,
    policyFile: e.AOA_POLICY_FILE,
    issuerUrl: e.AOA_ISSUER_URL,
    grpcListen: e.AOA_ISSUER_GRPC_LISTEN,
    httpListen: e.AOA_ISSUER_HTTP_LISTEN,
    grpcUrl: e.AOA_ISSUER_GRPC_URL,
    keyManager: e.AOA_KEY_MANAGER,
    kekFile: e.AOA_KEK_FILE,
    replayWindowSeconds: e.AOA_REPLAY_WINDOW,
    revocationMaxAgeSeconds: e.AOA_REVOCATION_MAX_AGE,
    auditMaxAgeSeconds: e.AOA_AUDIT_MAX_AGE,
    auditMaxBytes: e.AOA_AUDIT_MAX_BYTES,
    outboxRetryMs: Math.max(50, e.AOA_AUDIT_OUTBOX_RETRY * 1000),
    tls:
      e.AOA_TLS_CERT_FILE && e.AOA_TLS_KEY_FILE
        ? { certFile: e.AOA_TLS_CERT_FILE, keyFile: e.AOA_TLS_KEY_FILE }
        : undefined,
    logLevel: e.LOG_LEVEL,
    tokenRatePerClient: e.AOA_TOKEN_RATE_PER_CLIENT,
    tokenRatePerSource: e.AOA_TOKEN_RATE_PER_SOURCE,
    dpopNonceSecretFile: e.AOA_DPOP_NONCE_SECRET_FILE,
  };
}
