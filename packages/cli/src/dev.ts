import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { buildAuditor, loadAuditorConfig } from '@aoa/auditor';
import { buildConsole, loadConsoleConfig } from '@aoa/console';
import { createLogger, type Logger } from '@aoa/core';
import { buildIssuer, loadIssuerConfig } from '@aoa/issuer';
import { rotator as pb } from '@aoa/proto';
import { buildRevoker, loadRevokerConfig } from '@aoa/revoker';
import { buildRotator, loadRotatorConfig } from '@aoa/rotator';
import { startIdp } from '@aoa/testkit';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { exportJWK } from 'jose';
import { callAs, type ServiceCaller } from './caller.js';
import { type DevNats, startDevNats } from './dev-nats.js';
import { devPolicy } from './dev-policy.js';
import { devVendorPolicy } from './dev-vendor-policy.js';
import { type DevVendorFacts, startDevVendors } from './dev-vendors.js';

export const DEV_IDP_AUDIENCE = 'https://aoa.dev';
const DEMO_GRANT = { sub: 'idp:dev:orchestrator', child: 'dashboards', environment: 'prod' } as const;

/** What `aoa dev` writes to `.aoa/dev.json`, so scripts (and `aoa delegate --dev`) can drive it. */
export interface DevFacts {
  warning: string;
  dataDir: string;
  natsUrl: string;
  policyFile: string;
  issuer: { issuer: string; grpc: string; grpcUrl: string; http: string; jwksUri: string; metadata: string };
  /** The revoker: `grpc` is host:port for `aoa revoke --dev`, `grpcUrl` the prefix of DPoP `htu`s. */
  revoker: { grpc: string; grpcUrl: string; http: string };
  rotator: { grpc: string; http: string };
  /** The auditor and where it keeps the embedded (PGlite) audit store. */
  auditor: { grpc: string; http: string; store: string };
  /** A standing grant for a demo agent, and a one-time join token for it (valid a day, used once). */
  demoAgent: {
    grantId: string;
    child: string;
    environment: string;
    joinToken: string;
    joinTokenExpiresAt: number;
  };
  idp: { issuer: string; tokenEndpoint: string; audience: string };
  orchestrator: { clientId: string; idpClientId: string; idpClientSecret: string; privateJwk: object };
  admin: { clientId: string; idpClientId: string; idpClientSecret: string; privateJwk: object };
  /** Vendor-shaped IdPs (GitHub Actions, GitLab CI, Kubernetes, Terraform Cloud, Okta, Entra ID) by policy namespace. */
  vendorIdps: Record<string, DevVendorFacts>;
  /** The bearer secret of every `vendorIdps[ns].tokenUrl` (what `aoa dev token` calls). */
  vendorTokenSecret: string;
  /** The web console, and the people who can sign in to it at the dev IdP. */
  console: { url: string; users: Array<{ login: string; password: string; groups: string[] }> };
}

/**
 * People of the dev IdP: an administrator of the console, a developer who owns the `orchestrator`
 * client (the console shows him its grants and tokens only), and a contractor it shows nothing to.
 */
const DEV_PEOPLE = [
  { login: 'alice', name: 'Alice (platform admin)', groups: ['platform-admins'] },
  { login: 'bob', name: 'Bob (developer)', groups: ['developers'] },
  { login: 'carol', name: 'Carol (contractor)', groups: [] },
];

/**
 * `aoa dev`: the whole credential plane on this machine with embedded defaults, like `vault server
 * -dev`. Plaintext on loopback only. Resolves once everything is up; the returned stop() tears down.
 */
