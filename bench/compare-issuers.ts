// Two issuers under the same load in alternating rounds: this checkout's and a base checkout's (another
// revision with its own `npm ci`), each pinned to core 1 while measured, the load generator and
// nats-server on core 0. For a change to the issuer's hot path: this machine's speed drifts by a third
// within minutes, so two runs of delegate-batch.bench.ts cannot tell a 10% change from the drift, while
// rounds seconds apart share it.
//
//   git worktree add /tmp/aoa-base <rev> && (cd /tmp/aoa-base && npm ci --no-audit --no-fund)
//   npx tsx bench/compare-issuers.ts --base /tmp/aoa-base [--way batch|delegate] [--concurrency 16]
//     [--rounds 6] [--measure-ms 3000] [--node-args='<V8 flags>'] [--base-node-args='<V8 flags>']
//     [--window <bytes>] [--base-window <bytes>]
//
// `--base .` runs this checkout on both sides, to compare V8 flags or the client's HTTP/2 flow-control
// window (both default to 4 MiB, LARGE_ANSWER_CHANNEL; grpc-js's own is 65535). Each round reports
// credentials/s, the issuer's CPU and its garbage-collection pauses per credential (from a preloaded
// observer, bench/lib/gc-totals.mjs), and the issuer's CPU share; then the medians per side and the
// per-round ratios this/base, median and range. Nothing is written to bench/results.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LARGE_ANSWER_CHANNEL } from '@aoa/core';
import { issuer as pb } from '@aoa/proto';
import { startNats } from '@aoa/testkit';
import { credentials, Metadata } from '@grpc/grpc-js';
import { makeKey } from '../test/support/oauth.js';
import { IDP_AUDIENCE, testPolicy } from '../test/support/system.js';
import { signClientAssertions } from './lib/assertions.js';
import { closedLoop, median, PoolExhausted } from './lib/load.js';
import { type PinnedChild, pinSelf, REPO_ROOT, startPinnedChild } from './lib/procs.js';
import { syncItems } from './lib/sync-items.js';

const LARGE_WINDOW = LARGE_ANSWER_CHANNEL['grpc-node.flow_control_window'] as number;
const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    way: { type: 'string', default: 'batch' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '6' },
    'measure-ms': { type: 'string', default: '3000' },
    'node-args': { type: 'string', default: '' },
    'base-node-args': { type: 'string', default: '' },
    window: { type: 'string', default: String(LARGE_WINDOW) },
    'base-window': { type: 'string', default: String(LARGE_WINDOW) },
  },
});
const usage = 'usage: npx tsx bench/compare-issuers.ts --base <checkout> [options] (see the header)';
const positive = (name: string, value: string | undefined): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`--${name}: a positive integer, got ${value}\n${usage}`);
  return n;
};
if (!args.base) throw new Error(`--base is required\n${usage}`);
const baseRoot = resolve(args.base);
if (!existsSync(join(baseRoot, 'bench/servers/issuer.ts')) || !existsSync(join(baseRoot, 'node_modules'))) {
  throw new Error(`--base ${baseRoot}: not an aoa checkout with its node_modules installed\n${usage}`);
}
if (args.way !== 'batch' && args.way !== 'delegate') throw new Error(`--way: batch or delegate\n${usage}`);
const WAY = args.way;
const CONCURRENCY = positive('concurrency', args.concurrency);
const ROUNDS = positive('rounds', args.rounds);
const MEASURE_MS = positive('measure-ms', args['measure-ms']);
const WARMUP_MS = 1500;
const CHILDREN = 50;
/** Credentials per call. */
const PER_CALL = WAY === 'batch' ? CHILDREN : 1;
const flags = (text: string) => text.split(' ').filter(Boolean);
const log = (message: string) => console.error(`[compare] ${message}`);

interface Side {
  name: 'this' | 'base';
  root: string;
  nodeArgs: string[];
  window: number;
  issuer?: PinnedChild<{ issuer: string; grpcPort: number }>;
  gcFile: string;
  rounds: Array<{ credentialsPerSecond: number; cpuUs: number; gcUs: number; serverPct: number }>;
}

interface GcTotals {
  minorCount: number;
  minorMs: number;
  otherCount: number;
  otherMs: number;
}

