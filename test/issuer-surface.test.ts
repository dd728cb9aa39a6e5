import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BUCKETS, randomId, revocationKeys, STREAMS } from '@aoa/core';
import { health } from '@aoa/proto';
import { credentials, status } from '@grpc/grpc-js';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { type BusProbe, eventually, issuerMetadata, probeBus } from './support/bus.js';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { callDelegate, callIntrospect, startSystem, type TestSystem } from './support/system.js';

const BUF = fileURLToPath(new URL('../node_modules/.bin/buf', import.meta.url));
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

let sys: TestSystem;
let bus: BusProbe;
let holder: TestKey;

before(async () => {
  sys = await startSystem();
  bus = await probeBus(sys.nats.url);
  holder = await makeKey();
});
after(async () => {
  await bus?.close();
  await sys?.stop();
});

const argocd = async () => ({
  'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
});
const admin = async () => ({
  'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer),
});
const delegateHtu = () => `${sys.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`;

async function rootRequest() {
  return {
    subjectToken: await sys.idpToken('argocd-sa'),
    child: 'dashboards',
    environment: 'prod',
    scopes: ['read:metrics'],
    holderJkt: holder.jkt,
  };
}

/** dashboards (held by `holder`) hands jobs a token bound to `jobsKey`. */
async function toJobs(parent: string, jobsKey: TestKey) {
  return callDelegate(
    sys.client,
    {
      subjectToken: parent,
      child: 'jobs',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: jobsKey.jkt,
    },
    { dpop: await dpopProof(holder, 'POST', delegateHtu(), parent) },
  );
}

/** Resolves the gRPC error a call fails with; fails the test if it succeeds. */
async function grpcError(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: number; details: string };
  }
  assert.fail('expected the call to be refused');
}

async function verifyWithJwksUri(token: string) {
  const metadata = await issuerMetadata(sys.issuer);
  return jwtVerify(token, createRemoteJWKSet(new URL(String(metadata.jwks_uri))), {
    issuer: String(metadata.issuer),
    typ: 'at+jwt',
  });
}

function runBufCurl(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(BUF, ['curl', ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ exitCode: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

describe('gRPC surface', () => {
  it('answers health checks SERVING for the server and for aoa.v1.Issuer, NOT_FOUND for anything else', async () => {
    const client = new health.HealthClient(`127.0.0.1:${sys.issuer.grpcPort}`, credentials.createInsecure());
    const check = (service: string) =>
      new Promise<health.HealthCheckResponse>((resolve, reject) =>
        client.check({ service }, (error, response) => (error ? reject(error) : resolve(response))),
      );
    try {
      for (const service of ['', 'aoa.v1.Issuer']) {
        const { status: serving } = await check(service);
        assert.equal(serving, health.HealthCheckResponse_ServingStatus.SERVING, `service '${service}'`);
      }
      assert.equal((await grpcError(check('aoa.v1.Nope'))).code, status.NOT_FOUND);
    } finally {
      client.close();
    }
  });

  it('serves Delegate to buf curl through server reflection, and the token verifies against jwks_uri', async () => {
    const url = `${sys.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`;
    const body = JSON.stringify(await rootRequest());
    const ok = await runBufCurl([
      '--protocol',
      'grpc',
      '--http2-prior-knowledge',
      '-H',
      `client-assertion: ${(await argocd())['client-assertion']}`,
      '-d',
      body,
      url,
    ]);
    assert.equal(ok.exitCode, 0, ok.stderr);
    const response = JSON.parse(ok.stdout) as { accessToken: string; tokenType: string; jti: string };
    assert.equal(response.tokenType, 'DPoP');
    const { payload } = await verifyWithJwksUri(response.accessToken);
    assert.equal(payload.jti, response.jti);
    assert.deepEqual(payload.cnf, { jkt: holder.jkt });

    const refused = await runBufCurl(['--protocol', 'grpc', '--http2-prior-knowledge', '-d', body, url]);
    assert.equal(refused.exitCode, status.UNAUTHENTICATED * 8, refused.stderr);
    assert.equal(refused.stdout.includes('accessToken'), false);
  });
});

describe('HTTP surface', () => {
  const http = (path: string, init?: RequestInit) =>
    fetch(`http://127.0.0.1:${sys.issuer.httpPort}${path}`, init);

  it('answers health, readiness and metrics', async () => {
    assert.equal((await http('/healthz')).status, 200);
    const ready = await http('/readyz');
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { ready: boolean }).ready, true);
    await callDelegate(sys.client, await rootRequest(), await argocd());
    const metrics = await (await http('/metrics')).text();
    assert.match(metrics, /^aoa_issuer_delegations_total\{outcome="issued",code="ok"\} [1-9]/m);
  });

  it('publishes RFC 8414 metadata whose issuer is the iss of every token', async () => {
    const metadata = await issuerMetadata(sys.issuer);
    const { accessToken } = await callDelegate(sys.client, await rootRequest(), await argocd());
    assert.equal(metadata.issuer, decodeJwt(accessToken).iss);
    assert.equal(new URL(String(metadata.jwks_uri)).origin, new URL(String(metadata.issuer)).origin);
    assert.ok((metadata.grant_types_supported as string[]).includes(TOKEN_EXCHANGE));
    const dpopAlgs = metadata.dpop_signing_alg_values_supported as string[];
    assert.ok(dpopAlgs.includes('EdDSA') && dpopAlgs.includes('ES256'));
    assert.ok(!dpopAlgs.some((alg) => alg === 'none' || alg.startsWith('HS')));
  });

  it('answers an unknown path with a JSON 404', async () => {
    const response = await http('/no/such/thing');
    assert.equal(response.status, 404);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await response.json(), { error: 'not found' });
  });
});

