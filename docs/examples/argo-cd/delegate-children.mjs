#!/usr/bin/env node
// Argo CD's application controller, as a federated client with its projected service-account token,
// gets one credential for the root app (platform-apps, bound to its own fresh DPoP key), then
// sub-delegates one credential per child Application, each bound to a key of its own, and writes each
// with its key to <AOA_OUT_DIR>/<app>.json (mode 0600).
//
//   node delegate-children.mjs dashboards jobs
//
//   AOA_ISSUER               aoa's issuer identifier (its token endpoint is discovered from it)
//   AOA_WORKLOAD_TOKEN_FILE  the projected token, default /var/run/secrets/aoa/token (see manifests/)
//   AOA_WORKLOAD_TOKEN       the token itself instead, e.g. `aoa dev token --profile kubernetes`
//   AOA_OUT_DIR              where the credentials go, default ./credentials
//   AOA_ROOT_APP, AOA_ENV, AOA_SCOPE   default platform-apps, prod, read:metrics
//
// A workload token mints once (its jti is single use): the kubelet writes a fresh one at 80% of its
// life, so a run that finds the token it used last time changes nothing and says so.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  claimsOf,
  exchangeToken,
  generateDpopKey,
  required,
  run,
  summary,
  TOKEN_EXCHANGE,
  TOKEN_TYPE_ACCESS_TOKEN,
  tokenEndpointOf,
  workloadExchangeForm,
} from '../lib/aoa-exchange.mjs';

const children = process.argv.slice(2);
if (children.length === 0) {
  process.stderr.write('usage: delegate-children.mjs CHILD_APP [CHILD_APP ...]\n');
  process.exit(2);
}

run(async () => {
  const tokenEndpoint = await tokenEndpointOf(required('AOA_ISSUER'));
  const workloadToken =
    process.env.AOA_WORKLOAD_TOKEN ??
    (await readFile(process.env.AOA_WORKLOAD_TOKEN_FILE ?? '/var/run/secrets/aoa/token', 'utf8')).trim();
  const outDir = process.env.AOA_OUT_DIR ?? 'credentials';
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  const lastJtiFile = join(outDir, '.workload-jti');
  const { jti } = claimsOf(workloadToken);
  if ((await readFile(lastJtiFile, 'utf8').catch(() => '')) === jti) {
    return {
      skipped: 'the workload token is the one already exchanged: waiting for the kubelet to rotate it',
    };
  }
  const environment = process.env.AOA_ENV ?? 'prod';
  const scope = process.env.AOA_SCOPE ?? 'read:metrics';

  const controllerKey = generateDpopKey();
  const root = await exchangeToken(
    tokenEndpoint,
    workloadExchangeForm({
      workloadToken,
      child: process.env.AOA_ROOT_APP ?? 'platform-apps',
      environment,
      scopes: scope.split(' '),
    }),
    controllerKey,
  );
  await writeFile(lastJtiFile, jti, { mode: 0o600 });

  const delegated = [];
  for (const child of children) {
    // The child's credential is bound to the child's key; the controller proves the root credential.
    const childKey = generateDpopKey();
    const form = {
      grant_type: TOKEN_EXCHANGE,
      subject_token: root.access_token,
      subject_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      aoa_child: child,
      aoa_environment: environment,
      aoa_holder_jkt: childKey.jkt,
      scope,
    };
    const issued = await exchangeToken(tokenEndpoint, form, controllerKey, {
      accessToken: root.access_token,
    });
    const file = join(outDir, `${child}.json`);
    const credential = {
      access_token: issued.access_token,
      token_type: issued.token_type,
      expires_in: issued.expires_in,
      dpop_private_jwk: childKey.privateKey.export({ format: 'jwk' }),
    };
    await writeFile(file, `${JSON.stringify(credential)}\n`, { mode: 0o600 });
    delegated.push({ app: child, file, ...summary(issued) });
  }
  return { root: summary(root), children: delegated };
});
