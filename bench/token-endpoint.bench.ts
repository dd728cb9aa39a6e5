// RFC 8693 token exchange over HTTP (`POST /token`, private_key_jwt, the parent acting alone) against
// the peer, oidc-provider's client_credentials grant with JWT access tokens, in the same run and with
// the same load generator (autocannon). Each server runs pinned to core 1; this process (the load
// generator) and nats-server run on core 0. Target (#15): at least 1.5x the peer's requests/s at equal
// concurrency with the same client authentication (private_key_jwt); the peer's shared-secret path is
// reported beside it. Then both over TLS: aoa with tls_client_auth (RFC 8705: a client certificate,
// no assertion) next to the peer's shared-secret path over HTTPS.
//
//   npx tsx bench/token-endpoint.bench.ts [--quick] [--duration-s 10] [--concurrency 16,64]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startNats } from '@aoa/testkit';
import { makeKey } from '../test/support/oauth.js';
import { postOverTls } from '../test/support/oauth-http.js';
import { IDP_AUDIENCE, testPolicy } from '../test/support/system.js';
import { signClientAssertions } from './lib/assertions.js';
import { makeBenchCertificates, withArgocdCertificate } from './lib/certificates.js';
import { pinSelf, REPO_ROOT, startPinnedChild } from './lib/procs.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    'duration-s': { type: 'string' },
    'warmup-s': { type: 'string' },
    concurrency: { type: 'string' },
  },
});
const DURATION_S = Number(args['duration-s'] ?? (args.quick ? 3 : 10));
const WARMUP_S = Number(args['warmup-s'] ?? (args.quick ? 1 : 3));
const CONCURRENCY = (args.concurrency ?? '16,64').split(',').map(Number);
const LOADGEN_CORE = 0;
const SERVER_CORE = 1;
const TARGET_RATIO = 1.5;
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const IDP_CLIENT = { id: 'argocd-sa', secret: 'argocd-secret' };
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
/** Pre-signed assertions per second of run time: far above any rate one core reaches. */
const POOL_PER_SECOND = 6000;

const log = (message: string) => console.error(`[bench] ${message}`);

// autocannon ships no type declarations; this is the part of its API the bench uses.
interface CannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
}
interface CannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  tlsOptions?: { cert: Buffer; key: Buffer };
  requests: Array<CannonRequest & { setupRequest?: (req: CannonRequest) => CannonRequest }>;
}) => Promise<CannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** Single-use RFC 7523 assertions, each with its own jti, signed before any timing starts. */

const basic = `Basic ${Buffer.from(`${IDP_CLIENT.id}:${IDP_CLIENT.secret}`).toString('base64')}`;
const FORM = 'application/x-www-form-urlencoded';

async function fetchIdpToken(tokenEndpoint: string): Promise<string> {
  const response = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: IDP_AUDIENCE }),
  });
  const body = (await response.json()) as { access_token?: string };
  if (!response.ok || !body.access_token) throw new Error(`IdP refused a token: ${JSON.stringify(body)}`);
  return body.access_token;
}

interface Measured {
  /**
   * `peer-pkjwt`: the peer with private_key_jwt client authentication, as aoa requires of its clients;
   * `aoa-mtls`: aoa over HTTPS with tls_client_auth; `peer-tls`: the peer's shared-secret path over HTTPS.
   */
  target: 'aoa' | 'peer' | 'peer-pkjwt' | 'aoa-mtls' | 'peer-tls';
  concurrency: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  total: number;
  non2xx: number;
  errors: number;
  exhausted: boolean;
}

/** A request per call with the next pre-signed assertion appended; the pool is never reused. */
function assertedRequests(path: string, body: string, pool: string[], state: { used: number }) {
  return [
    {
      method: 'POST',
      path,
      headers: { 'content-type': FORM },
      setupRequest: (req: CannonRequest): CannonRequest => {
        const assertion = pool[state.used++] ?? pool[pool.length - 1] ?? '';
        return { ...req, body: `${body}&client_assertion=${assertion}` };
      },
    },
  ];
}

