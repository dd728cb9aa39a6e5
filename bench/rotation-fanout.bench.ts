// Rotation fan-out: N standing grants, one enrolled agent each, re-minted all at once; time until every
// agent holds and has verified its new credential, the issuer-side rate, and the limit measured in the
// same run. Writes bench/results/rotation-fanout.md + .json.
//
// Layout (2 cores): this process (issuer and rotator in-process) and nats-server (which inherits this
// process's mask) on core 0; the agent processes (N / BENCH_PER_PROC agents each, one NATS connection
// per process shared by its agents, each agent with its own key and revocation mirrors and its own
// AOA_CREDS consumer) on core 1; then, with the agents gone, the limit's crypto loop alone on core 1.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '@aoa/core';
import { rotator as pb } from '@aoa/proto';
import { type AgentKeys, generateAgentKeys } from '@aoa/sdk';
import { credentials } from '@grpc/grpc-js';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { buildRotator } from '../services/rotator/src/app.js';
import { loadRotatorConfig } from '../services/rotator/src/config.js';
import { clientAssertion } from '../test/support/oauth.js';
import { callRotator } from '../test/support/rotator.js';
import { startSystem } from '../test/support/system.js';
import { type CpuProfile, type ProfileSummary, summarizeProfile } from './lib/cpuprofile.js';
import { coreTimes, type ForkedChild, forkChild, pinSelf, processCpuUs, REPO_ROOT } from './lib/procs.js';
import { summary } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    'per-proc': { type: 'string' },
    concurrency: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'limit-s': { type: 'string' },
    'mint-timeout': { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    trigger: { type: 'string' },
  },
});
const SIZES = (args.sizes ?? (args.quick ? '1000' : '1000,10000')).split(',').map(Number);
const PER_PROC = Number(args['per-proc'] ?? 500);
const SETUP_CONCURRENCY = Number(args.concurrency ?? 16);
const PARENT_CORE = 0;
const CHILD_CORE = 1;
const TARGET_RATIO = 2;
// How the timed phase asks for every grant at once: one `aoa.rotator.remint` request (default), or
// `rotate-now`: N RotateNow gRPC calls, 64 in flight, with admin assertions made before the clock starts.
const TRIGGERS: Array<'rotate-now' | 'remint'> =
  args.trigger === 'rotate-now'
    ? ['rotate-now']
    : args.trigger === 'remint'
      ? ['remint']
      : ['rotate-now', 'remint'];
const ROTATE_NOW_CONCURRENCY = 64;
// The rotator's AOA_ROTATOR_MINT_TIMEOUT (its default unless given).
const MINT_TIMEOUT = args['mint-timeout'] ?? '5s';
// The rule allows 15 minutes: the first scheduled rotation comes at 405 s at the earliest (half the
// TTL, -10% jitter), long after the timed phase of the largest run starts.
const TOKEN_TTL_S = 900;
const ENV = 'prod';
const APP = 'dashboards';
// The timed phase gives up after this long (the remint request is given the same timeout); the agents
// then report how many had rotated by then.
const PHASE_LIMIT_MS = Number(args['limit-s'] ?? 300) * 1000;
const PHASE_TIMEOUT_MS = 600_000;
const CRYPTO_WARMUP = 200;
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

const log = (message: string) => console.error(`[bench] ${message}`);
const now = () => performance.timeOrigin + performance.now();
const mb = (bytes: number) => bytes / 1024 / 1024;

/**
 * Runs `task` over `items` with at most `limit` in flight, logging progress. A setup call refused as
 * UNAVAILABLE (gRPC 14: the services fail closed when NATS is slow to acknowledge) is retried, as a
 * caller would; setup is not timed.
 */
async function pool<T, R>(
  what: string,
  items: T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
) {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  let retries = 0;
  const step = Math.max(1000, Math.ceil(items.length / 10));
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        for (let attempt = 1; ; attempt++) {
          try {
            out[i] = await task(items[i] as T, i);
            break;
          } catch (error) {
            if ((error as { code?: number }).code !== 14 || attempt >= 5) throw error;
            retries++;
            await new Promise((r) => setTimeout(r, 500 * attempt));
          }
        }
        if (++done % step === 0) log(`${what}: ${done}/${items.length} (${retries} retried)`);
      }
    }),
  );
  return out;
}

async function issuerMints(httpPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^aoa_issuer_grant_mints_total\{code="([^"]+)"\} (\S+)$/gm)) {
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}

