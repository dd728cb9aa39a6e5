// The issuer under test for token-endpoint.bench.ts, in its own process under `taskset -c 1`: the same
// composition as issuer.ts, with the token endpoint's rate limits taken from the environment (the
// bench sets them to 0, disabled, so it measures the endpoint rather than the limiter), and TLS with
// client certificates when the bench passes the files.
import { createLogger } from '@aoa/core';
import { buildIssuer } from '../../services/issuer/src/app.js';
import { loadIssuerConfig } from '../../services/issuer/src/config.js';
import { announce, requiredEnv, stopOn } from './child.js';

const issuer = await buildIssuer(
  loadIssuerConfig({
    NATS_URL: requiredEnv('NATS_URL'),
    AOA_POLICY_FILE: requiredEnv('AOA_POLICY_FILE'),
    AOA_ISSUER_GRPC_LISTEN: '127.0.0.1:0',
    AOA_ISSUER_HTTP_LISTEN: '127.0.0.1:0',
    AOA_TOKEN_RATE_PER_SOURCE: requiredEnv('AOA_TOKEN_RATE_PER_SOURCE'),
    AOA_TOKEN_RATE_PER_CLIENT: requiredEnv('AOA_TOKEN_RATE_PER_CLIENT'),
    AOA_TLS_CERT_FILE: process.env.AOA_TLS_CERT_FILE,
    AOA_TLS_KEY_FILE: process.env.AOA_TLS_KEY_FILE,
    AOA_ISSUER_TLS_CLIENT_CA_FILE: process.env.AOA_ISSUER_TLS_CLIENT_CA_FILE,
  }),
  { logger: createLogger({ service: 'issuer', level: 'warn' }) },
).start();
stopOn(() => issuer.stop());
announce({ issuer: issuer.issuer, httpPort: issuer.httpPort });
