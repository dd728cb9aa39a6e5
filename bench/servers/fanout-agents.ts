// A child of rotation-fanout.bench.ts (forked, with an IPC channel), pinned to BENCH_CORE. Two modes:
//
// BENCH_MODE=agents: opens ONE NATS connection and runs many `createAgent` agents on it (each with its
// own `aoa_keys` and `aoa_revocations` mirrors and its own AOA_CREDS consumer, as a real agent has).
// It reports `ready` once every agent holds a first credential, `armed` after it has noted each
// agent's current jti, then `rotated` with the moment (shared clock: performance.timeOrigin +
// performance.now()) each agent accepted (decrypted and verified) a credential with a different jti.
// For the NATS part of the limit it also subscribes, on the same connection, one core subscription per
// agent to `<prefix>.<agent>` and reports `delivered` with the moment each first message arrived.
//
// BENCH_MODE=crypto: the limit's tight loop, alone in this process: N × (build claims, EdDSA sign with
// the issuer's own signer, ECDH-ES+A256KW/A256GCM encrypt with jose, JSON envelope), then N × (parse,
// decrypt with jose, verify the signature with aoa's node:crypto verifier, parse the claims).
import { createHash, generateKeyPairSync } from 'node:crypto';
import { type AoaClaims, parseAoaClaims, type SigningKey, verifyCompactJws } from '@aoa/core';
import { type Agent, type AgentKeys, createAgent } from '@aoa/sdk';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CompactEncrypt, compactDecrypt, importJWK, type JWK } from 'jose';
import { buildClaims, signAccessToken } from '../../services/issuer/src/domain/mint.js';
import { pinSelf } from '../lib/procs.js';
import { requiredEnv } from './child.js';

type FromParent =
  | { type: 'agents'; agents: Array<{ id: string; keys: AgentKeys }>; env: string; app: string }
  | { type: 'arm' }
  | { type: 'report' }
  | { type: 'subscribe'; prefix: string }
  | { type: 'crypto'; n: number; warmup: number; issuer: string }
  | { type: 'stop' };

const now = () => performance.timeOrigin + performance.now();
const send = (message: unknown) => process.send?.(message);
const rss = () => process.memoryUsage().rss;
const CREATE_BATCH = 25;

pinSelf(Number(requiredEnv('BENCH_CORE')));
const mode = requiredEnv('BENCH_MODE');

if (mode === 'agents') await agentsMode();
else if (mode === 'crypto') cryptoMode();
else throw new Error(`BENCH_MODE ${mode}: must be agents or crypto`);

async function agentsMode(): Promise<void> {
  const nc: NatsConnection = await connect({ servers: requiredEnv('NATS_URL'), name: 'bench-fanout-agents' });
  const issuer = requiredEnv('BENCH_ISSUER');
  const baseRss = rss();
  let ids: string[] = [];
  let agents: Agent[] = [];
  let baseline: Array<string | undefined> = [];
  let rotatedAt: Array<number | undefined> = [];
  let rotatedLeft = 0;
  let rejected = 0;
  let firstRejection: string | undefined;

  const onRotated = (index: number, jti: string) => {
    if (baseline.length === 0) return; // not armed yet: first credentials
    if (jti === baseline[index] || rotatedAt[index] !== undefined) return;
    rotatedAt[index] = now();
    if (--rotatedLeft === 0)
      send({ type: 'rotated', times: rotatedAt, rss: rss(), rejected, firstRejection });
  };

  process.on('message', (message: FromParent) => {
    void (async () => {
      if (message.type === 'agents') {
        ids = message.agents.map((a) => a.id);
        const t0 = performance.now();
        const firstSeen = new Array<boolean>(ids.length).fill(false);
        let firstLeft = ids.length;
        let allFirst: () => void = () => undefined;
        const firstDone = new Promise<void>((resolve) => {
          allFirst = resolve;
        });
        agents = new Array<Agent>(ids.length);
        for (let i = 0; i < ids.length; i += CREATE_BATCH) {
          const batch = message.agents.slice(i, i + CREATE_BATCH);
          await Promise.all(
            batch.map(async (spec, j) => {
              const index = i + j;
              const agent = await createAgent({
                nats: nc,
                env: message.env,
                app: message.app,
                agentId: spec.id,
                keys: spec.keys,
                issuer,
              });
              agent.on('rotated', (c) => {
                if (!firstSeen[index]) {
                  firstSeen[index] = true;
                  if (--firstLeft === 0) allFirst();
                }
                onRotated(index, c.jti);
              });
              agent.on('rejected', (r) => {
                rejected++;
                firstRejection ??= r.reason;
              });
              agents[index] = agent;
            }),
          );
        }
        const createdMs = performance.now() - t0;
        if (firstLeft > 0) await firstDone;
        send({
          type: 'ready',
          agents: agents.length,
          baseRss,
          rss: rss(),
          createdMs,
          firstMs: performance.now() - t0,
          pid: process.pid,
        });
      } else if (message.type === 'arm') {
        rotatedAt = new Array<number | undefined>(agents.length).fill(undefined);
        rotatedLeft = agents.length;
        rejected = 0;
        firstRejection = undefined;
        baseline = agents.map((a) => a.credential().jti);
        send({ type: 'armed', rss: rss() });
      } else if (message.type === 'report') {
        // The parent's time limit passed: report whoever has rotated so far (undefined: not yet).
        if (rotatedLeft > 0) {
          rotatedLeft = -1;
          send({ type: 'rotated', times: rotatedAt, rss: rss(), rejected, firstRejection, partial: true });
        }
      } else if (message.type === 'subscribe') {
        const at = new Array<number | undefined>(ids.length).fill(undefined);
        let left = ids.length;
        ids.forEach((id, index) => {
          nc.subscribe(`${message.prefix}.${id}`, {
            max: 1,
            callback: () => {
              if (at[index] !== undefined) return;
              at[index] = now();
              if (--left === 0) send({ type: 'delivered', times: at, rss: rss() });
            },
          });
        });
        await nc.flush();
        send({ type: 'subscribed' });
      } else if (message.type === 'stop') {
        // Closing the connection ends every agent's consumer and watches; nothing else to keep.
        await nc.close().catch(() => undefined);
        process.exit(0);
      }
    })().catch((error: unknown) => {
      send({ type: 'error', error: error instanceof Error ? error.stack : String(error) });
    });
  });
  send({ type: 'hello', rss: baseRss, pid: process.pid });
}

