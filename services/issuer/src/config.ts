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
  withClientCa,
} from '@aoa/core';
import { z } from 'zod';

const url = httpUrlField();

/** The issuer's environment variables; only `main.ts` reads `process.env`. */
export const IssuerEnv = serviceEnv({
  AOA_POLICY_FILE: z.string({ error: 'required' }).min(1, 'required'),
  AOA_ISSUER_URL: url.optional(),
  AOA_ISSUER_GRPC_LISTEN: listenField('127.0.0.1:7401'),
  AOA_ISSUER_HTTP_LISTEN: listenField('127.0.0.1:7402'),
  AOA_ISSUER_GRPC_URL: url.optional(),
  // CA certificates (PEM) whose client certificates authenticate registered clients on both listeners
  // (RFC 8705 tls_client_auth, matched by tls_client_auth_san_uri); needs the listeners' TLS pair.
  AOA_ISSUER_TLS_CLIENT_CA_FILE: readableFileField(),
  AOA_KEY_MANAGER: z.enum(['memory', 'sealed']).default('memory'),
  AOA_KEK_FILE: z.string().optional(),
  // The algorithm of signing keys the issuer prepares: EdDSA (the contract's default) or ES256.
  AOA_ISSUER_SIGNING_ALG: z.enum(['EdDSA', 'ES256']).default('EdDSA'),
  AOA_REPLAY_WINDOW: replayWindowField(),
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
  AOA_NATS_APPS_API: natsAppsApiField(),
  // How long an IdP's fetched JWKS is used before it is fetched again; a key it withdraws stops
  // counting, for cached subject tokens too, within this age and a second.
  AOA_IDP_JWKS_MAX_AGE: durationField('10m'),
  // Scheduled signing-key rotation (0 turns it off); a standby is published at least the lead before
  // it signs, so verifiers that cache the key set for up to the lead already know it.
  AOA_KEY_ROTATION_INTERVAL: durationField('24h'),
  AOA_KEY_PUBLICATION_LEAD: durationField('60s'),
  AOA_KEY_REMINT_TIMEOUT: durationField('30s'),
}).superRefine((env, ctx) => {
  checkClientCaNeedsTls(env, 'AOA_ISSUER_TLS_CLIENT_CA_FILE', ctx);
  if (env.AOA_KEY_MANAGER === 'sealed' && !env.AOA_KEK_FILE) {
    ctx.addIssue({
      code: 'custom',
      path: ['AOA_KEK_FILE'],
      message: 'required when AOA_KEY_MANAGER=sealed',
    });
  }
  if (env.AOA_KEY_ROTATION_INTERVAL !== 0 && env.AOA_KEY_ROTATION_INTERVAL < env.AOA_KEY_PUBLICATION_LEAD) {
    ctx.addIssue({
      code: 'custom',
      path: ['AOA_KEY_ROTATION_INTERVAL'],
      message: 'must be 0 (off) or at least AOA_KEY_PUBLICATION_LEAD',
    });
  }
  if (env.AOA_KEY_REMINT_TIMEOUT < 0.1 || env.AOA_KEY_REMINT_TIMEOUT > 600) {
    ctx.addIssue({
      code: 'custom',
      path: ['AOA_KEY_REMINT_TIMEOUT'],
      message: 'must be between 100ms and 10m',
    });
  }
});

/** Issuer configuration after validation, with URLs derived from the listeners when not given. */
export interface IssuerConfig extends ServiceConfig {
  policyFile: string;
  issuerUrl: string | undefined;
  grpcListen: { host: string; port: number };
  httpListen: { host: string; port: number };
  grpcUrl: string | undefined;
  keyManager: 'memory' | 'sealed';
  kekFile: string | undefined;
  /** The algorithm of newly prepared signing keys; an existing ring signs with it after two rotations. */
  signingAlg: 'EdDSA' | 'ES256';
  replayWindowSeconds: number;
  revocationMaxAgeSeconds: number;
  auditMaxAgeSeconds: number;
  auditMaxBytes: number;
  /** How often the revocation audit outbox retries (RFC 7009 revocations are audited through it). */
  outboxRetryMs: number;
  /** Token endpoint requests per second (burst twice that) per client and per source; 0 disables. */
  tokenRatePerClient: number;
  tokenRatePerSource: number;
  /** Shared secret for DPoP nonces across replicas; a per-process random one when absent. */
  dpopNonceSecretFile: string | undefined;
  /** Scheduled key rotation period (0: off), the standby's publication lead, the re-mint wait. */
  keyRotationMs: number;
  keyPublicationLeadMs: number;
  keyRemintTimeoutMs: number;
  /** The apps account's JetStream API, where the apps' mirrors are kept; unset without accounts. */
  natsAppsApi: string | undefined;
  idpJwksMaxAgeMs: number;
}

export function loadIssuerConfig(env: Record<string, string | undefined>): IssuerConfig {
  const e = parseConfig(IssuerEnv, env);
  const base = serviceConfig(e);
  return {
    ...base,
    // Both listeners ask for client certificates (RFC 8705) when client CAs are configured.
    tls: withClientCa(base.tls, e.AOA_ISSUER_TLS_CLIENT_CA_FILE),
    policyFile: e.AOA_POLICY_FILE,
    issuerUrl: e.AOA_ISSUER_URL,
    grpcListen: e.AOA_ISSUER_GRPC_LISTEN,
    httpListen: e.AOA_ISSUER_HTTP_LISTEN,
    grpcUrl: e.AOA_ISSUER_GRPC_URL,
    keyManager: e.AOA_KEY_MANAGER,
    kekFile: e.AOA_KEK_FILE,
    signingAlg: e.AOA_ISSUER_SIGNING_ALG,
    replayWindowSeconds: e.AOA_REPLAY_WINDOW,
    revocationMaxAgeSeconds: e.AOA_REVOCATION_MAX_AGE,
    auditMaxAgeSeconds: e.AOA_AUDIT_MAX_AGE,
    auditMaxBytes: e.AOA_AUDIT_MAX_BYTES,
    outboxRetryMs: Math.max(50, e.AOA_AUDIT_OUTBOX_RETRY * 1000),
    tokenRatePerClient: e.AOA_TOKEN_RATE_PER_CLIENT,
    tokenRatePerSource: e.AOA_TOKEN_RATE_PER_SOURCE,
    dpopNonceSecretFile: e.AOA_DPOP_NONCE_SECRET_FILE,
    keyRotationMs: Math.round(e.AOA_KEY_ROTATION_INTERVAL * 1000),
    keyPublicationLeadMs: Math.round(e.AOA_KEY_PUBLICATION_LEAD * 1000),
    keyRemintTimeoutMs: Math.round(e.AOA_KEY_REMINT_TIMEOUT * 1000),
    natsAppsApi: e.AOA_NATS_APPS_API,
    idpJwksMaxAgeMs: Math.max(1000, Math.round(e.AOA_IDP_JWKS_MAX_AGE * 1000)),
  };
}