const started = Date.now();
pinSelf(LOADGEN_CORE);
mkdirSync(RESULTS_DIR, { recursive: true });
const workDir = mkdtempSync(join(tmpdir(), 'aoa-bench-token-'));
const cleanup: Array<() => Promise<unknown>> = [];
const results: Measured[] = [];
let exitCode = 0;
try {
  // nats-server inherits this process's core-0 mask.
  const nats = await startNats();
  cleanup.push(() => nats.stop());
  const peerKey = await makeKey();
  // One CA for the TLS cells: the servers' certificate and argocd's client certificate.
  const certificates = makeBenchCertificates(workDir);
  const idp = await startPinnedChild<{ issuer: string; tokenEndpoint: string; tlsTokenEndpoint: string }>(
    'idp',
    'bench/servers/idp.ts',
    {
      core: SERVER_CORE,
      env: {
        BENCH_IDP_CLIENT_ID: IDP_CLIENT.id,
        BENCH_IDP_CLIENT_SECRET: IDP_CLIENT.secret,
        BENCH_IDP_PKJWT_JWK: JSON.stringify({ ...peerKey.publicJwk, kid: 'bench-pkjwt-1', alg: 'EdDSA' }),
        BENCH_TLS_DIR: workDir,
      },
    },
  );
  cleanup.push(() => idp.stop());
  const keys = { argocd: await makeKey(), ci: await makeKey('ES256'), admin: await makeKey() };
  const policyPath = join(workDir, 'policy.yaml');
  writeFileSync(policyPath, withArgocdCertificate(testPolicy(idp.info.issuer, keys)));
  const issuerEnv = {
    NATS_URL: nats.url,
    AOA_POLICY_FILE: policyPath,
    AOA_TOKEN_RATE_PER_SOURCE: '0',
    AOA_TOKEN_RATE_PER_CLIENT: '0',
  };
  const issuer = await startPinnedChild<{ issuer: string; httpPort: number }>(
    'issuer',
    'bench/servers/token-issuer.ts',
    { core: SERVER_CORE, env: issuerEnv },
  );
  cleanup.push(() => issuer.stop());
  const issuerMtls = await startPinnedChild<{ issuer: string; httpPort: number }>(
    'issuer-mtls',
    'bench/servers/token-issuer.ts',
    {
      core: SERVER_CORE,
      env: { ...issuerEnv, ...certificates.issuerEnv },
    },
  );
  cleanup.push(() => issuerMtls.stop());

  const holderJkt = (await makeKey()).jkt;
  const exchangeBody = new URLSearchParams({
    grant_type: EXCHANGE,
    subject_token: await fetchIdpToken(idp.info.tokenEndpoint),
    subject_token_type: ACCESS_TOKEN,
    aoa_child: 'dashboards',
    aoa_environment: 'prod',
    aoa_holder_jkt: holderJkt,
    scope: 'read:metrics',
    audience: 'https://dashboards.internal',
    client_assertion_type: JWT_BEARER,
  }).toString();
  const peerBody = new URLSearchParams({
    grant_type: 'client_credentials',
    resource: IDP_AUDIENCE,
  }).toString();
  const peerRequests = [
    {
      method: 'POST',
      path: new URL(idp.info.tokenEndpoint).pathname,
      headers: { authorization: basic, 'content-type': FORM },
      body: peerBody,
    },
  ];
  const aoaUrl = `http://127.0.0.1:${issuer.info.httpPort}`;
  // tls_client_auth: client_id in the form, the certificate on the connection, no assertion.
  const mtlsBody = exchangeBody.replace(
    `client_assertion_type=${encodeURIComponent(JWT_BEARER)}`,
    'client_id=argocd',
  );
  const mtlsRequests = [
    { method: 'POST', path: '/token', headers: { 'content-type': FORM }, body: mtlsBody },
  ];
  const mtlsSmoke = await postOverTls(
    `${issuerMtls.info.issuer}/token`,
    Object.fromEntries(new URLSearchParams(mtlsBody)),
    { ca: certificates.ca, ...certificates.argocd },
  );
  if (mtlsSmoke.status !== 200)
    throw new Error(
      `aoa /token with tls_client_auth answered ${mtlsSmoke.status}: ${JSON.stringify(mtlsSmoke.body)}`,
    );

  // One of each before any timing: a broken setup fails here, loudly.
  const [first] = signClientAssertions(1, keys.argocd.privateKey, issuer.info.issuer);
  const smoke = await fetch(`${aoaUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': FORM },
    body: `${exchangeBody}&client_assertion=${first}`,
  });
  if (smoke.status !== 200) throw new Error(`aoa /token answered ${smoke.status}: ${await smoke.text()}`);
  await fetchIdpToken(idp.info.tokenEndpoint);

  const peerPath = new URL(idp.info.tokenEndpoint).pathname;
  const peerPkjwtBody = new URLSearchParams({
    grant_type: 'client_credentials',
    resource: IDP_AUDIENCE,
    client_assertion_type: JWT_BEARER,
  }).toString();
  const [peerProbe] = signClientAssertions(1, peerKey.privateKey, idp.info.issuer, {
    id: 'bench-pkjwt',
    kid: 'bench-pkjwt-1',
  });
  const peerSmoke = await fetch(idp.info.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': FORM },
    body: `${peerPkjwtBody}&client_assertion=${peerProbe}`,
  });
  if (peerSmoke.status !== 200)
    throw new Error(`peer private_key_jwt answered ${peerSmoke.status}: ${await peerSmoke.text()}`);

  const run = async (target: Measured['target'], concurrency: number, seconds: number): Promise<Measured> => {
    const state = { used: 0 };
    let pool: string[] = [];
    if (target === 'aoa' || target === 'peer-pkjwt') {
      const t0 = performance.now();
      pool =
        target === 'aoa'
          ? signClientAssertions(POOL_PER_SECOND * seconds + 1000, keys.argocd.privateKey, issuer.info.issuer)
          : signClientAssertions(POOL_PER_SECOND * seconds + 1000, peerKey.privateKey, idp.info.issuer, {
              id: 'bench-pkjwt',
              kid: 'bench-pkjwt-1',
            });
      log(`signed ${pool.length} client assertions in ${Math.round(performance.now() - t0)} ms`);
    }
    const cell = {
      aoa: { url: aoaUrl, requests: assertedRequests('/token', exchangeBody, pool, state) },
      peer: { url: new URL(idp.info.tokenEndpoint).origin, requests: peerRequests },
      'peer-pkjwt': {
        url: new URL(idp.info.tokenEndpoint).origin,
        requests: assertedRequests(peerPath, peerPkjwtBody, pool, state),
      },
      'aoa-mtls': { url: issuerMtls.info.issuer, requests: mtlsRequests, tlsOptions: certificates.argocd },
      'peer-tls': { url: new URL(idp.info.tlsTokenEndpoint).origin, requests: peerRequests },
    }[target];
    const result = await autocannon({ ...cell, connections: concurrency, duration: seconds });
    return {
      target,
      concurrency,
      rps: result.requests.average,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      total: result.requests.total,
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
      exhausted: pool.length > 0 && state.used > pool.length,
    };
  };

  for (const concurrency of CONCURRENCY) {
    for (const target of ['aoa', 'peer', 'peer-pkjwt', 'aoa-mtls', 'peer-tls'] as const) {
      await run(target, concurrency, WARMUP_S);
      const measured = await run(target, concurrency, DURATION_S);
      results.push(measured);
      log(
        `${target} c=${concurrency}: ${Math.round(measured.rps)} req/s, p50 ${measured.p50Ms} ms, ` +
          `p99 ${measured.p99Ms} ms, non-2xx ${measured.non2xx}, errors ${measured.errors}`,
      );
    }
  }
} catch (error) {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  exitCode = 1;
} finally {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}

if (results.length > 0) {
  const rows = CONCURRENCY.map((concurrency) => {
    const aoa = results.find((r) => r.target === 'aoa' && r.concurrency === concurrency);
    const peer = results.find((r) => r.target === 'peer' && r.concurrency === concurrency);
    const pkjwt = results.find((r) => r.target === 'peer-pkjwt' && r.concurrency === concurrency);
    const mtls = results.find((r) => r.target === 'aoa-mtls' && r.concurrency === concurrency);
    const peerTls = results.find((r) => r.target === 'peer-tls' && r.concurrency === concurrency);
    const valid = [aoa, peer, pkjwt, mtls, peerTls].every(
      (r) => r && r.non2xx === 0 && r.errors === 0 && !r.exhausted,
    );
    const ratio = aoa && peer && peer.rps > 0 ? aoa.rps / peer.rps : Number.NaN;
    const p99Ratio = aoa && peer && peer.p99Ms > 0 ? aoa.p99Ms / peer.p99Ms : Number.NaN;
    const pkjwtRatio = aoa && pkjwt && pkjwt.rps > 0 ? aoa.rps / pkjwt.rps : Number.NaN;
    const pkjwtP99Ratio = aoa && pkjwt && pkjwt.p99Ms > 0 ? aoa.p99Ms / pkjwt.p99Ms : Number.NaN;
    const pass = valid && pkjwtRatio >= TARGET_RATIO;
    const mtlsRatio = mtls && peerTls && peerTls.rps > 0 ? mtls.rps / peerTls.rps : Number.NaN;
    const mtlsP99Ratio = mtls && peerTls && peerTls.p99Ms > 0 ? mtls.p99Ms / peerTls.p99Ms : Number.NaN;
    const mtlsToAssertion = mtls && aoa && aoa.rps > 0 ? mtls.rps / aoa.rps : Number.NaN;
    return {
      concurrency,
      aoa,
      peer,
      pkjwt,
      mtls,
      peerTls,
      valid,
      ratio,
      p99Ratio,
      pkjwtRatio,
      pkjwtP99Ratio,
      pass,
      mtlsRatio,
      mtlsP99Ratio,
      mtlsToAssertion,
    };
  });
  const fmt = (n: number | undefined, digits = 0) =>
    n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits);
  const table = [
    `| concurrency | aoa token exchange req/s | aoa p99 ms | peer with private_key_jwt req/s | its p99 ms | req/s ratio (≥ ${TARGET_RATIO}) | p99 ratio | verdict | peer with client secret req/s | its p99 ms | req/s ratio | p99 ratio |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.concurrency} | ${fmt(r.aoa?.rps)} | ${fmt(r.aoa?.p99Ms, 1)} | ${fmt(r.pkjwt?.rps)} | ${fmt(r.pkjwt?.p99Ms, 1)} | ${fmt(r.pkjwtRatio, 2)}x | ${fmt(r.pkjwtP99Ratio, 2)} | ${r.pass ? 'PASS' : r.valid ? 'FAIL' : 'INVALID (errors)'} | ${fmt(r.peer?.rps)} | ${fmt(r.peer?.p99Ms, 1)} | ${fmt(r.ratio, 2)}x | ${fmt(r.p99Ratio, 2)} |`,
    ),
  ].join('\n');
  const tlsTable = [
    '| concurrency | aoa tls_client_auth (HTTPS) req/s | aoa p99 ms | peer with client secret (HTTPS) req/s | its p99 ms | req/s ratio | p99 ratio | aoa tls_client_auth / aoa private_key_jwt |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.concurrency} | ${fmt(r.mtls?.rps)} | ${fmt(r.mtls?.p99Ms, 1)} | ${fmt(r.peerTls?.rps)} | ${fmt(r.peerTls?.p99Ms, 1)} | ${fmt(r.mtlsRatio, 2)}x | ${fmt(r.mtlsP99Ratio, 2)} | ${fmt(r.mtlsToAssertion, 2)}x |`,
    ),
  ].join('\n');
  const markdown = `# Token endpoint benchmark

RFC 8693 token exchange over HTTP (\`POST /token\`, private_key_jwt with one pre-signed assertion per
request, the parent acting alone with \`aoa_child\`, \`aoa_environment\`, \`aoa_holder_jkt\`, no DPoP,
rate limits off) next to the peer, oidc-provider's client_credentials grant with JWT access tokens,
authenticating its client with private_key_jwt and its single-use \`jti\` check (the client
authentication aoa requires) and, as a second cell, with a shared secret. All driven by
autocannon for ${DURATION_S} s per cell after a ${WARMUP_S} s warm-up. Servers pinned to
core ${SERVER_CORE}; load generator and nats-server on core ${LOADGEN_CORE}. Target (#15): at least
${TARGET_RATIO}x the peer's requests/s at equal concurrency with the same client authentication.

${table}

Overall: **${rows.every((r) => r.pass) ? 'PASS' : 'FAIL'}**.

Both over TLS (P-256 server certificate, one CA): aoa's token exchange with \`tls_client_auth\` (RFC
8705: \`client_id\` in the form, argocd's client certificate on the connection, no assertion) next to
the peer's shared-secret path over HTTPS. No target: the peer here authenticates with a secret.

${tlsTable}
 Run at ${new Date(started).toISOString()}, node ${process.version}.
`;
  writeFileSync(join(RESULTS_DIR, 'token-endpoint.md'), markdown);
  writeFileSync(
    join(RESULTS_DIR, 'token-endpoint.json'),
    `${JSON.stringify({ startedAt: new Date(started).toISOString(), durationS: DURATION_S, warmupS: WARMUP_S, node: process.version, results, rows: rows.map(({ aoa: _a, peer: _p, pkjwt: _k, mtls: _m, peerTls: _t, ...r }) => r) }, null, 2)}\n`,
  );
  process.stdout.write(`${table}\n\n${tlsTable}\n`);
  process.stdout.write(`overall: ${rows.every((r) => r.pass) ? 'PASS' : 'FAIL'}\n`);
  if (rows.some((r) => !r.valid)) exitCode = 1;
}
process.exit(exitCode);