pinSelf(0);
const workDir = mkdtempSync(join(tmpdir(), 'aoa-compare-'));
const sides: Side[] = [
  {
    name: 'this',
    root: resolve(REPO_ROOT),
    nodeArgs: flags(args['node-args']),
    window: positive('window', args.window),
    gcFile: join(workDir, 'gc-this.json'),
    rounds: [],
  },
  {
    name: 'base',
    root: baseRoot,
    nodeArgs: flags(args['base-node-args']),
    window: positive('base-window', args['base-window']),
    gcFile: join(workDir, 'gc-base.json'),
    rounds: [],
  },
];
const cleanup: Array<() => Promise<unknown>> = [];
try {
  const nats = await startNats();
  cleanup.push(() => nats.stop());
  const idp = await startPinnedChild<{ issuer: string; tokenEndpoint: string }>(
    'idp',
    'bench/servers/idp.ts',
    {
      core: 1,
      env: {
        BENCH_IDP_CLIENT_ID: 'argocd-sa',
        BENCH_IDP_CLIENT_SECRET: 'argocd-secret',
        BENCH_IDP_PKJWT_JWK: JSON.stringify({ ...(await makeKey()).publicJwk, kid: 'unused', alg: 'EdDSA' }),
      },
    },
  );
  cleanup.push(() => idp.stop());
  const keys = { argocd: await makeKey(), ci: await makeKey('ES256'), admin: await makeKey() };
  const policyPath = join(workDir, 'policy.yaml');
  writeFileSync(policyPath, testPolicy(idp.info.issuer, keys));
  for (const side of sides) {
    side.issuer = await startPinnedChild(
      `issuer (${side.name})`,
      join(side.root, 'bench/servers/issuer.ts'),
      {
        core: 1,
        env: { NATS_URL: nats.url, AOA_POLICY_FILE: policyPath, AOA_BENCH_GC_FILE: side.gcFile },
        nodeArgs: [...side.nodeArgs, '--import', join(REPO_ROOT, 'bench/lib/gc-totals.mjs')],
      },
    );
    const started = side.issuer;
    cleanup.push(() => started.stop());
  }
  const token = await fetch(idp.info.tokenEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('argocd-sa:argocd-secret').toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: IDP_AUDIENCE }),
  });
  const subjectToken = ((await token.json()) as { access_token: string }).access_token;
  const items = await syncItems(CHILDREN);
  const gcTotals = (side: Side): GcTotals => JSON.parse(readFileSync(side.gcFile, 'utf8')) as GcTotals;

  for (let round = 0; round < ROUNDS; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const issuer = side.issuer as NonNullable<Side['issuer']>;
      const client = new pb.IssuerClient(`127.0.0.1:${issuer.info.grpcPort}`, credentials.createInsecure(), {
        'grpc-node.flow_control_window': side.window,
      });
      // Pools sized far above what one core can reach in the window.
      const pool = signClientAssertions(
        Math.ceil(((WARMUP_MS + MEASURE_MS) / 1000) * (WAY === 'batch' ? 600 : 6000)),
        keys.argocd.privateKey,
        issuer.info.issuer,
      );
      let next = 0;
      const metadata = () => {
        const assertion = pool[next++];
        if (assertion === undefined) throw new PoolExhausted();
        const md = new Metadata();
        md.set('client-assertion', assertion);
        return md;
      };
      const call = () =>
        new Promise<void>((done, fail) => {
          const md = metadata();
          if (WAY === 'delegate') {
            client.delegate(
              pb.DelegateRequest.fromPartial({ subjectToken, ...items[next % CHILDREN] }),
              md,
              (error) => (error ? fail(error) : done()),
            );
            return;
          }
          client.delegateBatch(
            pb.DelegateBatchRequest.fromPartial({ subjectToken, items }),
            md,
            (error, answer) => {
              if (error) return fail(error);
              if (answer.results.some((r) => !r.issued)) return fail(new Error('a child was refused'));
              done();
            },
          );
        });
      const before = gcTotals(side);
      const result = await closedLoop(call, {
        concurrency: CONCURRENCY,
        warmupMs: WARMUP_MS,
        measureMs: MEASURE_MS,
        serverPid: issuer.pid,
      });
      client.close();
      if (result.errors > 0) throw new Error(`${side.name}: ${result.errors} errors (${result.firstError})`);
      // Past the observer's next write, so the totals cover the whole window.
      await new Promise((done) => setTimeout(done, 300));
      const after = gcTotals(side);
      const credentialsPerSecond = result.rps * PER_CALL;
      // The pauses are totalled over warm-up and window, both under the same load.
      const minted = credentialsPerSecond * ((WARMUP_MS + MEASURE_MS) / 1000);
      const gcMs = after.minorMs + after.otherMs - before.minorMs - before.otherMs;
      side.rounds.push({
        credentialsPerSecond,
        cpuUs: result.serverCpuUsPerCall / PER_CALL,
        gcUs: (gcMs * 1000) / minted,
        serverPct: result.serverCpuPct,
      });
      log(
        `round ${round + 1}/${ROUNDS} ${side.name}: ${Math.round(credentialsPerSecond)} credentials/s, ` +
          `${Math.round(result.serverCpuUsPerCall / PER_CALL)} µs CPU per credential`,
      );
    }
  }
} finally {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}

const [mine, base] = sides as [Side, Side];
const measures = [
  ['credentials/s', (r: Side['rounds'][number]) => r.credentialsPerSecond, 0],
  ['issuer CPU per credential (µs)', (r: Side['rounds'][number]) => r.cpuUs, 1],
  ['GC pauses per credential (µs)', (r: Side['rounds'][number]) => r.gcUs, 1],
  ['issuer CPU share (%)', (r: Side['rounds'][number]) => r.serverPct, 0],
] as const;
const perRound = (pick: (r: Side['rounds'][number]) => number) =>
  mine.rounds.map((r, i) => pick(r) / pick(base.rounds[i] as Side['rounds'][number]));
const describe = (side: Side) =>
  `${side.root}${side.nodeArgs.length > 0 ? ` ${side.nodeArgs.join(' ')}` : ''} (client window ${side.window} B)`;
const lines = [
  `${WAY === 'batch' ? `DelegateBatch of ${CHILDREN}` : 'Delegate'}, ${CONCURRENCY} in flight, ` +
    `${ROUNDS} rounds of ${MEASURE_MS} ms. this = ${describe(mine)}; base = ${describe(base)}`,
  '',
  '| measure | this (median) | base (median) | this/base per round: median (range) |',
  '| --- | ---: | ---: | ---: |',
  ...measures.map(([name, pick, digits]) => {
    const ratios = perRound(pick);
    const range = `${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}`;
    return (
      `| ${name} | ${median(mine.rounds.map(pick)).toFixed(digits)} | ` +
      `${median(base.rounds.map(pick)).toFixed(digits)} | ${median(ratios).toFixed(3)} (${range}) |`
    );
  }),
];
process.stdout.write(`${lines.join('\n')}\n`);