/** The nats-server listening on `port` (the testkit runs it under a shell wrapper), by /proc. */
function natsServerPid(port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline[0]?.endsWith('nats-server') && cmdline.some((a) => a.includes(String(port))))
        return Number(entry);
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

function rssOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const cpuOf = (pid: number | undefined) => (pid === undefined ? Number.NaN : processCpuUs(pid));

type Trigger = 'rotate-now' | 'remint';

/** One timed phase: every grant re-minted at once by `trigger`. */
interface PhaseResult {
  trigger: Trigger;
  endToEnd: {
    /** NaN when not every agent rotated within the phase limit. */
    seconds: number;
    agentsRotated: number;
    phaseLimitS: number;
    perAgentMs: ReturnType<typeof summary>;
    triggerReturnedS: number;
    triggerReply: unknown;
    rejectedDeliveries: number;
    firstRejection: string | undefined;
  };
  issuer: {
    /** Request → every grant's new credential published at least once. */
    allPublishedS: number;
    /** N / allPublishedS: credentials minted, encrypted and published per second. */
    ratePerS: number;
    /** Every delivery published in the timed phase, duplicates (a grant minted twice) included. */
    publishedTotal: number;
    lastPublishS: number;
    mints: Record<string, number>;
    errors: string[];
  };
  /** The timed phase (request → last agent rotated): CPU seconds by process, and each core's busy share. */
  cpu: {
    wallS: number;
    benchProcessS: number;
    natsServerS: number;
    agentProcessesS: number;
    corePct: number[];
  };
  profile?: ProfileSummary;
  /** With `--profile`: JetStream API requests and KV writes seen on the bus in the timed phase. */
  natsOps?: Record<string, number>;
  rssAfter: number[];
  envelopeBytes: number;
  /** End to end / the limit. */
  ratio: number;
}

interface SizeResult {
  n: number;
  processes: number;
  agentsPerProcess: number;
  setup: { grantsS: number; enrolS: number; firstCredentialsS: number };
  phases: PhaseResult[];
  limit: {
    cryptoS: number;
    mintS: number;
    receiveS: number;
    natsS: number;
    natsPublishAckS: number;
    seconds: number;
    envelopeBytes: number;
    cryptoRatePerS: number;
  };
  rss: {
    agentProcessBaseMb: number[];
    agentProcessMb: number[];
    agentProcessAfterMb: number[];
    perAgentKb: number;
    natsServerMb: number;
    benchProcessMb: number;
  };
  load: { before: number[]; after: number[] };
}

