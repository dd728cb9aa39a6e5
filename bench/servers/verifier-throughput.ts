// Verifier throughput on one core, for revocation.bench.ts: forked with an IPC channel, pins itself to
// BENCH_CORE, creates one verifier, pre-makes a fresh DPoP proof per request (Ed25519, node:crypto),
// then alternates timed windows of `verifier.verify` (token + DPoP proof + revocation check) and of a
// bare jose `jwtVerify` of the same token with a pre-imported issuer key. Replies with the counts.
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { createVerifier } from '@aoa/sdk';
import { connect } from '@nats-io/transport-node';
import { importJWK, type JWK, jwtVerify } from 'jose';
import { pinSelf } from '../lib/procs.js';
import { requiredEnv } from './child.js';

interface Job {
  token: string;
  holderPrivateJwk: JWK;
  issuerJwk: JWK;
  windows: number;
  windowMs: number;
  warmupMs: number;
  proofsPerWindow: number;
}

pinSelf(Number(requiredEnv('BENCH_CORE')));
const issuer = requiredEnv('BENCH_ISSUER');
const audience = requiredEnv('BENCH_AUDIENCE');
const url = `${audience}/api/v1/series`;
const nc = await connect({ servers: requiredEnv('NATS_URL'), name: 'bench-throughput' });
// The default verifier (verified-token cache on) and one with the cache off (every signature checked).
const verifier = createVerifier({ issuer, audience, nats: nc });
const uncached = createVerifier({ issuer, audience, nats: nc, tokenCacheSize: 0 });
await Promise.all([verifier.whenReady(), uncached.whenReady()]);

const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function makeProofs(job: Job, count: number): string[] {
  const key = createPrivateKey({ key: job.holderPrivateJwk, format: 'jwk' });
  const { d: _d, ...publicJwk } = job.holderPrivateJwk;
  const header = b64u({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: publicJwk });
  const ath = createHash('sha256').update(job.token).digest('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const ids = randomBytes(16 * count);
  const out = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const jti = ids.subarray(16 * i, 16 * i + 16).toString('base64url');
    const input = `${header}.${b64u({ jti, htm: 'GET', htu: url, iat, ath })}`;
    out[i] = `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
  }
  return out;
}

async function timed(ms: number, once: () => Promise<unknown>): Promise<{ ops: number; ms: number }> {
  const start = performance.now();
  const end = start + ms;
  let ops = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await once();
    ops += 50;
  }
  return { ops, ms: performance.now() - start };
}

process.once('message', (job: Job) => {
  void (async () => {
    const key = await importJWK(job.issuerJwk, job.issuerJwk.alg ?? 'EdDSA');
    const proofs = makeProofs(job, job.proofsPerWindow * (job.windows + 1));
    let next = 0;
    const via = (v: typeof verifier) => async () => {
      const dpop = proofs[next++];
      if (dpop === undefined) throw new Error('DPoP proof pool exhausted');
      await v.verify({ authorization: `DPoP ${job.token}`, dpop, method: 'GET', url });
    };
    const viaVerifier = via(verifier);
    const viaUncached = via(uncached);
    const bare = () =>
      jwtVerify(job.token, key, { issuer, audience, typ: 'at+jwt', algorithms: ['EdDSA', 'ES256'] });
    // Warm-up of both, then alternate so drift and noise hit both alike.
    await timed(job.warmupMs / 3, viaVerifier);
    await timed(job.warmupMs / 3, viaUncached);
    await timed(job.warmupMs / 3, bare);
    const windows: Array<{ verifier: number; uncached: number; bare: number }> = [];
    const rate = (r: { ops: number; ms: number }) => (r.ops * 1000) / r.ms;
    for (let w = 0; w < job.windows; w++) {
      const v = await timed(job.windowMs, viaVerifier);
      const u = await timed(job.windowMs, viaUncached);
      const b = await timed(job.windowMs, bare);
      windows.push({ verifier: rate(v), uncached: rate(u), bare: rate(b) });
    }
    process.send?.({ type: 'result', windows, proofsUsed: next });
    verifier.close();
    uncached.close();
    await nc.close();
    process.exit(0);
  })().catch((error: unknown) => {
    process.send?.({ type: 'error', error: String(error) });
    process.exit(1);
  });
});
process.send?.({ type: 'ready' });