export async function startDev(options: {
  dataDir: string;
  logLevel: string;
  /** Called as each part starts (the CLI prints it: starting takes several seconds). */
  progress?: (step: string) => void;
}): Promise<{ facts: DevFacts; stop(): Promise<void> }> {
  const progress = options.progress ?? (() => undefined);
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const logger = createLogger({ service: 'aoa-dev', level: options.logLevel });
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    let natsUrl = process.env.NATS_URL;
    if (!natsUrl) {
      progress('nats-server');
      const nats: DevNats = await startDevNats(join(dataDir, 'nats'));
      stops.push(nats.stop);
      natsUrl = nats.url;
    }
    await waitForJetStream(natsUrl, logger);

    const secret = () => randomBytes(18).toString('base64url');
    const orchestratorSecret = secret();
    const adminSecret = secret();
    const people = DEV_PEOPLE.map((person) => ({ ...person, password: secret() }));
    progress('the development IdP');
    const idp = await startIdp({
      clients: [
        { clientId: 'orchestrator', clientSecret: orchestratorSecret, groups: ['platform'] },
        { clientId: 'admin', clientSecret: adminSecret, groups: ['sre'] },
      ],
      users: people,
    });
    stops.push(() => idp.stop());
    progress(
      'the vendor-shaped IdPs (GitHub Actions, GitLab CI, Kubernetes, Terraform Cloud, Okta, Entra ID)',
    );
    const vendors = await startDevVendors(DEV_IDP_AUDIENCE);
    stops.push(vendors.stop);

    const orchestratorKey = generateKeyPairSync('ed25519').privateKey;
    const adminKey = generateKeyPairSync('ed25519').privateKey;
    const consoleKey = generateKeyPairSync('ed25519').privateKey;
    const publicOf = async (key: typeof orchestratorKey, kid: string) => {
      const { d: _private, ...pub } = await exportJWK(key);
      return { ...pub, kid };
    };
    const policyFile = join(dataDir, 'policy.yaml');
    await writeFile(
      policyFile,
      devPolicy(
        idp.issuer,
        DEV_IDP_AUDIENCE,
        {
          orchestrator: await publicOf(orchestratorKey, 'orchestrator-1'),
          admin: await publicOf(adminKey, 'admin-1'),
          console: await publicOf(consoleKey, 'console-1'),
        },
        devVendorPolicy(vendors.policyIssuers, DEV_IDP_AUDIENCE),
      ),
    );

    progress('the issuer');
    const issuer = await buildIssuer(
      loadIssuerConfig({
        NATS_URL: natsUrl,
        AOA_POLICY_FILE: policyFile,
        AOA_ISSUER_GRPC_LISTEN: process.env.AOA_ISSUER_GRPC_LISTEN ?? '127.0.0.1:0',
        AOA_ISSUER_HTTP_LISTEN: process.env.AOA_ISSUER_HTTP_LISTEN ?? '127.0.0.1:0',
        LOG_LEVEL: options.logLevel,
      }),
      { logger, defaultMetrics: true },
    ).start();
    stops.push(() => issuer.stop());

    progress('the revoker');
    const revoker = await buildRevoker(
      loadRevokerConfig({
        NATS_URL: natsUrl,
        AOA_POLICY_FILE: policyFile,
        AOA_ISSUER_URL: issuer.issuer,
        AOA_REVOKER_GRPC_LISTEN: process.env.AOA_REVOKER_GRPC_LISTEN ?? '127.0.0.1:0',
        AOA_REVOKER_HTTP_LISTEN: process.env.AOA_REVOKER_HTTP_LISTEN ?? '127.0.0.1:0',
        LOG_LEVEL: options.logLevel,
      }),
      { logger },
    ).start();
    stops.push(() => revoker.stop());

    progress('the rotator');
    const rotator = await buildRotator(
      loadRotatorConfig({
        NATS_URL: natsUrl,
        AOA_POLICY_FILE: policyFile,
        AOA_ISSUER_URL: issuer.issuer,
        AOA_ROTATOR_GRPC_LISTEN: process.env.AOA_ROTATOR_GRPC_LISTEN ?? '127.0.0.1:0',
        AOA_ROTATOR_HTTP_LISTEN: process.env.AOA_ROTATOR_HTTP_LISTEN ?? '127.0.0.1:0',
        LOG_LEVEL: options.logLevel,
      }),
      { logger },
    ).start();
    stops.push(() => rotator.stop());

    const auditStore = join(dataDir, 'audit');
    progress('the auditor (embedded PGlite store)');
    const auditor = await buildAuditor(
      loadAuditorConfig({
        NATS_URL: natsUrl,
        AOA_POLICY_FILE: policyFile,
        AOA_ISSUER_URL: issuer.issuer,
        AOA_AUDIT_DB: auditStore,
        AOA_AUDITOR_GRPC_LISTEN: process.env.AOA_AUDITOR_GRPC_LISTEN ?? '127.0.0.1:0',
        AOA_AUDITOR_HTTP_LISTEN: process.env.AOA_AUDITOR_HTTP_LISTEN ?? '127.0.0.1:0',
        LOG_LEVEL: options.logLevel,
      }),
      { logger },
    ).start();
    stops.push(() => auditor.stop());

    progress('the web console');
    const consoleSecret = secret();
    const consoleKeyFile = join(dataDir, 'console-client.jwk');
    const consoleSecretFile = join(dataDir, 'console-oidc-secret');
    await writeFile(
      consoleKeyFile,
      JSON.stringify({ ...(await exportJWK(consoleKey)), kid: 'console-1', alg: 'EdDSA' }),
      { mode: 0o600 },
    );
    await writeFile(consoleSecretFile, consoleSecret, { mode: 0o600 });
    const consoleApp = await buildConsole(
      loadConsoleConfig({
        AOA_CONSOLE_HTTP_LISTEN: process.env.AOA_CONSOLE_HTTP_LISTEN ?? '127.0.0.1:0',
        AOA_CONSOLE_OIDC_ISSUER: idp.issuer,
        AOA_CONSOLE_OIDC_CLIENT_ID: 'console',
        AOA_CONSOLE_OIDC_CLIENT_SECRET_FILE: consoleSecretFile,
        AOA_CONSOLE_OIDC_RESOURCE: DEV_IDP_AUDIENCE,
        AOA_CONSOLE_CLIENT_KEY_FILE: consoleKeyFile,
        AOA_ISSUER_URL: issuer.issuer,
        AOA_ISSUER_GRPC: `127.0.0.1:${issuer.grpcPort}`,
        AOA_AUDITOR_GRPC: `127.0.0.1:${auditor.grpcPort}`,
        AOA_AUDITOR_GRPC_URL: auditor.grpcUrl,
        AOA_REVOKER_GRPC: `127.0.0.1:${revoker.grpcPort}`,
        AOA_REVOKER_GRPC_URL: revoker.grpcUrl,
        AOA_ROTATOR_GRPC: `127.0.0.1:${rotator.grpcPort}`,
        AOA_ROTATOR_GRPC_URL: rotator.grpcUrl,
        LOG_LEVEL: options.logLevel,
      }),
      { logger },
    ).start();
    stops.push(() => consoleApp.stop());
    idp.addClient({
      clientId: 'console',
      clientSecret: consoleSecret,
      redirectUris: [`${consoleApp.url}/callback`],
    });

    const adminPrivateJwk = { ...(await exportJWK(adminKey)), kid: 'admin-1', alg: 'EdDSA' };
    const rotatorGrpc = `127.0.0.1:${rotator.grpcPort}`;
    progress('the demo grant and its join token');
    const demoAgent = await createDemoGrant({
      grpc: rotatorGrpc,
      issuer: issuer.issuer,
      clientId: 'admin',
      clientJwk: adminPrivateJwk,
    });
    const http = `http://127.0.0.1:${issuer.httpPort}`;
    const facts: DevFacts = {
      warning: 'development only: plaintext on loopback, keys in memory, secrets in this file',
      dataDir,
      natsUrl,
      policyFile,
      issuer: {
        issuer: issuer.issuer,
        grpc: `127.0.0.1:${issuer.grpcPort}`,
        grpcUrl: issuer.grpcUrl,
        http,
        jwksUri: `${http}/jwks`,
        metadata: `${http}/.well-known/oauth-authorization-server`,
      },
      revoker: {
        grpc: `127.0.0.1:${revoker.grpcPort}`,
        grpcUrl: revoker.grpcUrl,
        http: `http://127.0.0.1:${revoker.httpPort}`,
      },
      rotator: { grpc: rotatorGrpc, http: `http://127.0.0.1:${rotator.httpPort}` },
      auditor: {
        grpc: `127.0.0.1:${auditor.grpcPort}`,
        http: `http://127.0.0.1:${auditor.httpPort}`,
        store: auditStore,
      },
      demoAgent,
      idp: { issuer: idp.issuer, tokenEndpoint: idp.tokenEndpoint, audience: DEV_IDP_AUDIENCE },
      orchestrator: {
        clientId: 'orchestrator',
        idpClientId: 'orchestrator',
        idpClientSecret: orchestratorSecret,
        privateJwk: { ...(await exportJWK(orchestratorKey)), kid: 'orchestrator-1', alg: 'EdDSA' },
      },
      admin: {
        clientId: 'admin',
        idpClientId: 'admin',
        idpClientSecret: adminSecret,
        privateJwk: adminPrivateJwk,
      },
      vendorIdps: vendors.facts,
      vendorTokenSecret: vendors.secret,
      console: {
        url: consoleApp.url,
        users: people.map(({ login, password, groups }) => ({ login, password, groups })),
      },
    };
    await writeFile(join(dataDir, 'dev.json'), `${JSON.stringify(facts, null, 2)}\n`, { mode: 0o600 });
    return { facts, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

const rotatorClient = (address: string, channel: ChannelCredentials) =>
  new pb.RotatorClient(address, channel);

/** The demo agent's standing grant (dashboards in prod, rotated every 5 minutes) and its join token. */
async function createDemoGrant(admin: ServiceCaller): Promise<DevFacts['demoAgent']> {
  const { grant } = await callAs<pb.RotatorClient, pb.CreateGrantResponse>(
    admin,
    rotatorClient,
    (client, metadata, options, done) =>
      client.createGrant(
        pb.CreateGrantRequest.fromPartial({
          sub: DEMO_GRANT.sub,
          child: DEMO_GRANT.child,
          environment: DEMO_GRANT.environment,
          scopes: ['read:metrics'],
          audience: ['https://metrics.internal'],
          tokenTtlSeconds: 600,
          parentClient: 'orchestrator',
        }),
        metadata,
        options,
        done,
      ),
  );
  if (!grant) throw new Error('the rotator answered CreateGrant without a grant');
  const join = await callAs<pb.RotatorClient, pb.CreateJoinTokenResponse>(
    admin,
    rotatorClient,
    (client, metadata, options, done) =>
      client.createJoinToken({ grantId: grant.id, ttlSeconds: 86_400 }, metadata, options, done),
  );
  return {
    grantId: grant.id,
    child: DEMO_GRANT.child,
    environment: DEMO_GRANT.environment,
    joinToken: join.joinToken,
    joinTokenExpiresAt: join.expiresAt,
  };
}

async function waitForJetStream(url: string, log: Logger): Promise<void> {
  const deadline = Date.now() + 15_000;
  const nc = await connect({ servers: url });
  try {
    for (;;) {
      try {
        await (await jetstreamManager(nc)).getAccountInfo();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        log.debug('waiting for JetStream');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await nc.close();
  }
}

/** The short guide `aoa dev` prints, like `vault server -dev`. */
export function devGuide(f: DevFacts): string {
  return `
aoa dev is running (development only: plaintext on loopback, signing keys in memory, embedded defaults)

  NATS          ${f.natsUrl}
  issuer        ${f.issuer.issuer}
    gRPC        ${f.issuer.grpc}   (aoa.v1.Issuer, health, reflection)
    metadata    ${f.issuer.metadata}
    JWKS        ${f.issuer.jwksUri}
    metrics     ${f.issuer.http}/metrics
  revoker       ${f.revoker.grpc}   (aoa.v1.Revoker; metrics ${f.revoker.http}/metrics)
  rotator       ${f.rotator.grpc}   (aoa.v1.Rotator; metrics ${f.rotator.http}/metrics)
  auditor       ${f.auditor.grpc}   (aoa.v1.Auditor; metrics ${f.auditor.http}/metrics)
    store       ${f.auditor.store}   (embedded PGlite: development only)
  console       ${f.console.url}
${f.console.users.map((u) => `    sign in as  ${u.login} / ${u.password}   (${u.groups.join(', ')})`).join('\n')}
  dev IdP       ${f.idp.issuer}   (token endpoint ${f.idp.tokenEndpoint})
${Object.entries(f.vendorIdps)
  .map(([namespace, v]) => `  ${`${namespace} IdP`.padEnd(13)} ${v.issuer}   (profile ${v.profile})`)
  .join('\n')}
  policy        ${f.policyFile}
  facts (JSON)  ${join(f.dataDir, 'dev.json')}

Try it (in another terminal):
  # is everything up?
  npx aoa status --dev
  # an orchestrator exchanges its IdP token for a key-bound credential for child app "dashboards"
  npx aoa delegate --dev --child dashboards --env prod --scope read:metrics
  # the same as JSON: the token, and the holder key generated for the child
  npx aoa delegate --dev --child dashboards --env prod --scope read:metrics --json
  # a refusal names the rule: prod dashboards may not get write:config
  npx aoa delegate --dev --child dashboards --env prod --scope write:config
  # revoke that token (as the dev admin client), or every dashboards credential in prod
  npx aoa revoke --dev --jti <jti from above> --reason "leaked in a log"
  npx aoa revoke --dev --app dashboards --env prod --reason "rotate everything"
  npx aoa revocations list --dev
  # an agent beside the dashboards app: enrols with the demo join token, writes each fresh credential
  npx aoa agent --dev --agent-id web-1 --key-dir .aoa/agent-web-1 --out /tmp/dashboards.token
  npx aoa grants list --dev
  npx aoa grants rotate --dev ${f.demoAgent.grantId}
  # every step above, in the tamper-evident audit
  npx aoa audit query --dev --since 10m
  npx aoa audit verify --dev
  # the token a GitHub Actions job (or a pod, a Terraform run, Okta, Entra ID) would get, for docs/examples/
  npx aoa dev token --profile github-actions --claim ref=refs/heads/main
  # look at the published keys
  curl -s ${f.issuer.jwksUri}

Press Ctrl-C to stop everything.
`;
}
