#!/usr/bin/env node
// An HCP Terraform (Terraform Cloud) run exchanges its workload identity token for a key-bound ipam
// credential and calls ipam with it; main.tf runs this from a local-exec provisioner, so only the apply
// phase runs it, and aoa's policy refuses the plan phase's token anyway.
//
//   AOA_ISSUER                    aoa's issuer identifier (its token endpoint is discovered from it)
//   TFC_WORKLOAD_IDENTITY_TOKEN   set by HCP Terraform in the run when the workspace has
//                                 TFC_WORKLOAD_IDENTITY_AUDIENCE (or `aoa dev token --profile terraform-cloud`)
//   AOA_CHILD_URL                 optional: ipam's endpoint, called with `POST` and the credential
//   AOA_CHILD, AOA_ENV, AOA_SCOPE default ipam, prod, write:subnets
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
    workloadToken: required('TFC_WORKLOAD_IDENTITY_TOKEN'),
    child: process.env.AOA_CHILD ?? 'ipam',
    environment: process.env.AOA_ENV ?? 'prod',
    scopes: (process.env.AOA_SCOPE ?? 'write:subnets').split(' '),
  });
  const issued = await exchangeToken(tokenEndpoint, form, key);
  const childUrl = process.env.AOA_CHILD_URL;
  const child = childUrl ? await callChildApp(childUrl, issued.access_token, key) : undefined;
  return { credential: summary(issued), ...(child ? { child } : {}) };
});
