// The peer: the testkit's oidc-provider, in its own process under `taskset -c 1`. It also issues the
// one subject token the Delegate runs present.
// With BENCH_IDP_PKJWT_JWK (a public JWK), a second client `bench-pkjwt` authenticates with
// private_key_jwt: the peer under the same client authentication aoa requires.
// With BENCH_TLS_DIR (server.pem, server-key.pem), it also answers over HTTPS: the peer behind TLS.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdp } from '@aoa/testkit';
import { announce, requiredEnv, stopOn } from './child.js';

const tlsDir = process.env.BENCH_TLS_DIR;

const pkjwt = process.env.BENCH_IDP_PKJWT_JWK;
const idp = await startIdp({
  clients: [
    {
      clientId: requiredEnv('BENCH_IDP_CLIENT_ID'),
      clientSecret: requiredEnv('BENCH_IDP_CLIENT_SECRET'),
      groups: ['platform'],
    },
    ...(pkjwt
      ? [{ clientId: 'bench-pkjwt', clientSecret: 'unused-with-private-key-jwt', jwks: [JSON.parse(pkjwt)] }]
      : []),
  ],
  ...(tlsDir
    ? {
        tls: {
          cert: readFileSync(join(tlsDir, 'server.pem')),
          key: readFileSync(join(tlsDir, 'server-key.pem')),
        },
      }
    : {}),
});
stopOn(() => idp.stop());
announce({ issuer: idp.issuer, tokenEndpoint: idp.tokenEndpoint, tlsTokenEndpoint: idp.tlsTokenEndpoint });
