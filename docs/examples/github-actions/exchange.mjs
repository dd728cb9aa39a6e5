#!/usr/bin/env node
// A GitHub Actions job exchanges its OIDC token for a key-bound deploy-api credential and calls
// deploy-api with it. The credential and its DPoP key live only in this process.
//
//   AOA_ISSUER          aoa's issuer identifier (its token endpoint is discovered from it)
//   AOA_WORKLOAD_TOKEN  the job's OIDC token (see workflow.yml), or `aoa dev token --profile github-actions`
//   AOA_CHILD_URL       optional: deploy-api's endpoint, called with `POST` and the credential
//   AOA_CHILD, AOA_ENV, AOA_SCOPE   default deploy-api, prod, deploy:release
import {
  callChildApp,
  exchangeToken,
  generateDpopKey,
  required,
  run,
  summary,
  tokenEndpointOf,
  workloadExchangeForm,
} from '../lib/aoa-exchange.mjs';

run(async () => {
  const tokenEndpoint = await tokenEndpointOf(required('AOA_ISSUER'));
  const key = generateDpopKey();
  const form = workloadExchangeForm({
    workloadToken: required('AOA_WORKLOAD_TOKEN'),
    child: process.env.AOA_CHILD ?? 'deploy-api',
    environment: process.env.AOA_ENV ?? 'prod',
    scopes: (process.env.AOA_SCOPE ?? 'deploy:release').split(' '),
  });
  const issued = await exchangeToken(tokenEndpoint, form, key);
  const childUrl = process.env.AOA_CHILD_URL;
  const child = childUrl ? await callChildApp(childUrl, issued.access_token, key) : undefined;
  return { credential: summary(issued), ...(child ? { child } : {}) };
});
