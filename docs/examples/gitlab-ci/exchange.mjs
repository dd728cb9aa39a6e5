#!/usr/bin/env node
// A GitLab CI job exchanges its ID token for a key-bound deploy-api credential and calls deploy-api
// with it. The credential and its DPoP key live only in this process.
//
//   AOA_ISSUER          aoa's issuer identifier (its token endpoint is discovered from it)
//   AOA_WORKLOAD_TOKEN  the job's ID token (id_tokens in gitlab-ci.yml), or `aoa dev token --profile gitlab`
//   AOA_CHILD_URL       optional: deploy-api's endpoint, called with `POST` and the credential
//   AOA_CHILD, AOA_ENV, AOA_SCOPE   default deploy-api, prod, deploy:release
import { runWorkloadExchange } from '../lib/aoa-exchange.mjs';

runWorkloadExchange({
  tokenVariable: 'AOA_WORKLOAD_TOKEN',
  child: 'deploy-api',
  environment: 'prod',
  scopes: ['deploy:release'],
});