function cryptoMode(): void {
  process.on('message', (message: FromParent) => {
    if (message.type === 'stop') process.exit(0);
    if (message.type !== 'crypto') return;
    void runCrypto(message.n, message.warmup, message.issuer).then(
      (result) => send({ type: 'crypto-result', ...result, rss: rss() }),
      (error: unknown) =>
        send({ type: 'error', error: error instanceof Error ? error.stack : String(error) }),
    );
  });
  send({ type: 'hello', rss: rss(), pid: process.pid });
}

async function runCrypto(n: number, warmup: number, issuer: string) {
  const signer = generateKeyPairSync('ed25519');
  const key: SigningKey = { kid: 'bench-1', alg: 'EdDSA', privateKey: signer.privateKey };
  const recipient = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const recipientPublic = recipient.publicKey.export({ format: 'jwk' }) as JWK;
  // A DPoP key thumbprint's shape (43 base64url characters); nothing checks it against a key here.
  const holderJkt = createHash('sha256').update('bench-dpop-key').digest('base64url');
  const decision = {
    allow: true as const,
    rule: 'grant-owners-dashboards',
    scopes: ['read:metrics'],
    audience: ['https://dashboards.internal', 'https://metrics.internal'],
    expSeconds: 0,
    bearer: false,
    depth: 0,
    maxDepth: 0,
  };
  const grantId = 'bench-grant-0001';
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  // The issuer imports each agent's JWK per mint; so does this loop.
  const mintOne = async (i: number): Promise<string> => {
    const nowMs = Date.now();
    decision.expSeconds = Math.floor(nowMs / 1000) + 900;
    const claims: AoaClaims = buildClaims({
      issuer,
      origin: { kind: 'root', idp: 'corp', sub: 'grant-owner', clientId: 'ops' },
      child: 'dashboards',
      env: 'prod',
      decision,
      holderJkt,
      nowMs,
    });
    claims.aoa_grant = grantId;
    const token = signAccessToken(claims, key);
    const jwe = await new CompactEncrypt(encoder.encode(token))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: 'at+jwt' })
      .encrypt(await importJWK(recipientPublic, 'ECDH-ES+A256KW'));
    return JSON.stringify({ grant_id: grantId, agent: `agent-${i}`, jti: claims.jti, exp: claims.exp, jwe });
  };
  const receiveOne = async (envelope: string): Promise<void> => {
    const body = JSON.parse(envelope) as { jwe: string; jti: string };
    const { plaintext } = await compactDecrypt(body.jwe, recipient.privateKey, {
      keyManagementAlgorithms: ['ECDH-ES+A256KW'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    const token = decoder.decode(plaintext);
    const { payload } = verifyCompactJws(token, signer.publicKey, ['EdDSA']);
    const claims = parseAoaClaims(payload);
    if (claims.jti !== body.jti || claims.cnf?.jkt !== holderJkt) throw new Error('limit loop: mismatch');
  };

  for (let i = 0; i < warmup; i++) await receiveOne(await mintOne(i));
  const envelopes = new Array<string>(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) envelopes[i] = await mintOne(i);
  const t1 = performance.now();
  for (let i = 0; i < n; i++) await receiveOne(envelopes[i] as string);
  const t2 = performance.now();
  return {
    n,
    mintMs: t1 - t0,
    receiveMs: t2 - t1,
    totalMs: t2 - t0,
    envelopeBytes: Buffer.byteLength(envelopes[0] ?? ''),
  };
}
