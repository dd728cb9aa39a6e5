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
import { runWorkloadExchange } from '../lib/aoa-exchange.mjs';

runWorkloadExchange({
  tokenVariable: 'TFC_WORKLOAD_IDENTITY_TOKEN',
  child: 'ipam',
  environment: 'prod',
  scopes: ['write:subnets'],
});