describe('fail closed', () => {
  it('refuses Delegate with UNAVAILABLE and no token while AOA_AUDIT is full, and recovers when it has room', async () => {
    const info = await bus.jsm.streams.info(STREAMS.audit);
    const full = { ...info.config, max_bytes: info.state.bytes };
    await bus.jsm.streams.update(STREAMS.audit, full);
    try {
      const error = await grpcError(callDelegate(sys.client, await rootRequest(), await argocd()));
      assert.equal(error.code, status.UNAVAILABLE, error.details);
      assert.match(error.details, /audit/);
      const refusedState = (await bus.jsm.streams.info(STREAMS.audit)).state;
      assert.equal(refusedState.messages, info.state.messages, 'an event got past the full stream');
    } finally {
      await bus.jsm.streams.update(STREAMS.audit, info.config);
    }
    const response = await callDelegate(sys.client, await rootRequest(), await argocd());
    await verifyWithJwksUri(response.accessToken);
  });
});

describe('secrets stay out of logs and errors', () => {
  it('logs no IdP token, access token, client assertion or DPoP proof, nor any signature of one', async () => {
    const secrets: string[] = [];
    const details: string[] = [];
    const keep = <T extends string>(value: T): T => {
      secrets.push(value);
      return value;
    };
    const refusal = async (promise: Promise<unknown>, code: status) => {
      const error = await grpcError(promise);
      assert.equal(error.code, code, error.details);
      details.push(error.details);
    };

    const request = { ...(await rootRequest()) };
    keep(request.subjectToken);
    const assertion = keep((await argocd())['client-assertion']);
    const root = await callDelegate(sys.client, request, { 'client-assertion': assertion });
    keep(root.accessToken);

    const jobsKey = await makeKey('ES256');
    const proof = keep(await dpopProof(holder, 'POST', delegateHtu(), root.accessToken));
    const childRequest = {
      subjectToken: root.accessToken,
      child: 'jobs',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: jobsKey.jkt,
    };
    const child = await callDelegate(sys.client, childRequest, { dpop: proof });
    keep(child.accessToken);

    const impostor = await makeKey();
    const forged = keep(await clientAssertion('argocd', impostor, sys.issuer.issuer));
    await refusal(callDelegate(sys.client, request, { 'client-assertion': forged }), status.UNAUTHENTICATED);
    await refusal(
      callDelegate(sys.client, request, { 'client-assertion': assertion }),
      status.UNAUTHENTICATED,
    );
    await refusal(callDelegate(sys.client, childRequest, { dpop: proof }), status.UNAUTHENTICATED);
    const scopeAssertion = keep((await argocd())['client-assertion']);
    await refusal(
      callDelegate(sys.client, { ...request, scopes: ['admin'] }, { 'client-assertion': scopeAssertion }),
      status.PERMISSION_DENIED,
    );
    await refusal(
      callDelegate(sys.client, { ...request, subjectToken: `${request.subjectToken}x` }, await argocd()),
      status.UNAUTHENTICATED,
    );
    const introspection = keep((await admin())['client-assertion']);
    const answer = await callIntrospect(sys.client, child.accessToken, { 'client-assertion': introspection });
    assert.equal(answer.active, true);

    const logs = sys.logs.text();
    assert.ok(
      logs.includes(root.jti) && logs.includes(child.jti),
      'issued jtis are not in the captured logs',
    );
    assert.match(logs, /request refused/);
    for (const secret of secrets) {
      const signature = secret.split('.')[2];
      assert.ok(signature && signature.length >= 40, 'not a signed compact JWT');
      for (const [where, text] of [['logs', logs], ...details.map((d) => ['error details', d])] as const) {
        assert.ok(!text.includes(secret), `a token reached the ${where}`);
        assert.ok(!text.includes(signature), `a token signature reached the ${where}`);
      }
    }
  });
});

describe('revocation', () => {
  it('answers inactive for a token whose ancestor is revoked, and refuses to delegate from it', async () => {
    const root = await callDelegate(sys.client, await rootRequest(), await argocd());
    const jobsKey = await makeKey();
    const child = await toJobs(root.accessToken, jobsKey);
    assert.equal((await callIntrospect(sys.client, child.accessToken, await admin())).active, true);

    const revocations = await bus.bucket(BUCKETS.revocations);
    await revocations.put(
      revocationKeys.jti(root.jti),
      JSON.stringify({ id: randomId(), at_ms: Date.now(), reason: 'test: parent compromised' }),
    );
    await eventually('the issuer to see the revocation', async () => {
      const answer = await callIntrospect(sys.client, child.accessToken, await admin());
      return answer.active ? undefined : answer;
    });
    assert.deepEqual(
      { ...(await callIntrospect(sys.client, child.accessToken, await admin())) },
      { ...(await callIntrospect(sys.client, 'not-a-token', await admin())) },
    );

    const reportsKey = await makeKey();
    const error = await grpcError(
      callDelegate(
        sys.client,
        {
          subjectToken: child.accessToken,
          child: 'reports',
          environment: 'prod',
          scopes: ['read:metrics'],
          holderJkt: reportsKey.jkt,
        },
        { dpop: await dpopProof(jobsKey, 'POST', delegateHtu(), child.accessToken) },
      ),
    );
    assert.equal(error.code, status.PERMISSION_DENIED, error.details);
    assert.match(error.details, /revoked/);
  });
});
