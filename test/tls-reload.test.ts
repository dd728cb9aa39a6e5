import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, renameSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { issuer as pb } from '@aoa/proto';
import { status } from '@grpc/grpc-js';
import type { RunningIssuer } from '../services/issuer/src/app.js';
import {
  grpcRefusal,
  makeCa,
  makeCertificates,
  signCertificate,
  signClientCertificate,
  tlsCredentials,
} from './support/certificates.js';
import { makeKey } from './support/oauth.js';
import { callDelegate, startSystem, type TestSystem } from './support/system.js';

// A listener re-reads its TLS files: a renewed server certificate, a new key and a rotated client-CA
// bundle (a SPIRE trust bundle, say) take effect for new connections without a restart, and files
// that do not load together leave the listener serving what it had.
const ARGOCD_ID = 'spiffe://aoa.test/ns/argocd/sa/argocd-application-controller';
const SERVER_EXTENSIONS = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth';
const LIVE = { cert: 'live.pem', key: 'live-key.pem', clientCa: 'live-clients.pem' };

describe('TLS files reloaded as they change', () => {
  let sys: TestSystem;
  let issuer: RunningIssuer;
  const clients: pb.IssuerClient[] = [];

  const path = (name: string) => join(sys.dir, name);
  /** Replaces a live file the way Kubernetes and spiffe-helper do: write aside, then rename. */
  const install = (from: string, to: string) => {
    copyFileSync(path(from), path(`${to}.tmp`));
    renameSync(path(`${to}.tmp`), path(to));
  };
  /** An Issuer client on a fresh connection, trusting CA `ca`, presenting client certificate `name`. */
  const connect = (ca: string, name: string) => {
    const client = new pb.IssuerClient(`127.0.0.1:${issuer.grpcPort}`, tlsCredentials(sys.dir, ca, name), {
      'grpc.use_local_subchannel_pool': 1,
    });
    clients.push(client);
    return client;
  };
  const delegate = async (client: pb.IssuerClient) =>
    callDelegate(
      client,
      {
        subjectToken: await sys.idpToken('argocd-sa'),
        child: 'dashboards',
        environment: 'prod',
        scopes: ['read:metrics'],
        holderJkt: (await makeKey()).jkt,
      },
      {},
    );
  /** The metadata document over HTTPS on a fresh connection trusting CA `ca`. */
  const metadataOver = (ca: string) =>
    new Promise<number>((resolve, reject) =>
      httpsGet(
        `${issuer.issuer}/.well-known/oauth-authorization-server`,
        { ca: readFileSync(path(`${ca}.pem`)), agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      ).on('error', reject),
    );
  /** Resolves once `probe` resolves, retrying for up to 15 s (a reload every 100 ms), else fails. */
  const eventually = async <T>(what: string, probe: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        return await probe();
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`${what}: never happened (${String(error)})`);
        await sleep(100);
      }
    }
  };

  before(async () => {
    sys = await startSystem();
    makeCertificates(sys.dir);
    makeCa(sys.dir, 'ca2');
    signCertificate(sys.dir, 'server2', SERVER_EXTENSIONS, 'ca2');
    signClientCertificate(sys.dir, 'argocd', ARGOCD_ID);
    signClientCertificate(sys.dir, 'argocd2', ARGOCD_ID, 'ca2');
    install('server.pem', LIVE.cert);
    install('server-key.pem', LIVE.key);
    install('ca.pem', LIVE.clientCa);
    const policy = await readFile(sys.policyPath, 'utf8');
    await writeFile(
      sys.policyPath,
      policy.replace('  - id: argocd\n', `  - id: argocd\n    tls_client_auth_san_uri: ${ARGOCD_ID}\n`),
    );
    issuer = await sys.startIssuer({
      AOA_TLS_CERT_FILE: path(LIVE.cert),
      AOA_TLS_KEY_FILE: path(LIVE.key),
      AOA_ISSUER_TLS_CLIENT_CA_FILE: path(LIVE.clientCa),
      AOA_TLS_RELOAD_INTERVAL: '100ms',
    });
  });
  after(async () => {
    for (const client of clients) client.close();
    await issuer?.stop();
    await sys?.stop();
  });

  it('keeps serving the old files while the new ones do not load, then serves the new ones', async () => {
    const before = connect('ca', 'argocd');
    await delegate(before);
    assert.equal(await metadataOver('ca'), 200);

    // The renewed certificate arrives before its key: they do not match, so nothing changes.
    install('server2.pem', LIVE.cert);
    await eventually('the mismatch reported', async () =>
      assert.match(sys.logs.text(), /TLS files changed but do not load/),
    );
    await delegate(connect('ca', 'argocd'));
    assert.equal(await metadataOver('ca'), 200);

    // The key follows, and the client-CA bundle moves to the new CA.
    install('server2-key.pem', LIVE.key);
    install('ca2.pem', LIVE.clientCa);
    await eventually('a connection trusting the new CA', () => delegate(connect('ca2', 'argocd2')));
    // HTTPS reloads on its own timer, so it may follow gRPC a moment later.
    await eventually('HTTPS serving the new pair', async () => {
      assert.equal(await metadataOver('ca2'), 200);
      await assert.rejects(metadataOver('ca'), /self[- ]signed|unable to verify|certificate/i);
    });
    // A certificate from the CA that left the bundle counts as none.
    const stale = await grpcRefusal(delegate(connect('ca2', 'argocd')));
    assert.equal(stale.code, status.UNAUTHENTICATED);
    assert.match(stale.details, /caller proof required/);
    assert.ok((await delegate(before)).accessToken, 'a connection made before keeps its handshake');
    assert.match(sys.logs.text(), /TLS files reloaded/);
  });
});
