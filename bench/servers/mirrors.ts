// A process of revocation-bench verifier mirrors: started by revocation.bench.ts (forked, with an IPC
// channel), it pins itself to one core, opens ONE NATS connection and creates BENCH_MIRRORS verifiers
// on it with `createVerifier`; the verifiers share one mirror (one KV watch per bucket) and each hears
// its changes. For each round the parent sends a token: every verifier must accept it; once the parent
// revokes it, each verifier re-verifies the token when the mirror applies a revocation entry, and the
// moment it first refuses (shared clock: performance.timeOrigin + performance.now()) is reported back,
// with the time this process spent in garbage collection meanwhile.
import { PerformanceObserver } from 'node:perf_hooks';
import { createVerifier, type Verifier, VerifyError } from '@aoa/sdk';
import { connect } from '@nats-io/transport-node';
import { pinSelf } from '../lib/procs.js';
import { requiredEnv } from './child.js';

type FromParent = { type: 'accept'; round: number; token: string } | { type: 'stop' };

const now = () => performance.timeOrigin + performance.now();
const send = (message: unknown) => process.send?.(message);

pinSelf(Number(requiredEnv('BENCH_CORE')));
const count = Number(requiredEnv('BENCH_MIRRORS'));
const audience = requiredEnv('BENCH_AUDIENCE');
const url = `${audience}/api`;
const nc = await connect({ servers: requiredEnv('NATS_URL'), name: 'bench-mirrors' });
const verifiers: Verifier[] = [];
const BATCH = 25;
for (let i = 0; i < count; i += BATCH) {
  const batch = Array.from({ length: Math.min(BATCH, count - i) }, () =>
    createVerifier({ issuer: requiredEnv('BENCH_ISSUER'), audience, nats: nc }),
  );
  await Promise.all(batch.map((v) => v.whenReady()));
  verifiers.push(...batch);
}

let current:
  | { round: number; token: string; refusedAt: Array<number | undefined>; left: number; gcMs: number }
  | undefined;
// Garbage collection while a round waits for its refusals: the pauses that hold a process off the core.
new PerformanceObserver((list) => {
  if (!current) return;
  for (const entry of list.getEntries()) current.gcMs += entry.duration;
}).observe({ entryTypes: ['gc'] });
let finishTimer: NodeJS.Timeout | undefined;

const request = (token: string) => ({
  authorization: `Bearer ${token}`,
  dpop: undefined,
  method: 'GET',
  url,
});

function finish(): void {
  if (!current) return;
  clearTimeout(finishTimer);
  send({
    type: 'refused',
    round: current.round,
    gcMs: current.gcMs,
    times: current.refusedAt.map((t) => t ?? null),
  });
  current = undefined;
}

verifiers.forEach((verifier, index) => {
  verifier.onRevocationChange(() => {
    const round = current;
    if (!round || round.refusedAt[index] !== undefined) return;
    verifier.verify(request(round.token)).then(
      () => undefined,
      (error: unknown) => {
        if (current !== round || round.refusedAt[index] !== undefined) return;
        if (!(error instanceof VerifyError) || !/revoked/.test(error.reason)) return;
        round.refusedAt[index] = now();
        if (--round.left === 0) finish();
      },
    );
  });
});

process.on('message', (message: FromParent) => {
  if (message.type === 'stop') {
    for (const v of verifiers) v.close();
    void nc.close().finally(() => process.exit(0));
    return;
  }
  void (async () => {
    const results = await Promise.allSettled(verifiers.map((v) => v.verify(request(message.token))));
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    current = {
      round: message.round,
      token: message.token,
      refusedAt: new Array(verifiers.length).fill(undefined),
      left: verifiers.length,
      gcMs: 0,
    };
    finishTimer = setTimeout(finish, 10_000);
    send({
      type: 'accepted',
      round: message.round,
      accepted: results.length - refused.length,
      firstError: refused[0] ? String(refused[0].reason) : undefined,
    });
  })();
});
send({ type: 'ready', mirrors: verifiers.length, pid: process.pid });