async function runSize(n: number): Promise<SizeResult> {
  const loadBefore = loadavg();
  const sys = await startSystem();
  const rotatorLogger = createLogger({ service: 'rotator', level: 'warn' });
  const rot = await buildRotator(
    loadRotatorConfig({
      NATS_URL: sys.nats.url,
      AOA_POLICY_FILE: sys.policyPath,
      AOA_ISSUER_URL: sys.issuer.issuer,
      AOA_ROTATOR_GRPC_LISTEN: '127.0.0.1:0',
      AOA_ROTATOR_HTTP_LISTEN: '127.0.0.1:0',
      AOA_ROTATOR_MINT_TIMEOUT: MINT_TIMEOUT,
    }),
    { logger: rotatorLogger },
  ).start();
  const client = new pb.RotatorClient(`127.0.0.1:${rot.grpcPort}`, credentials.createInsecure());
  const nc = await connect({ servers: sys.nats.url, name: 'bench-fanout' });
  const children: ForkedChild[] = [];
  const admin = async () => ({
    'client-assertion': await clientAssertion('ops', sys.keys.admin, sys.issuer.issuer),
  });
  try {
    // ---- phase 1: grants, enrolments, agents (not timed) ------------------------------------------
    let t = performance.now();
    const grantIds = await pool(`n=${n} grants`, Array.from({ length: n }), SETUP_CONCURRENCY, async () => {
      const { grant } = await callRotator<pb.CreateGrantRequest, pb.CreateGrantResponse>(
        client,
        client.createGrant as never,
        pb.CreateGrantRequest.fromPartial({
          sub: 'idp:corp:grant-owner',
          child: APP,
          environment: ENV,
          scopes: ['read:metrics'],
          tokenTtlSeconds: TOKEN_TTL_S,
        }),
        await admin(),
      );
      if (!grant) throw new Error('CreateGrant returned no grant');
      return grant.id;
    });
    const grantsS = (performance.now() - t) / 1000;
    log(`n=${n}: ${n} grants in ${grantsS.toFixed(1)} s`);

    t = performance.now();
    const agents: Array<{ id: string; keys: AgentKeys }> = await pool(
      `n=${n} enrolments`,
      grantIds,
      SETUP_CONCURRENCY,
      async (grantId, i) => {
        const keys = await generateAgentKeys();
        const { joinToken } = await callRotator<pb.CreateJoinTokenRequest, pb.CreateJoinTokenResponse>(
          client,
          client.createJoinToken as never,
          { grantId, ttlSeconds: 0 },
          await admin(),
        );
        const id = `agent-${i}`;
        await callRotator<pb.EnrollRequest, pb.EnrollResponse>(
          client,
          client.enroll as never,
          pb.EnrollRequest.fromPartial({
            joinToken,
            agentId: id,
            encryptionJwk: JSON.stringify(keys.public.encryption),
            dpopJwk: JSON.stringify(keys.public.dpop),
          }),
          {},
        );
        return { id, keys: keys.private };
      },
    );
    const enrolS = (performance.now() - t) / 1000;
    log(`n=${n}: ${n} agents enrolled in ${enrolS.toFixed(1)} s`);

    const procs = Math.ceil(n / PER_PROC);
    const childEnv = {
      NATS_URL: sys.nats.url,
      BENCH_ISSUER: sys.issuer.issuer,
      BENCH_CORE: String(CHILD_CORE),
      BENCH_MODE: 'agents',
    };
    for (let p = 0; p < procs; p++)
      children.push(forkChild('bench/servers/fanout-agents.ts', childEnv, { logErrors: true }));
    await Promise.all(children.map((c) => c.next('hello')));
    t = performance.now();
    // One process at a time: their agents' first consumers and mirrors all start on one core.
    const readies: Array<{ agents: number; baseRss: number; rss: number; createdMs: number; pid: number }> =
      [];
    const groups = children.map((_, p) => agents.slice(p * PER_PROC, (p + 1) * PER_PROC));
    for (const [p, c] of children.entries()) {
      c.send({ type: 'agents', agents: groups[p], env: ENV, app: APP });
      readies.push(await c.next('ready', PHASE_LIMIT_MS));
      log(`n=${n}: agent process ${p + 1}/${procs} ready (${groups[p]?.length} agents)`);
    }
    const agentsS = (performance.now() - t) / 1000;
    log(`n=${n}: every agent holds its first credential, ${agentsS.toFixed(1)} s after the first started`);
    // Each timed phase starts once no delivery has been published for 2 s: the enrolment mints' tail,
    // or the previous phase's late duplicates, must not count as rotations.
    const waitQuiet = async () => {
      let last = now();
      const sub = nc.subscribe('aoa.creds.>', {
        callback: () => {
          last = now();
        },
      });
      const deadline = now() + 60_000;
      while (now() - last < 2000 && now() < deadline) await new Promise((r) => setTimeout(r, 250));
      sub.unsubscribe();
    };

    // ---- phase 2: every grant re-minted at once (timed), by each trigger in turn -------------------
    const timedPhase = async (trigger: Trigger): Promise<PhaseResult> => {
      await waitQuiet();
      for (const c of children) c.send({ type: 'arm' });
      await Promise.all(children.map((c) => c.next('armed')));
      const mintsBefore = await issuerMints(sys.issuer.httpPort);
      // Every delivery the rotator publishes, as a bench subscriber sees it: the first per agent subject
      // (when all N have one, every grant was minted, encrypted and published once), and all of them.
      const firstPublished = new Map<string, number>();
      let allPublishedAt = Number.NaN;
      let publishedTotal = 0;
      let lastPublishedAt = Number.NaN;
      let envelopeBytes = 0;
      const spy = nc.subscribe('aoa.creds.>', {
        callback: (_e, msg) => {
          const at = now();
          publishedTotal++;
          lastPublishedAt = at;
          envelopeBytes = msg.data.length;
          if (!firstPublished.has(msg.subject)) {
            firstPublished.set(msg.subject, at);
            if (firstPublished.size === n) allPublishedAt = at;
          }
        },
      });
      await nc.flush();
      type Rotated = { times: Array<number | null>; rss: number; rejected: number; firstRejection?: string };
      const perChild = children.map((c) => c.next<Rotated>('rotated', PHASE_LIMIT_MS + PHASE_TIMEOUT_MS));
      const agentPids = readies.map((r) => r.pid);
      const cpu0 = {
        bench: process.cpuUsage(),
        nats: cpuOf(natsPid),
        agents: agentPids.map(cpuOf),
        cores: coreTimes(),
      };
      // With --profile, count the JetStream API requests and KV writes of the timed phase by kind.
      const natsOps: Record<string, number> = {};
      const opsSpies = args.profile
        ? ['$JS.API.>', '$KV.>'].map((subject) =>
            nc.subscribe(subject, {
              callback: (_e, msg) => {
                const tokens = msg.subject.split('.');
                const kind =
                  tokens[0] === '$KV' ? `KV put ${tokens[1]} ${tokens[2]}` : tokens.slice(0, 4).join('.');
                natsOps[kind] = (natsOps[kind] ?? 0) + 1;
              },
            }),
          )
        : [];
      await nc.flush();
      // RotateNow callers' assertions are made before the clock starts (lives under the 300 s replay window).
      const assertions =
        trigger === 'rotate-now'
          ? await Promise.all(
              grantIds.map(() =>
                clientAssertion('ops', sys.keys.admin, sys.issuer.issuer, { lifeSeconds: 280 }),
              ),
            )
          : [];
      const session = args.profile ? new Session() : undefined;
      if (session) {
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      }
      const t0 = now();
      const remintReplyP =
        trigger === 'remint'
          ? nc
              .request(
                'aoa.rotator.remint',
                JSON.stringify({ kid: 'bench-fanout', timeout_ms: PHASE_LIMIT_MS }),
                { timeout: PHASE_LIMIT_MS + 30_000 },
              )
              .then(
                (m) => ({ at: now(), reply: JSON.parse(m.string()) as unknown }),
                (error: unknown) => ({ at: now(), reply: { error: String(error) } }),
              )
          : pool('RotateNow', grantIds, ROTATE_NOW_CONCURRENCY, (grantId, i) =>
              callRotator<pb.RotateNowRequest, pb.RotateNowResponse>(
                client,
                client.rotateNow as never,
                { grantId },
                { 'client-assertion': assertions[i] as string },
              ),
            ).then(
              () => ({ at: now(), reply: { rotateNowCalls: grantIds.length } as unknown }),
              (error: unknown) => ({ at: now(), reply: { error: String(error) } }),
            );
      let limitTimer: NodeJS.Timeout | undefined;
      const completed = await Promise.race([
        Promise.all(perChild).then(() => true),
        new Promise<false>((resolve) => {
          limitTimer = setTimeout(() => resolve(false), PHASE_LIMIT_MS);
        }),
      ]);
      clearTimeout(limitTimer);
      const tEnd = now();
      if (!completed) {
        log(`n=${n}: not every agent rotated within ${PHASE_LIMIT_MS / 1000} s; asking for partial results`);
        for (const c of children) c.send({ type: 'report' });
      }
      const rotated = await Promise.all(perChild);
      const benchCpu = process.cpuUsage(cpu0.bench);
      const cores1 = coreTimes();
      const cpu = {
        wallS: (tEnd - t0) / 1000,
        benchProcessS: (benchCpu.user + benchCpu.system) / 1e6,
        natsServerS: (cpuOf(natsPid) - cpu0.nats) / 1e6,
        agentProcessesS: agentPids.reduce((a, pid, i) => a + cpuOf(pid) - (cpu0.agents[i] ?? 0), 0) / 1e6,
        corePct: cores1.map((c, i) => {
          const b = cpu0.cores[i] ?? { busy: 0, total: 0 };
          return ((c.busy - b.busy) / Math.max(1, c.total - b.total)) * 100;
        }),
      };
      for (const sub of opsSpies) sub.unsubscribe();
      let profile: ProfileSummary | undefined;
      if (session) {
        const { profile: raw } = await session.post('Profiler.stop');
        session.disconnect();
        profile = summarizeProfile(raw as unknown as CpuProfile, undefined, REPO_ROOT, 20);
      }
      const remint = await remintReplyP;
      spy.unsubscribe();
      const times = rotated.flatMap((r) => r.times).filter((x): x is number => typeof x === 'number');
      const endToEndS = times.length === n ? (Math.max(...times) - t0) / 1000 : Number.NaN;
      const allPublishedS = (allPublishedAt - t0) / 1000;
      const issuerErrors = sys.logs
        .text()
        .split('\n')
        .filter((line) => /"level":50/.test(line))
        .slice(0, 3)
        .map((line) => line.slice(0, 600));
      const mintsAfter = await issuerMints(sys.issuer.httpPort);
      const mints = Object.fromEntries(
        Object.entries(mintsAfter).map(([code, v]) => [code, v - (mintsBefore[code] ?? 0)]),
      );
      log(
        `n=${n} ${trigger}: ${times.length}/${n} agents rotated, the last ${((Math.max(...times) - t0) / 1000).toFixed(2)} s after the trigger; ` +
          `every grant published once by ${allPublishedS.toFixed(2)} s; trigger returned at ${((remint.at - t0) / 1000).toFixed(2)} s`,
      );

      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      return {
        trigger,
        endToEnd: {
          seconds: endToEndS,
          agentsRotated: times.length,
          phaseLimitS: PHASE_LIMIT_MS / 1000,
          perAgentMs: summary(times.map((x) => x - t0)),
          triggerReturnedS: (remint.at - t0) / 1000,
          triggerReply: remint.reply,
          rejectedDeliveries: sum(rotated.map((r) => r.rejected)),
          firstRejection: rotated.find((r) => r.firstRejection)?.firstRejection,
        },
        issuer: {
          allPublishedS,
          ratePerS: n / allPublishedS,
          publishedTotal,
          lastPublishS: (lastPublishedAt - t0) / 1000,
          mints,
          errors: issuerErrors,
        },
        cpu,
        ...(profile ? { profile, natsOps } : {}),
        rssAfter: rotated.map((r) => r.rss),
        envelopeBytes,
        ratio: Number.NaN,
      };
    };
    const natsPid = natsServerPid(sys.nats.port);
    const phases: PhaseResult[] = [];
    for (const trigger of TRIGGERS) {
      phases.push(await timedPhase(trigger));
    }
    const envelopeBytes = phases[0]?.envelopeBytes ?? 0;

    // ---- the limit, part 1: NATS delivering N messages of the same size to the same processes -----
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: 'BENCH_FANOUT',
      subjects: ['bench.fanout.>'],
      storage: StorageType.File,
      max_msgs_per_subject: 1,
    });
    for (const c of children) c.send({ type: 'subscribe', prefix: 'bench.fanout' });
    await Promise.all(children.map((c) => c.next('subscribed')));
    const deliveredP = Promise.all(
      children.map((c) => c.next<{ times: number[] }>('delivered', PHASE_TIMEOUT_MS)),
    );
    const payload = new Uint8Array(envelopeBytes || 1200).fill(65);
    const js = jetstream(nc);
    const t1 = now();
    await Promise.all(agents.map((a) => js.publish(`bench.fanout.${a.id}`, payload)));
    const acked = now();
    const delivered = (await deliveredP).flatMap((d) => d.times);
    const natsS = (Math.max(...delivered) - t1) / 1000;
    log(`n=${n}: NATS delivered ${n} × ${payload.length} B in ${natsS.toFixed(3)} s`);

    const rssAfter = phases.at(-1)?.rssAfter ?? [];
    const natsServerMb = mb(rssOf(natsPid));
    const benchProcessMb = mb(process.memoryUsage().rss);
    for (const c of children) c.send({ type: 'stop' });
    await Promise.all(children.map((c) => c.exited));
    children.length = 0;

    // ---- the limit, part 2: the crypto loop alone on core 1 ----------------------------------------
    const crypto = forkChild(
      'bench/servers/fanout-agents.ts',
      { ...childEnv, BENCH_MODE: 'crypto' },
      { logErrors: true },
    );
    children.push(crypto);
    await crypto.next('hello');
    crypto.send({ type: 'crypto', n, warmup: CRYPTO_WARMUP, issuer: sys.issuer.issuer });
    const cr = await crypto.next<{
      mintMs: number;
      receiveMs: number;
      totalMs: number;
      envelopeBytes: number;
    }>('crypto-result', PHASE_TIMEOUT_MS);
    crypto.send({ type: 'stop' });
    await crypto.exited;
    children.length = 0;
    const cryptoS = cr.totalMs / 1000;
    const limitS = cryptoS + natsS;
    for (const phase of phases) phase.ratio = phase.endToEnd.seconds / limitS;
    log(
      `n=${n}: crypto loop ${cryptoS.toFixed(2)} s (mint ${(cr.mintMs / 1000).toFixed(2)} + receive ${(cr.receiveMs / 1000).toFixed(2)}), limit ${limitS.toFixed(2)} s, ratio ${phases.map((p) => `${p.trigger} ${p.ratio.toFixed(2)}`).join(', ')}`,
    );
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    return {
      n,
      processes: procs,
      agentsPerProcess: PER_PROC,
      setup: { grantsS, enrolS, firstCredentialsS: agentsS },
      phases,
      limit: {
        cryptoS,
        mintS: cr.mintMs / 1000,
        receiveS: cr.receiveMs / 1000,
        natsS,
        natsPublishAckS: (acked - t1) / 1000,
        seconds: limitS,
        envelopeBytes: cr.envelopeBytes,
        cryptoRatePerS: n / cryptoS,
      },
      rss: {
        agentProcessBaseMb: readies.map((r) => mb(r.baseRss)),
        agentProcessMb: readies.map((r) => mb(r.rss)),
        agentProcessAfterMb: rssAfter.map(mb),
        perAgentKb: (sum(rssAfter) - sum(readies.map((r) => r.baseRss))) / n / 1024,
        natsServerMb,
        benchProcessMb,
      },
      load: { before: loadBefore, after: loadavg() },
    };
  } finally {
    for (const c of children) c.child.kill('SIGKILL');
    await nc.close().catch(() => undefined);
    client.close();
    await rot.stop().catch(() => undefined);
    await sys.stop().catch(() => undefined);
  }
}

