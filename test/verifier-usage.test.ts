import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createVerifier, protect, type ScopeUsageReport, type Verifier, VerifyError } from '@aoa/sdk';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

const AUDIENCE = 'https://metrics.internal';
const URL_ = `${AUDIENCE}/api`;

let sys: TestSystem;
let nc: NatsConnection;
let watcher: NatsConnection;
let holder: TestKey;
let accessToken: string;

before(async () => {
  sys = await startSystem();
  nc = await connect({ servers: sys.nats.url });
  watcher = await connect({ servers: sys.nats.url });
  holder = await makeKey();
  ({ accessToken } = await rootDelegateAsArgocd(sys, {
    scopes: ['read:metrics'],
    holderJkt: holder.jkt,
    ttlSeconds: 300,
  }));
});
after(async () => {
  await watcher?.close();
  await nc?.close();
  await sys?.stop();
});

const request = async (scopes?: string[]) => ({
  authorization: `DPoP ${accessToken}`,
  dpop: await dpopProof(holder, 'GET', URL_, accessToken),
  method: 'GET',
  url: URL_,
  ...(scopes ? { scopes } : {}),
});

const verifierWith = async (usageIntervalMs?: number): Promise<Verifier> => {
  const verifier = createVerifier({
    issuer: sys.issuer.issuer,
    audience: AUDIENCE,
    nats: nc,
    ...(usageIntervalMs === undefined ? {} : { usageIntervalMs }),
  });
  await verifier.whenReady();
  return verifier;
};

/** Subscribes to every usage report; resolves once the server has the subscription. */
const watchUsage = async (): Promise<{ sub: Subscription; reports: ScopeUsageReport[] }> => {
  const sub = watcher.subscribe('aoa.usage.>');
  const reports: ScopeUsageReport[] = [];
  void (async () => {
    for await (const msg of sub) {
      // Only this token's env/app verifies here: any other subject shows up as a failing report.
      reports.push(
        msg.subject === 'aoa.usage.prod.dashboards'
          ? msg.json<ScopeUsageReport>()
          : ({ subject: msg.subject } as unknown as ScopeUsageReport),
      );
    }
  })();
  await watcher.flush();
  return { sub, reports };
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const until = async (done: () => boolean, timeoutMs = 3000) => {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(20);
  }
};

describe('required scopes', () => {
  it('a token with the scope passes; one without it is refused insufficient_scope (403) with the scope challenge', async () => {
    const verifier = await verifierWith(0);
    try {
      const claims = await verifier.verify(await request(['read:metrics']));
      assert.equal(claims.scope, 'read:metrics');
      await assert.rejects(verifier.verify(await request(['write:metrics'])), (error: unknown) => {
        assert.ok(error instanceof VerifyError, String(error));
        assert.equal(error.code, 'insufficient_scope');
        assert.equal(error.status, 403);
        assert.match(error.reason, /lacks scope write:metrics/);
        assert.match(error.wwwAuthenticate, /^DPoP algs="[^"]+", error="insufficient_scope"/);
        assert.match(error.wwwAuthenticate, /scope="write:metrics"/);
        return true;
      });
      await assert.rejects(
        verifier.verify(await request(['read:metrics', 'write:metrics'])),
        (error: unknown) =>
          error instanceof VerifyError && /scope="read:metrics write:metrics"/.test(error.wwwAuthenticate),
      );
      const metrics = await verifier.registry.getSingleMetricAsString('aoa_verifier_verifications_total');
      assert.match(metrics, /result="refused",code="insufficient_scope",reason=""\} 2/);
    } finally {
      verifier.close();
    }
  });

  it('protect() passes ProtectOptions.scopes into verify', async () => {
    const verifier = await verifierWith(0);
    let server: Server | undefined;
    try {
      server = createServer(
        protect(
          verifier,
          (_req, res, claims) => {
            res.end(claims.sub);
          },
          {
            origin: AUDIENCE,
            scopes: ['write:metrics'],
          },
        ),
      );
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/api`, {
        headers: {
          authorization: `DPoP ${accessToken}`,
          dpop: await dpopProof(holder, 'GET', URL_, accessToken),
        },
      });
      assert.equal(res.status, 403);
      assert.match(
        res.headers.get('www-authenticate') ?? '',
        /error="insufficient_scope".*scope="write:metrics"/,
      );
      assert.equal(((await res.json()) as { error: string }).error, 'insufficient_scope');
    } finally {
      server?.close();
      verifier.close();
    }
  });
});

describe('scope usage reports', () => {
  it('publishes the scopes successful verifications needed, per env/app, every interval', async () => {
    const { sub, reports } = await watchUsage();
    const verifier = await verifierWith(100);
    try {
      await verifier.verify(await request()); // no scopes required: records nothing
      await sleep(350);
      assert.equal(reports.length, 0, JSON.stringify(reports));
      await verifier.verify(await request(['read:metrics']));
      await verifier.verify(await request(['read:metrics']));
      await assert.rejects(verifier.verify(await request(['write:metrics']))); // refused: not recorded
      await until(() => reports.length > 0);
      await sleep(250); // later windows are empty: nothing more is published
      // On a loaded machine the two verifications may fall in two windows: one report each.
      const scopes = new Set(reports.flatMap((r) => r.scopes));
      assert.deepEqual([...scopes], ['read:metrics']);
      assert.ok(reports.length <= 2, JSON.stringify(reports));
      for (const [i, report] of reports.entries()) {
        assert.deepEqual(Object.keys(report).sort(), ['app', 'env', 'from_ms', 'scopes', 'to_ms']);
        assert.equal(report.env, 'prod');
        assert.equal(report.app, 'dashboards');
        assert.ok(report.from_ms <= report.to_ms && report.to_ms <= Date.now());
        if (i > 0) assert.ok((reports[i - 1] as ScopeUsageReport).to_ms <= report.from_ms, 'windows overlap');
      }
    } finally {
      verifier.close();
      sub.unsubscribe();
    }
  });

  it('close() publishes the pending window once', async () => {
    const { sub, reports } = await watchUsage();
    const start = Date.now();
    const verifier = await verifierWith(); // default 60 s: only close() flushes within this test
    try {
      await verifier.verify(await request(['read:metrics']));
      await sleep(100);
      assert.equal(reports.length, 0, JSON.stringify(reports));
    } finally {
      verifier.close();
      verifier.close();
    }
    await nc.flush();
    await until(() => reports.length > 0);
    await sleep(100);
    sub.unsubscribe();
    assert.equal(reports.length, 1, JSON.stringify(reports));
    const report = reports[0] as ScopeUsageReport;
    assert.deepEqual(report.scopes, ['read:metrics']);
    assert.ok(report.from_ms >= start && report.from_ms <= report.to_ms);
  });
});
