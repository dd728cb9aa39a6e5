import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issuer as pb } from '@aoa/proto';
import { Metadata, status } from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import type { RunningIssuer } from '../services/issuer/src/app.js';
import { loadIssuerConfig } from '../services/issuer/src/config.js';
import {
  grpcRefusal,
  makeCa,
  makeCertificates,
  signCertificate,
  signClientCertificate,
  tlsCredentials,
} from './support/certificates.js';
import { aoa } from './support/cli.js';
import { clientAssertion, makeKey } from './support/oauth.js';
import { ACCESS_TOKEN, EXCHANGE, postOverTls } from './support/oauth-http.js';
import { callDelegate, callIntrospect, startSystem, type TestSystem } from './support/system.js';

// RFC 8705 tls_client_auth on the issuer's gRPC port: a client certificate whose URI SAN is registered
// for a client authenticates that client once per connection, with nothing in the call's metadata.
const ARGOCD_ID = 'spiffe://aoa.test/ns/argocd/sa/argocd-application-controller';
const CI_ID = 'spiffe://aoa.test/ns/ci/sa/runner';

describe('issuer: clients authenticated by their TLS client certificate (RFC 8705)', () => {
  let sys: TestSystem;
  let issuer: RunningIssuer;
  const clients: pb.IssuerClient[] = [];

  /** An Issuer client over TLS, with the named client certificate (or none). */
  const connect = (certificate?: string) => {
    const client = new pb.IssuerClient(
      `127.0.0.1:${issuer.grpcPort}`,
      tlsCredentials(sys.dir, 'ca', certificate),
    );
    clients.push(client);
    return client;
  };
  const argocdRequest = async (holderJkt: string) => ({
    subjectToken: await sys.idpToken('argocd-sa'),
    child: 'dashboards',
    environment: 'prod',
    scopes: ['read:metrics'],
    holderJkt,
  });
  const refusal = grpcRefusal;

  before(async () => {
    sys = await startSystem();
    const dir = sys.dir;
    makeCertificates(dir);
    makeCa(dir, 'rogue');
    signClientCertificate(dir, 'argocd', ARGOCD_ID);
    signClientCertificate(dir, 'ci', CI_ID);
    signClientCertificate(dir, 'stranger', 'spiffe://aoa.test/ns/other/sa/stranger');
    signClientCertificate(dir, 'forged', ARGOCD_ID, 'rogue');
    signCertificate(dir, 'both', `subjectAltName=URI:${ARGOCD_ID},URI:${CI_ID}\nextendedKeyUsage=clientAuth`);
    // argocd keeps its key as well as its certificate; ci is known by its certificate alone.
    const policy = (await readFile(sys.policyPath, 'utf8'))
      .replace('  - id: argocd\n', `  - id: argocd\n    tls_client_auth_san_uri: ${ARGOCD_ID}\n`)
      .replace(/ {2}- id: ci\n {4}jwks: .*\n/, `  - id: ci\n    tls_client_auth_san_uri: ${CI_ID}\n`);
    await writeFile(sys.policyPath, policy);
    issuer = await sys.startIssuer({
      AOA_TLS_CERT_FILE: join(dir, 'server.pem'),
      AOA_TLS_KEY_FILE: join(dir, 'server-key.pem'),
      AOA_ISSUER_TLS_CLIENT_CA_FILE: join(dir, 'ca.pem'),
    });
  });
  after(async () => {
    for (const client of clients) client.close();
    await issuer?.stop();
    await sys?.stop();
  });

  it('mints for the client its certificate names, with no client assertion, on every call of the connection', async () => {
    const client = connect('argocd');
    for (let i = 0; i < 3; i++) {
      const holder = await makeKey();
      const response = await callDelegate(client, await argocdRequest(holder.jkt), {});
      const claims = decodeJwt(response.accessToken);
      assert.equal(claims.client_id, 'client:argocd');
      assert.deepEqual(claims.cnf, { jkt: holder.jkt });
    }
    const named = await callDelegate(client, await argocdRequest((await makeKey()).jkt), {
      'client-id': 'argocd',
    });
    assert.equal(decodeJwt(named.accessToken).client_id, 'client:argocd', 'a client-id naming it agrees');
    const other = await refusal(
      callDelegate(client, await argocdRequest((await makeKey()).jkt), { 'client-id': 'ci' }),
    );
    assert.equal(other.code, status.UNAUTHENTICATED);
    assert.match(other.details, /client-id names another client than the TLS client certificate/);
  });

  it('authenticates a client registered with a certificate alone, for Delegate, DelegateBatch and Introspect', async () => {
    const client = connect('ci');
    const request = {
      subjectToken: await sys.idpToken('ci-runner'),
      child: 'jobs',
      environment: 'staging',
      scopes: ['run:job'],
    };
    const single = await callDelegate(client, request, {});
    assert.equal(decodeJwt(single.accessToken).client_id, 'client:ci');
    const batch = await new Promise<pb.DelegateBatchResponse>((resolve, reject) =>
      client.delegateBatch(
        pb.DelegateBatchRequest.fromPartial({
          subjectToken: request.subjectToken,
          items: [
            { child: 'jobs', environment: 'staging', scopes: ['run:job'] },
            { child: 'jobs', environment: 'staging', scopes: ['run:job'] },
          ],
        }),
        new Metadata(),
        (error, response) => (error ? reject(error) : resolve(response)),
      ),
    );
    assert.deepEqual(
      batch.results.map((r) => (r.issued ? decodeJwt(r.issued.accessToken).client_id : r.refused?.message)),
      ['client:ci', 'client:ci'],
    );
    const introspected = await callIntrospect(client, single.accessToken, {});
    assert.equal(introspected.active, true);
    assert.equal(introspected.clientId, 'client:ci');
  });

  it('keeps the certificate client within its own policy: it presents only the subjects it may', async () => {
    const error = await refusal(callDelegate(connect('ci'), await argocdRequest((await makeKey()).jkt), {}));
    assert.equal(error.code, status.PERMISSION_DENIED, error.details);
  });

  it('refuses a certificate from a trusted CA whose URI no client registered', async () => {
    const error = await refusal(
      callDelegate(connect('stranger'), await argocdRequest((await makeKey()).jkt), {}),
    );
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.match(error.details, /TLS client certificate authenticates no registered client/);
  });

  it("does not see a certificate from another CA, even one that claims argocd's URI", async () => {
    const error = await refusal(
      callDelegate(connect('forged'), await argocdRequest((await makeKey()).jkt), {}),
    );
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.match(error.details, /caller proof required/);
  });

  it('still serves callers without a certificate, who prove themselves in metadata', async () => {
    const client = connect();
    const request = await argocdRequest((await makeKey()).jkt);
    assert.equal((await refusal(callDelegate(client, request, {}))).code, status.UNAUTHENTICATED);
    const response = await callDelegate(client, request, {
      'client-assertion': await clientAssertion('argocd', sys.keys.argocd, issuer.issuer),
    });
    assert.equal(decodeJwt(response.accessToken).client_id, 'client:argocd');
  });

  it('lets a proof in metadata win over the connection certificate: a bad assertion is not rescued by it', async () => {
    const error = await refusal(
      callDelegate(connect('argocd'), await argocdRequest((await makeKey()).jkt), {
        'client-assertion': await clientAssertion('argocd', await makeKey(), issuer.issuer),
      }),
    );
    assert.equal(error.code, status.UNAUTHENTICATED);
  });

  it('aoa delegate proves the client with --tls-cert and --tls-key, with no client key', async () => {
    const dir = sys.dir;
    const tokenFile = join(dir, 'subject.jwt');
    await writeFile(tokenFile, await sys.idpToken('ci-runner'));
    const target = [
      '--grpc',
      `127.0.0.1:${issuer.grpcPort}`,
      '--issuer',
      issuer.issuer,
      '--tls-ca',
      join(dir, 'ca.pem'),
    ];
    const request = [
      '--subject-token-file',
      tokenFile,
      '--env',
      'staging',
      '--scope',
      'run:job',
      '--bearer',
      '--json',
    ];
    /** aoa delegate for `children` as the holder of certificate `name` (its key left out when not `withKey`). */
    const delegateAs = (name: string, children: string[], withKey = true) =>
      aoa(
        'delegate',
        ...target,
        '--tls-cert',
        join(dir, `${name}.pem`),
        ...(withKey ? ['--tls-key', join(dir, `${name}-key.pem`)] : []),
        ...children.flatMap((child) => ['--child', child]),
        ...request,
      );
    const single = await delegateAs('ci', ['jobs']);
    assert.equal(single.code, 0, single.stderr);
    assert.equal(
      decodeJwt((JSON.parse(single.stdout) as { accessToken: string }).accessToken).client_id,
      'client:ci',
    );
    const batch = await delegateAs('ci', ['jobs', 'jobs']);
    assert.equal(batch.code, 0, batch.stderr);
    assert.equal((JSON.parse(batch.stdout) as Array<{ issued?: unknown }>).filter((o) => o.issued).length, 2);
    const stranger = await delegateAs('stranger', ['jobs']);
    assert.equal(stranger.code, 3, stranger.stderr);
    assert.match(
      stranger.stderr,
      /aoa delegate: refused: UNAUTHENTICATED: the TLS client certificate authenticates no registered client/,
    );
    const half = await delegateAs('ci', ['jobs'], false);
    assert.equal(half.code, 2);
    assert.match(half.stderr, /a client certificate needs both --tls-cert and --tls-key/);
  });

  it('authenticates client_id by its certificate at the token, introspection and revocation endpoints (tls_client_auth)', async () => {
    const dir = sys.dir;
    const tls = (name?: string) => ({
      ca: readFileSync(join(dir, 'ca.pem')),
      ...(name
        ? { cert: readFileSync(join(dir, `${name}.pem`)), key: readFileSync(join(dir, `${name}-key.pem`)) }
        : {}),
    });
    const metadata = await new Promise<Record<string, unknown>>((resolve, reject) =>
      httpsGet(`${issuer.issuer}/.well-known/oauth-authorization-server`, tls(), (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve(JSON.parse(text)));
      }).on('error', reject),
    );
    for (const endpoint of ['token', 'introspection', 'revocation']) {
      assert.deepEqual(metadata[`${endpoint}_endpoint_auth_methods_supported`], [
        'private_key_jwt',
        'tls_client_auth',
      ]);
    }
    const exchange = async () => ({
      grant_type: EXCHANGE,
      subject_token: await sys.idpToken('ci-runner'),
      subject_token_type: ACCESS_TOKEN,
      aoa_child: 'jobs',
      aoa_environment: 'staging',
      scope: 'run:job',
      client_id: 'ci',
    });
    const token = `${issuer.issuer}/token`;
    const issued = await postOverTls(token, await exchange(), tls('ci'));
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const accessToken = issued.body.access_token as string;
    assert.equal(decodeJwt(accessToken).client_id, 'client:ci');
    // Another client's certificate, none, one its CA does not vouch for, or one naming two clients.
    for (const name of ['argocd', undefined, 'forged', 'both']) {
      const refused = await postOverTls(token, await exchange(), tls(name));
      assert.equal(refused.status, 401, `${name}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error, 'invalid_client');
    }
    const introspect = (name: string) =>
      postOverTls(`${issuer.issuer}/introspect`, { token: accessToken, client_id: name }, tls(name));
    assert.equal((await introspect('ci')).body.active, true, 'its requester sees it');
    assert.equal((await introspect('argocd')).body.active, false, 'another client does not');
    const revoked = await postOverTls(
      `${issuer.issuer}/revoke`,
      { token: accessToken, client_id: 'ci' },
      tls('ci'),
    );
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const introspected = await callIntrospect(connect('ci'), accessToken, {});
    assert.equal(introspected.active, false, 'the requester revoked its own token');
  });

  it('needs the TLS pair to ask for client certificates, and says so at start', () => {
    assert.throws(
      () =>
        loadIssuerConfig({
          NATS_URL: sys.nats.url,
          AOA_POLICY_FILE: sys.policyPath,
          AOA_ISSUER_TLS_CLIENT_CA_FILE: join(sys.dir, 'ca.pem'),
        }),
      /AOA_ISSUER_TLS_CLIENT_CA_FILE: client certificates need TLS: set AOA_TLS_CERT_FILE and AOA_TLS_KEY_FILE too/,
    );
  });
});
