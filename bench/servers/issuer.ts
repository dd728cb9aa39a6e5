// The issuer under test, in its own process: started by the benches under `taskset -c 1`.
import { createLogger } from '@aoa/core';
import { buildIssuer } from '../../services/issuer/src/app.js';
import { loadIssuerConfig } from '../../services/issuer/src/config.js';
import { announce, requiredEnv, stopOn } from './child.js';

const issuer = await buildIssuer(
  loadIssuerConfig({
    NATS_URL: requiredEnv('NATS_URL'),
    AOA_POLICY_FILE: requiredEnv('AOA_POLICY_FILE'),
    AOA_ISSUER_SIGNING_ALG: process.env.AOA_ISSUER_SIGNING_ALG,
    AOA_TLS_CERT_FILE: process.env.AOA_TLS_CERT_FILE,
    AOA_TLS_KEY_FILE: process.env.AOA_TLS_KEY_FILE,
    AOA_ISSUER_TLS_CLIENT_CA_FILE: process.env.AOA_ISSUER_TLS_CLIENT_CA_FILE,
    AOA_ISSUER_GRPC_LISTEN: '127.0.0.1:0',
    AOA_ISSUER_HTTP_LISTEN: '127.0.0.1:0',
  }),
  { logger: createLogger({ service: 'issuer', level: 'warn' }) },
).start();
stopOn(() => issuer.stop());
announce({
  issuer: issuer.issuer,
  grpcPort: issuer.grpcPort,
  httpPort: issuer.httpPort,
  grpcUrl: issuer.grpcUrl,
});
