import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { auditor as auditorPb, revoker as pb, rotator as rotatorPb } from '@aoa/proto';
import { Metadata, status } from '@grpc/grpc-js';
import { loadAuditorConfig } from '../services/auditor/src/config.js';
import { loadRevokerConfig } from '../services/revoker/src/config.js';
import { loadRotatorConfig } from '../services/rotator/src/config.js';
import { startAuditor, systemAccess, type TestAuditor } from './support/auditor.js';
import {
  grpcRefusal,
  makeCa,
  makeCertificates,
  signClientCertificate,
  tlsCredentials,
} from './support/certificates.js';
import { aoa } from './support/cli.js';
import { clientAssertion, makeKey } from './support/oauth.js';
import { callListRevocations, callRevoke, startRevoker } from './support/revoker.js';
import { callRotator, startRotator } from './support/rotator.js';
import { rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

// RFC 8705 on the revoker's, rotator's and auditor's gRPC ports, as on the issuer's: a client
// certificate whose URI SAN is registered for a client proves that client, with no client assertion.
const ARGOCD_ID = 'spiffe://aoa.test/ns/argocd/sa/argocd-application-controller';
const OPS_ID = 'spiffe://aoa.test/ns/ops/sa/oncall';

let sys: TestSystem;
const closers: Array<{ close(): void }> = [];
const serverTls = () => ({
  AOA_TLS_CERT_FILE: join(sys.dir, 'server.pem'),
  AOA_TLS_KEY_FILE: join(sys.dir, 'server-key.pem'),
});

const tls = (certificate?: string) => tlsCredentials(sys.dir, 'ca', certificate);
const refusal = grpcRefusal;

before(async () => {
  sys = await startSystem();
  const dir = sys.dir;
  makeCertificates(dir);
  makeCa(dir, 'rogue');
  signClientCertificate(dir, 'argocd', ARGOCD_ID);
  signClientCertificate(dir, 'ops', OPS_ID);
  signClientCertificate(dir, 'stranger', 'spiffe://aoa.test/ns/other/sa/stranger');
  signClientCertificate(dir, 'forged', OPS_ID, 'rogue');
  const policy = (await readFile(sys.policyPath, 'utf8'))
    .replace('  - id: argocd\n', `  - id: argocd\n    tls_client_auth_san_uri: ${ARGOCD_ID}\n`)
    .replace('  - id: ops\n', `  - id: ops\n    tls_client_auth_san_uri: ${OPS_ID}\n`);
  await writeFile(sys.policyPath, policy);
});
after(async () => {
  for (const c of closers) c.close();
  await sys?.stop();
});

describe('revoker: clients authenticated by their TLS client certificate (RFC 8705)', () => {
  let rev: Awaited<ReturnType<typeof startRevoker>>;
  const connect = (certificate?: string) => {
    const client = new pb.RevokerClient(`127.0.0.1:${rev.revoker.grpcPort}`, tls(certificate));
    closers.push(client);
    return client;
  };

  before(async () => {
    rev = await startRevoker(sys, {
      ...serverTls(),
      AOA_REVOKER_TLS_CLIENT_CA_FILE: join(sys.dir, 'ca.pem'),
    });
  });
  after(() => rev?.stop());

  it('a parent revokes a token it requested with its certificate alone, and the revocation names it', async () => {
    const holder = await makeKey();
    const { accessToken, jti } = await rootDelegateAsArgocd(sys, {
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
    });
    const argocd = connect('argocd');
    const revoked = await callRevoke(argocd, { jti, reason: 'rotated out' }, { 'aoa-token': accessToken });
    assert.equal(revoked.key, `jti.${jti}`);
    const denied = await refusal(
      callRevoke(argocd, { app: { environment: 'prod', child: 'dashboards' } }, {}),
    );
    assert.equal(denied.code, status.PERMISSION_DENIED, 'an app revocation stays for administrators');
    const listed = await callListRevocations(connect('ops'), { jti }, {});
    assert.deepEqual(
      listed.revocations.map((r) => [r.key, r.by]),
      [[`jti.${jti}`, 'client:argocd']],
    );
  });

  it('an administrator certificate carries the administrator rights', async () => {
    const revoked = await callRevoke(connect('ops'), { app: { environment: 'staging', child: 'jobs' } }, {});
    assert.equal(revoked.key, 'app.staging.jobs');
  });

  it('refuses a registered CA certificate naming no client, and does not see one from another CA', async () => {
    const stranger = await refusal(
      callRevoke(connect('stranger'), { app: { environment: 'staging', child: 'jobs' } }, {}),
    );
    assert.equal(stranger.code, status.UNAUTHENTICATED);
    assert.match(stranger.details, /the TLS client certificate authenticates no registered client/);
    const forged = await refusal(
      callRevoke(connect('forged'), { app: { environment: 'staging', child: 'jobs' } }, {}),
    );
    assert.equal(forged.code, status.UNAUTHENTICATED);
    assert.match(forged.details, /caller proof required/);
  });

  it('serves callers without a certificate, and never lets a certificate rescue a bad assertion', async () => {
    const plain = connect();
    const listed = await callListRevocations(
      plain,
      {},
      { 'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer) },
    );
    assert.ok(listed.revocations.length > 0);
    const forged = await clientAssertion('ops', sys.keys.argocd, sys.issuer.issuer);
    const rescued = await refusal(
      callRevoke(
        connect('ops'),
        { app: { environment: 'staging', child: 'jobs' } },
        { 'client-assertion': forged },
      ),
    );
    assert.equal(rescued.code, status.UNAUTHENTICATED);
  });

  it('aoa revoke and aoa revocations list take --tls-cert and --tls-key', async () => {
    const dir = sys.dir;
    const target = [
      '--grpc',
      `127.0.0.1:${rev.revoker.grpcPort}`,
      '--issuer',
      sys.issuer.issuer,
      '--tls-ca',
      join(dir, 'ca.pem'),
    ];
    const as = (name: string) => [
      '--tls-cert',
      join(dir, `${name}.pem`),
      '--tls-key',
      join(dir, `${name}-key.pem`),
    ];
    const revoked = await aoa(
      'revoke',
      ...target,
      ...as('ops'),
      '--app',
      'metrics',
      '--env',
      'prod',
      '--json',
    );
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(JSON.parse(revoked.stdout).key, 'app.prod.metrics');
    const listed = await aoa('revocations', 'list', ...target, ...as('ops'), '--kind', 'app', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(
      (JSON.parse(listed.stdout) as Array<{ key: string }>).some((r) => r.key === 'app.prod.metrics'),
    );
    const stranger = await aoa('revoke', ...target, ...as('stranger'), '--app', 'metrics', '--env', 'prod');
    assert.equal(stranger.code, 3, stranger.stderr);
    const half = await aoa(
      'revoke',
      ...target,
      '--tls-cert',
      join(dir, 'ops.pem'),
      '--app',
      'a',
      '--env',
      'e',
    );
    assert.equal(half.code, 2);
    assert.match(half.stderr, /needs both --tls-cert and --tls-key/);
  });
});

describe('rotator and auditor: clients authenticated by their TLS client certificate (RFC 8705)', () => {
  let rot: Awaited<ReturnType<typeof startRotator>>;
  let auditor: TestAuditor;
  let auditorDir: string;
  const rotator = (certificate?: string) => {
    const client = new rotatorPb.RotatorClient(`127.0.0.1:${rot.rotator.grpcPort}`, tls(certificate));
    closers.push(client);
    return client;
  };
  const auditorAs = (certificate?: string) => {
    const client = new auditorPb.AuditorClient(`127.0.0.1:${auditor.grpcPort}`, tls(certificate));
    closers.push(client);
    return client;
  };
  const listGrants = (client: rotatorPb.RotatorClient) =>
    callRotator<rotatorPb.ListGrantsRequest, rotatorPb.ListGrantsResponse>(client, client.listGrants, {
      environment: '',
      child: '',
    });
  const verifyChainAs = (certificate?: string) => {
    const client = auditorAs(certificate);
    return new Promise<auditorPb.VerifyChainResponse>((resolve, reject) =>
      client.verifyChain({}, new Metadata(), (error, response) =>
        error ? reject(error) : resolve(response),
      ),
    );
  };

  before(async () => {
    const clientCa = join(sys.dir, 'ca.pem');
    rot = await startRotator(sys, { ...serverTls(), AOA_ROTATOR_TLS_CLIENT_CA_FILE: clientCa });
    auditorDir = await mkdtemp(join(tmpdir(), 'aoa-mtls-audit-'));
    auditor = await startAuditor(
      sys.nats.url,
      auditorDir,
      { ...serverTls(), AOA_AUDITOR_TLS_CLIENT_CA_FILE: clientCa },
      systemAccess(sys),
    );
  });
  after(async () => {
    await rot?.stop();
    await auditor?.stop();
    if (auditorDir) await rm(auditorDir, { recursive: true, force: true });
  });

  it('the rotator serves a certified client as that client, and refuses a certificate naming none', async () => {
    const created = await callRotator<rotatorPb.CreateGrantRequest, rotatorPb.CreateGrantResponse>(
      rotator('ops'),
      rotator('ops').createGrant,
      rotatorPb.CreateGrantRequest.fromPartial({
        sub: 'idp:corp:grant-owner',
        child: 'dashboards',
        environment: 'prod',
        scopes: ['read:metrics'],
        tokenTtlSeconds: 300,
        parentClient: 'argocd',
      }),
    );
    const own = await listGrants(rotator('argocd'));
    assert.deepEqual(
      own.grants.map((g) => g.id),
      [created.grant?.id],
      'a parent client lists its own grants',
    );
    const stranger = await refusal(listGrants(rotator('stranger')));
    assert.equal(stranger.code, status.UNAUTHENTICATED);
    assert.match(stranger.details, /authenticates no registered client/);
    const none = await refusal(listGrants(rotator()));
    assert.equal(none.code, status.UNAUTHENTICATED);
    assert.match(none.details, /caller proof required/);
  });

  it('the auditor answers an administrator certificate and refuses a parent client one', async () => {
    const chain = await verifyChainAs('ops');
    assert.equal(chain.ok, true);
    const parent = await refusal(verifyChainAs('argocd'));
    assert.equal(parent.code, status.PERMISSION_DENIED);
    const forged = await refusal(verifyChainAs('forged'));
    assert.equal(forged.code, status.UNAUTHENTICATED);
  });
});

it('each service needs the TLS pair to ask for client certificates, and says so at start', () => {
  const base = { NATS_URL: sys.nats.url, AOA_POLICY_FILE: sys.policyPath, AOA_ISSUER_URL: sys.issuer.issuer };
  const ca = join(sys.dir, 'ca.pem');
  const loaders: Array<[string, (env: Record<string, string>) => unknown]> = [
    ['AOA_REVOKER_TLS_CLIENT_CA_FILE', loadRevokerConfig],
    ['AOA_ROTATOR_TLS_CLIENT_CA_FILE', loadRotatorConfig],
    ['AOA_AUDITOR_TLS_CLIENT_CA_FILE', loadAuditorConfig],
  ];
  for (const [variable, load] of loaders) {
    assert.throws(
      () => load({ ...base, [variable]: ca }),
      new RegExp(`${variable}: client certificates need TLS: set AOA_TLS_CERT_FILE and AOA_TLS_KEY_FILE too`),
    );
  }
});
