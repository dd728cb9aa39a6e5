// The peer: the testkit's oidc-provider, in its own process under `taskset -c 1`. It also issues the
// one subject token the Delegate runs present.
import { startIdp } from '@aoa/testkit';
import { announce, requiredEnv, stopOn } from './child.js';

const idp = await startIdp({
  clients: [
    {
      clientId: requiredEnv('BENCH_IDP_CLIENT_ID'),
      clientSecret: requiredEnv('BENCH_IDP_CLIENT_SECRET'),
      groups: ['platform'],
    },
  ],
});
stopOn(() => idp.stop());
announce({ issuer: idp.issuer, tokenEndpoint: idp.tokenEndpoint });
