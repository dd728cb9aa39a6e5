// Revocation propagation to 1,000 verifier mirrors, and verifier throughput beside a bare jose
// `jwtVerify` of the same token measured in the same run. Writes bench/results/revocation.md + .json.
//
// Layout (2 cores): this process (issuer, revoker and the test IdP in-process) and nats-server (which
// inherits this process's mask) on core 0; the mirror processes (BENCH_PROCS × BENCH_MIRRORS verifiers,
// one NATS connection per process shared by its verifiers, each verifier with its own KV watches and
// mirror) on core 1; then, with the mirrors gone, the throughput process alone on core 1.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '@aoa/core';
import { revoker as pb } from '@aoa/proto';
import { credentials } from '@grpc/grpc-js';
import { exportJWK, type JWK } from 'jose';
import { buildRevoker } from '../services/revoker/src/app.js';
import { loadRevokerConfig } from '../services/revoker/src/config.js';
import { clientAssertion, makeKey } from '../test/support/oauth.js';
import { callRevoke } from '../test/support/revoker.js';
import { callDelegate, startSystem } from '../test/support/system.js';
import { type ForkedChild, forkChild, pinSelf, REPO_ROOT } from './lib/procs.js';
import { quantile, summary } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    procs: { type: 'string' },
    mirrors: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    'window-ms': { type: 'string' },
    windows: { type: 'string' },
  },
});
const PROCS = Number(args.procs ?? 4);
const MIRRORS_PER_PROC = Number(args.mirrors ?? (args.quick ? 50 : 250));
const ROUNDS = Number(args.rounds ?? (args.quick ? 5 : 30));
// Rounds run first and not counted: the mirror processes' first revocations run unoptimised code.
const WARMUP = Number(args.warmup ?? (args.quick ? 1 : 5));
const WINDOWS = Number(args.windows ?? (args.quick ? 1 : 3));
const WINDOW_MS = Number(args['window-ms'] ?? (args.quick ? 1000 : 2000));
const WARMUP_MS = 1000;
// Fresh proofs for both verifier rows of a window at up to 10,000 verifications/s each.
const PROOFS_PER_WINDOW = Math.ceil(2 * (WINDOW_MS / 1000) * 10_000);
const PARENT_CORE = 0;
const CHILD_CORE = 1;
const TARGET_P99_MS = 50;
const TARGET_RPC_P99_MS = 20;
/** A round's GC counts as a stall when one process spent at least this long collecting. */
const GC_STALL_MS = 10;
const TARGET_RATIO = 0.5;
const AUDIENCE = 'https://metrics.internal';
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

const log = (message: string) => console.error(`[bench] ${message}`);
const now = () => performance.timeOrigin + performance.now();

const started = Date.now();
pinSelf(PARENT_CORE); // nats-server, started below, inherits core 0
const sys = await startSystem();
const revoker = await buildRevoker(
  loadRevokerConfig({
    NATS_URL: sys.nats.url,
    AOA_POLICY_FILE: sys.policyPath,
    AOA_ISSUER_URL: sys.issuer.issuer,
    AOA_REVOKER_GRPC_LISTEN: '127.0.0.1:0',
    AOA_REVOKER_HTTP_LISTEN: '127.0.0.1:0',
  }),
  { logger: createLogger({ service: 'revoker', level: 'warn' }) },
).start();
const revokerClient = new pb.RevokerClient(`127.0.0.1:${revoker.grpcPort}`, credentials.createInsecure());
const children: ForkedChild[] = [];
let exitCode = 0;