const started = Date.now();
pinSelf(PARENT_CORE); // nats-server, started by each run, inherits core 0
const results: SizeResult[] = [];
const failures: Array<{ n: number; error: string }> = [];
for (const n of SIZES) {
  log(`n=${n}: starting (${Math.ceil(n / PER_PROC)} agent processes × ≤${PER_PROC} agents)`);
  try {
    results.push(await runSize(n));
  } catch (error) {
    console.error(error);
    failures.push({ n, error: error instanceof Error ? error.message : String(error) });
  }
}

const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT }).toString().trim();
const meta = {
  date: new Date().toISOString(),
  commit,
  node: process.version,
  cpu: `${cpus()[0]?.model ?? 'unknown'} ×${cpus().length}`,
  memoryGb: Math.round(totalmem() / 1024 ** 3),
  sizes: SIZES,
  agentsPerProcess: PER_PROC,
  setupConcurrency: SETUP_CONCURRENCY,
  tokenTtlSeconds: TOKEN_TTL_S,
  rotatorMintTimeout: MINT_TIMEOUT,
  phaseLimitS: PHASE_LIMIT_MS / 1000,
  triggers: TRIGGERS,
  profiled: args.profile,
  durationS: (Date.now() - started) / 1000,
};
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toString() : 'n/a');
const range = (xs: number[]) => (xs.length === 0 ? 'n/a' : `${f0(Math.min(...xs))}–${f0(Math.max(...xs))}`);
const TRIGGER_LABELS: Record<Trigger, string> = {
  'rotate-now': `RotateNow × N (${ROTATE_NOW_CONCURRENCY} in flight)`,
  remint: '`aoa.rotator.remint`',
};
const rows = results.flatMap((r) => r.phases.map((p) => ({ r, p })));
const checks = [
  ...rows.map(({ r, p }) => ({
    name: `n=${r.n}, ${TRIGGER_LABELS[p.trigger]}: end to end ≤ ${TARGET_RATIO}× the limit`,
    pass: p.ratio <= TARGET_RATIO && p.endToEnd.agentsRotated === r.n,
    detail: Number.isFinite(p.endToEnd.seconds)
      ? `${f2(p.endToEnd.seconds)} s vs ${f2(r.limit.seconds)} s (${f2(p.ratio)}×)`
      : `only ${p.endToEnd.agentsRotated}/${r.n} agents rotated within ${p.endToEnd.phaseLimitS} s (limit ${f2(r.limit.seconds)} s)`,
  })),
  ...failures.map((x) => ({ name: `n=${x.n}: run completed`, pass: false, detail: x.error })),
];
const md = [
  '# Rotation fan-out benchmark',
  '',
  `${meta.date} · commit ${commit} · Node ${meta.node} · ${meta.cpu} · ${meta.memoryGb} GB · total ${Math.round(meta.durationS)} s · ` +
    `rotator mint timeout ${MINT_TIMEOUT} · timed phase limit ${PHASE_LIMIT_MS / 1000} s${args.profile ? ' · profiled' : ''}`,
  '',
  'Layout: issuer and rotator in the bench process, with nats-server, on core 0 (`taskset`); the agents ' +
    `on core 1, ${PER_PROC} \`createAgent\` agents per process sharing that process's one NATS connection ` +
    '(each agent with its own `aoa_keys` and `aoa_revocations` mirrors and its own `AOA_CREDS` consumer). ' +
    `Setup (not timed): N grants (ops, admin; token TTL ${TOKEN_TTL_S} s, so no scheduled rotation falls in ` +
    'the run), a join token and an enrolment per grant, every agent holding its first credential. ' +
    'Timed, twice on the same system and agents: (1) `RotateNow` for every grant over gRPC, as the issue ' +
    `words it (${ROTATE_NOW_CONCURRENCY} calls in flight, the admin client assertions signed before the clock ` +
    'starts: each call verifies one, records its jti, marks the grant due and kicks the loop); (2) one ' +
    '`aoa.rotator.remint` request, the rotator\'s own "every grant now" operation, which also polls each ' +
    "grant's lease until it has been re-minted. End to end = the last agent's `rotated` event with a new " +
    'jti (decrypted and verified) − the start; times on ' +
    '`performance.timeOrigin + performance.now()`, shared by processes on one machine. Issuer-side rate = ' +
    "N / (request → the last grant's first new delivery seen on `aoa.creds.>` by a bench subscriber): " +
    'minted, encrypted and published. The limit, same run: one process alone on core 1 doing N × (build claims, EdDSA ' +
    "sign with the issuer's signer, ECDH-ES+A256KW/A256GCM encrypt with jose, envelope) then N × " +
    "(decrypt, verify, parse claims), plus NATS: N messages of the delivery's size published to a " +
    'JetStream stream like `AOA_CREDS` (file, one message per subject, acked publishes pipelined as the ' +
    'rotator does) and delivered to one core subscription per agent in the same agent processes ' +
    "(a core fan-out: no per-subject JetStream consumers, so the agents' consumer cost is not in the limit).",
  '',
  '## Results',
  '',
  '| N | trigger | agent procs | end to end s | per-agent p50 s | p99 s | trigger returned s | issuer rate/s | crypto loop s | NATS s | limit s | ratio |',
  '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    ({ r, p }) =>
      `| ${r.n} | ${TRIGGER_LABELS[p.trigger]} | ${r.processes} | ${Number.isFinite(p.endToEnd.seconds) ? f2(p.endToEnd.seconds) : `> ${p.endToEnd.phaseLimitS} (${p.endToEnd.agentsRotated} rotated)`} | ${f2(p.endToEnd.perAgentMs.p50 / 1000)} | ` +
      `${f2(p.endToEnd.perAgentMs.p99 / 1000)} | ${f2(p.endToEnd.triggerReturnedS)} | ${f0(p.issuer.ratePerS)} | ` +
      `${f2(r.limit.cryptoS)} | ${f2(r.limit.natsS)} | ${f2(r.limit.seconds)} | ${f2(p.ratio)}× |`,
  ),
  '',
  '"issuer rate" = N / (request → every grant\'s new credential published at least once); ' +
    '"published" counts every delivery the rotator published in the timed phase and "issuer mints" ' +
    'every `aoa.issuer.mint` answer by code: more than N means grants minted more than once.',
  '',
  '| N | trigger | every grant published s | published (N = once each) | last publish s | issuer mints (by code) | rejected deliveries |',
  '| ---: | --- | ---: | ---: | ---: | --- | ---: |',
  ...rows.map(
    ({ r, p }) =>
      `| ${r.n} | ${TRIGGER_LABELS[p.trigger]} | ${f2(p.issuer.allPublishedS)} | ${p.issuer.publishedTotal} | ${f2(p.issuer.lastPublishS)} | ` +
      `${JSON.stringify(p.issuer.mints)} | ${p.endToEnd.rejectedDeliveries}` +
      `${p.endToEnd.firstRejection ? ` (first: ${p.endToEnd.firstRejection})` : ''} |`,
  ),
  '',
  '| N | limit: mint (sign+encrypt) s | receive (decrypt+verify) s | crypto rate/s | NATS publish acked s | NATS delivered s | envelope B |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map(
    (r) =>
      `| ${r.n} | ${f2(r.limit.mintS)} | ${f2(r.limit.receiveS)} | ${f0(r.limit.cryptoRatePerS)} | ` +
      `${f2(r.limit.natsPublishAckS)} | ${f2(r.limit.natsS)} | ${r.limit.envelopeBytes} |`,
  ),
  ...rows.flatMap(({ r, p }) =>
    p.issuer.errors.length > 0
      ? [
          '',
          `Issuer errors logged (n=${r.n}, ${p.trigger}, first ${p.issuer.errors.length}):`,
          '',
          ...p.issuer.errors.map((e) => `    ${e}`),
        ]
      : [],
  ),
  '',
  '## Memory (resident)',
  '',
  '| N | agent process empty MB | with agents MB | after rotation MB | per agent KB | nats-server MB | bench process MB |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...results.map(
    (r) =>
      `| ${r.n} | ${range(r.rss.agentProcessBaseMb)} | ${range(r.rss.agentProcessMb)} | ` +
      `${range(r.rss.agentProcessAfterMb)} | ${f0(r.rss.perAgentKb)} | ${f0(r.rss.natsServerMb)} | ${f0(r.rss.benchProcessMb)} |`,
  ),
  '',
  '## Where the timed phase spent CPU',
  '',
  'From `/proc` over the timed phase (request → last agent rotated): CPU seconds of the bench process ' +
    "(issuer + rotator + the bench's own subscriber), of nats-server and of the agent processes, and " +
    "how busy each core was (all processes on the machine, others' sessions included).",
  '',
  '| N | trigger | wall s | bench process (issuer + rotator) CPU s | nats-server CPU s | agent processes CPU s | core 0 busy | core 1 busy |',
  '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map(
    ({ r, p }) =>
      `| ${r.n} | ${TRIGGER_LABELS[p.trigger]} | ${f2(p.cpu.wallS)} | ${f2(p.cpu.benchProcessS)} | ${f2(p.cpu.natsServerS)} | ` +
      `${f2(p.cpu.agentProcessesS)} | ${f0(p.cpu.corePct[0] ?? Number.NaN)}% | ${f0(p.cpu.corePct[1] ?? Number.NaN)}% |`,
  ),
  ...rows.flatMap(({ r, p }) =>
    p.profile
      ? [
          '',
          `Profile of the bench process (issuer + rotator) over the timed phase, n=${r.n}, ${p.trigger} (\`--profile\`; ` +
            `${f0(p.profile.busyMs)} ms busy of ${f0(p.profile.sampledMs)} ms sampled). Self time by package:`,
          '',
          '| package / area | self ms | share |',
          '| --- | ---: | ---: |',
          ...p.profile.byGroup
            .slice(0, 12)
            .map((g) => `| ${g.group} | ${f0(g.selfMs)} | ${g.pct.toFixed(1)}% |`),
          '',
          `NATS operations in the timed phase (n=${r.n}, ${p.trigger}): ` +
            Object.entries(p.natsOps ?? {})
              .sort((a, b) => b[1] - a[1])
              .map(([k, v]) => `\`${k}\` ${v}`)
              .join(', '),
          '',
          '| function (self time) | location | self ms | share |',
          '| --- | --- | ---: | ---: |',
          ...p.profile.top.map(
            (x) => `| \`${x.function}\` | ${x.location} | ${f0(x.selfMs)} | ${x.pct.toFixed(1)}% |`,
          ),
        ]
      : [],
  ),
  '',
  '## Setup and machine load',
  '',
  '| N | grants created s | enrolled s | agents to first credential s | load avg before | load avg after |',
  '| ---: | ---: | ---: | ---: | --- | --- |',
  ...results.map(
    (r) =>
      `| ${r.n} | ${f2(r.setup.grantsS)} | ${f2(r.setup.enrolS)} | ${f2(r.setup.firstCredentialsS)} | ` +
      `${r.load.before.map((x) => x.toFixed(2)).join(' ')} | ${r.load.after.map((x) => x.toFixed(2)).join(' ')} |`,
  ),
  '',
  '## Targets',
  '',
  '| target | result |',
  '| --- | --- |',
  ...checks.map((c) => `| ${c.name} | **${c.pass ? 'PASS' : 'FAIL'}** ${c.detail} |`),
  '',
].join('\n');
if (!args['no-write']) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'rotation-fanout.md'), md);
  writeFileSync(
    join(RESULTS_DIR, 'rotation-fanout.json'),
    `${JSON.stringify({ meta, results, failures, checks }, null, 2)}\n`,
  );
}
process.stdout.write(md);
process.exit(failures.length > 0 ? 1 : 0);