try {
  const childEnv = {
    NATS_URL: sys.nats.url,
    BENCH_ISSUER: sys.issuer.issuer,
    BENCH_AUDIENCE: AUDIENCE,
    BENCH_CORE: String(CHILD_CORE),
  };
  // ---- propagation -------------------------------------------------------------------------------
  const tStart = Date.now();
  for (let p = 0; p < PROCS; p++) {
    children.push(
      forkChild('bench/servers/mirrors.ts', { ...childEnv, BENCH_MIRRORS: String(MIRRORS_PER_PROC) }),
    );
  }
  const readies = await Promise.all(children.map((c) => c.next<{ mirrors: number }>('ready', 180_000)));
  const mirrorCount = readies.reduce((a, r) => a + r.mirrors, 0);
  log(`${mirrorCount} mirrors ready in ${PROCS} processes after ${Date.now() - tStart} ms`);

  const ciIdpToken = await sys.idpToken('ci-runner');
  const mint = async () =>
    callDelegate(
      sys.client,
      { subjectToken: ciIdpToken, child: 'jobs', environment: 'staging', scopes: ['run:job'] },
      { 'client-assertion': await clientAssertion('ci', sys.keys.ci, sys.issuer.issuer) },
    );
  const perRoundMax: number[] = [];
  const perMirror: number[] = [];
  const revokeRpcMs: number[] = [];
  const sinceCalled: number[] = [];
  /** Per round, the most time one mirror process spent collecting garbage until its last refusal. */
  const roundGcMs: number[] = [];
  let missing = 0;
  for (let round = -WARMUP; round < ROUNDS; round++) {
    const { accessToken, jti } = await mint();
    for (const c of children) c.send({ type: 'accept', round, token: accessToken });
    const accepted = await Promise.all(
      children.map((c) => c.next<{ accepted: number; firstError?: string }>('accepted')),
    );
    const acceptedCount = accepted.reduce((a, r) => a + r.accepted, 0);
    if (acceptedCount !== mirrorCount) {
      throw new Error(
        `round ${round}: ${acceptedCount}/${mirrorCount} accepted: ${accepted.find((a) => a.firstError)?.firstError}`,
      );
    }
    const refusedP = Promise.all(
      children.map((c) => c.next<{ times: Array<number | null>; gcMs: number }>('refused', 15_000)),
    );
    const md = { 'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer) };
    const t0 = now();
    await callRevoke(revokerClient, { jti, reason: 'bench' }, md);
    const returned = now();
    const refused = await refusedP;
    const times = refused.flatMap((r) => r.times);
    const deltas = times.filter((t): t is number => t !== null).map((t) => t - returned);
    const worst = deltas.length === times.length ? Math.max(...deltas) : Number.POSITIVE_INFINITY;
    log(
      `${round < 0 ? 'warm-up ' : ''}round ${round + 1}/${ROUNDS}: all ${deltas.length} mirrors refusing ${worst.toFixed(2)} ms after Revoke returned`,
    );
    if (round < 0) continue;
    revokeRpcMs.push(returned - t0);
    missing += times.length - deltas.length;
    perMirror.push(...deltas);
    perRoundMax.push(worst);
    sinceCalled.push(worst + (returned - t0));
    roundGcMs.push(Math.max(...refused.map((r) => r.gcMs)));
  }
  for (const c of children) c.send({ type: 'stop' });
  await Promise.all(children.map((c) => c.exited));
  children.length = 0;

  // ---- throughput --------------------------------------------------------------------------------
  const holder = await makeKey();
  const bound = await callDelegate(
    sys.client,
    {
      subjectToken: await sys.idpToken('argocd-sa'),
      child: 'dashboards',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
    },
    { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
  );
  const jwks = (await (await fetch(`http://127.0.0.1:${sys.issuer.httpPort}/jwks`)).json()) as {
    keys: JWK[];
  };
  const kid = JSON.parse(Buffer.from(bound.accessToken.split('.')[0] as string, 'base64url').toString()).kid;
  const issuerJwk = jwks.keys.find((k) => k.kid === kid);
  if (!issuerJwk) throw new Error(`issuer key ${kid} not in JWKS`);
  const tp = forkChild('bench/servers/verifier-throughput.ts', childEnv);
  children.push(tp);
  await tp.next('ready');
  tp.send({
    token: bound.accessToken,
    holderPrivateJwk: await exportJWK(holder.privateKey),
    issuerJwk,
    windows: WINDOWS,
    windowMs: WINDOW_MS,
    warmupMs: WARMUP_MS,
    proofsPerWindow: PROOFS_PER_WINDOW,
  });
  const tpResult = await Promise.race([
    tp.next<{ windows: Array<{ verifier: number; uncached: number; bare: number }> }>('result'),
    tp.next<{ error: string }>('error').then((e) => Promise.reject(new Error(e.error))),
  ]);
  await tp.exited;
  children.length = 0;

  // ---- report ------------------------------------------------------------------------------------
  const rounds = summary(perRoundMax);
  const mirrors = summary(perMirror);
  const rpc = summary(revokeRpcMs);
  const called = summary(sinceCalled);
  const gc = summary(roundGcMs);
  const slowRounds = sinceCalled.flatMap((ms, i) => (ms >= TARGET_P99_MS ? [i] : []));
  const slowWithGc = slowRounds.filter((i) => (roundGcMs[i] ?? 0) >= GC_STALL_MS).length;
  const fastWithGc = roundGcMs.filter(
    (ms, i) => ms >= GC_STALL_MS && (sinceCalled[i] ?? 0) < TARGET_P99_MS,
  ).length;
  const median = (xs: number[]) =>
    quantile(
      [...xs].sort((a, b) => a - b),
      0.5,
    );
  const verifierRate = median(tpResult.windows.map((w) => w.verifier));
  const uncachedRate = median(tpResult.windows.map((w) => w.uncached));
  const bareRate = median(tpResult.windows.map((w) => w.bare));
  const ratio = verifierRate / bareRate;
  const checks = [
    {
      name: `Revoke called → all ${mirrorCount} mirrors refusing, p99 < ${TARGET_P99_MS} ms`,
      pass: called.p99 < TARGET_P99_MS && missing === 0,
      detail: `p99 ${called.p99.toFixed(2)} ms${missing ? `, ${missing} mirror refusals missing` : ''}`,
    },
    {
      name: `Revoke RPC p99 < ${TARGET_RPC_P99_MS} ms`,
      pass: rpc.p99 < TARGET_RPC_P99_MS,
      detail: `p99 ${rpc.p99.toFixed(2)} ms`,
    },
    {
      name: `verifier ≥ ${TARGET_RATIO * 100}% of bare jwtVerify`,
      pass: ratio >= TARGET_RATIO,
      detail: `${Math.round(verifierRate)}/s vs ${Math.round(bareRate)}/s (${(ratio * 100).toFixed(0)}%)`,
    },
  ];
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT }).toString().trim();
  const meta = {
    date: new Date().toISOString(),
    commit,
    node: process.version,
    cpu: `${cpus()[0]?.model ?? 'unknown'} ×${cpus().length}`,
    processes: PROCS,
    mirrorsPerProcess: MIRRORS_PER_PROC,
    mirrors: mirrorCount,
    rounds: ROUNDS,
    warmupRounds: WARMUP,
    throughputWindows: WINDOWS,
    windowMs: WINDOW_MS,
    durationS: (Date.now() - started) / 1000,
  };
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
  const md = [
    '# Revocation benchmark',
    '',
    `${meta.date} · commit ${commit} · Node ${meta.node} · ${meta.cpu} · total ${Math.round(meta.durationS)} s`,
    '',
    `Layout: issuer, revoker and test IdP in the bench process, with nats-server, on core 0 (\`taskset\`); ` +
      `${PROCS} mirror processes × ${MIRRORS_PER_PROC} \`createVerifier\` instances on core 1. The verifiers of a ` +
      'process share one NATS connection, and so one subscription to revocation notices (the server sends ' +
      'each notice once per process) and one mirror of `aoa_keys` and of `aoa_revocations` (one KV watch ' +
      'per bucket and process); each verifier keeps its own token and replay caches. The revoker ' +
      'publishes the notice, then writes the KV entry (whose JetStream delivery reaches every watch after ' +
      'it), then publishes the audit event (into its outbox only if JetStream has not acknowledged it ' +
      `within 100 ms). ${WARMUP} warm-up rounds run first and are not counted. ` +
      'Each round mints a fresh bearer token (ci → jobs/staging), has every verifier ' +
      'accept it, then an administrator revokes its `jti`; each verifier re-verifies when its mirror ' +
      'applies a revocation entry (`onRevocationChange`) and stamps the first refusal with ' +
      '`performance.timeOrigin + performance.now()` (a clock shared by processes on one machine). ' +
      'Propagation = refusal time − time `Revoke` returned (negative: the mirror refused before the ' +
      'response reached the caller). Throughput: one process alone on core 1, alternating windows of ' +
      '`verifier.verify` of a DPoP-bound token (fresh pre-made Ed25519 DPoP proof per request: token + ' +
      'proof + replay + revocation checks) and of a bare jose `jwtVerify` of the same token with a ' +
      `pre-imported key (iss, aud, typ); medians of ${WINDOWS} windows of ${WINDOW_MS / 1000} s each. ` +
      'The default verifier remembers verified tokens (keyed by the exact token string; each hit still ' +
      're-checks exp/nbf, that the signing key is still published, the DPoP proof, replay and revocation), ' +
      'so a token presented again costs one signature check (the proof); the row with ' +
      '`tokenCacheSize: 0` checks both signatures on every request. The propagation check relies on ' +
      'the same cache: each mirror has already verified the token once in the accept step.',
    '',
    '## Results',
    '',
    '| measure | n | p50 ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| Revoke returned → every mirror refusing (per revocation) | ${rounds.n} | ${f(rounds.p50)} | ${f(rounds.p99)} | ${f(rounds.max)} |`,
    `| Revoke returned → one mirror refusing (per mirror × revocation) | ${mirrors.n} | ${f(mirrors.p50)} | ${f(mirrors.p99)} | ${f(mirrors.max)} |`,
    `| Revoke called → every mirror refusing (per revocation) | ${called.n} | ${f(called.p50)} | ${f(called.p99)} | ${f(called.max)} |`,
    `| Revoke RPC (admin, jti) | ${rpc.n} | ${f(rpc.p50)} | ${f(rpc.p99)} | ${f(rpc.max)} |`,
    `| GC in the busiest mirror process, per round (from accepting the token to its last refusal) | ${gc.n} | ${f(gc.p50)} | ${f(gc.p99)} | ${f(gc.max)} |`,
    '',
    `Rounds at or over ${TARGET_P99_MS} ms from Revoke called: ${slowRounds.length} of ${sinceCalled.length}; ` +
      `${slowWithGc} of them had a mirror process collecting garbage for ${GC_STALL_MS} ms or more ` +
      `(as did ${fastWithGc} faster rounds).`,
    '',
    '| throughput (one core) | verifications/s |',
    '| --- | ---: |',
    `| \`verifier.verify\` (DPoP-bound token + proof; default, token cache on) | ${Math.round(verifierRate)} |`,
    `| \`verifier.verify\` with \`tokenCacheSize: 0\` (both signatures every time) | ${Math.round(uncachedRate)} |`,
    `| bare jose \`jwtVerify\` (same token) | ${Math.round(bareRate)} |`,
    `| ratio verifier / bare (default) | ${(ratio * 100).toFixed(0)}% |`,
    `| ratio verifier / bare (cache off) | ${((uncachedRate / bareRate) * 100).toFixed(0)}% |`,
    '',
    '## Targets',
    '',
    '| target | result |',
    '| --- | --- |',
    ...checks.map((c) => `| ${c.name} | **${c.pass ? 'PASS' : 'FAIL'}** ${c.detail} |`),
    '',
  ].join('\n');
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'revocation.md'), md);
  writeFileSync(
    join(RESULTS_DIR, 'revocation.json'),
    `${JSON.stringify(
      {
        meta,
        propagation: {
          perRevocation: rounds,
          perMirror: mirrors,
          missing,
          sinceCalled: called,
          revokeRpc: rpc,
          perRoundMaxMs: perRoundMax,
          sinceCalledMs: sinceCalled,
          gcMsPerRound: roundGcMs,
        },
        throughput: {
          verifierPerS: verifierRate,
          uncachedVerifierPerS: uncachedRate,
          barePerS: bareRate,
          ratio,
          uncachedRatio: uncachedRate / bareRate,
          windows: tpResult.windows,
        },
        checks,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(md);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  for (const c of children) c.child.kill('SIGKILL');
  revokerClient.close();
  await revoker.stop().catch(() => undefined);
  await sys.stop().catch(() => undefined);
}
process.exit(exitCode);
