// Memory of each service as its own process (its production bundle, `node services/<name>/dist/main.js`):
// resident set size at rest, then its curve under a steady 200 Delegate/s for the soak (default 5
// minutes; #14 asks for 30: `--soak-s 1800`), and what grows in one service's heap between a snapshot
// early in the soak and one at its end (by constructor; the auditor's by default). Targets (#14): each service under 150 MB at rest, and no growth over the
// soak (reported as MB per minute over its second half, where warm-up has settled).
//
//   npx tsx bench/memory.bench.ts [--quick] [--soak-s 1800] [--rate 200] [--store postgres|pglite]
//     [--snapshot issuer|revoker|rotator|auditor]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { issuer as pb } from '@aoa/proto';
import { startIdp, startNats, startPostgres } from '@aoa/testkit';
import { credentials, Metadata } from '@grpc/grpc-js';
import { makeKey } from '../test/support/oauth.js';
import { IDP_AUDIENCE, testPolicy } from '../test/support/system.js';
import { signClientAssertions } from './lib/assertions.js';
import { REPO_ROOT, rssMb } from './lib/procs.js';
import { slopePerMinute } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'soak-s': { type: 'string' },
    rate: { type: 'string', default: '200' },
    store: { type: 'string', default: 'postgres' },
    // Whose V8 heap to snapshot, early in the soak and at its end, to see what grows.
    snapshot: { type: 'string', default: 'auditor' },
  },
});
const SOAK_S = Number(args['soak-s'] ?? (args.quick ? 40 : 300));
const RATE = Number(args.rate);
/** The auditor's store: PostgreSQL as in production, or the embedded PGlite `aoa dev` uses. */
const STORE = args.store === 'pglite' ? 'pglite' : 'postgres';
const REST_S = args.quick ? 5 : 15;
const SAMPLE_MS = 2000;
const REST_LIMIT_MB = 150;
const SERVICES = ['issuer', 'revoker', 'rotator', 'auditor'] as const;
type Service = (typeof SERVICES)[number];
const SNAPSHOT = args.snapshot as Service;
if (!SERVICES.includes(SNAPSHOT)) throw new Error(`--snapshot: one of ${SERVICES.join(', ')}`);
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const log = (message: string) => console.error(`[bench] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Self size by constructor (objects) or by node type (strings, code, ...), largest first, in MB. */
function heapByConstructor(file: string, top = 12): Array<{ what: string; mb: number; count: number }> {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const [typeIdx, nameIdx, sizeIdx] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
    number,
    number,
    number,
  ];
  const types = snapshot.snapshot.meta.node_types[0];
  const totals = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const type = types[snapshot.nodes[i + typeIdx] as number] ?? '?';
    const what =
      type === 'object' ? (snapshot.strings[snapshot.nodes[i + nameIdx] as number] ?? '?') : `(${type})`;
    const entry = totals.get(what) ?? { bytes: 0, count: 0 };
    entry.bytes += snapshot.nodes[i + sizeIdx] as number;
    entry.count += 1;
    totals.set(what, entry);
  }
  return [...totals]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, top)
    .map(([what, { bytes, count }]) => ({ what, mb: bytes / 1024 / 1024, count }));
}

/**
 * Has `running` write a heap snapshot (SIGUSR2) into `dir` and resolves its path, once its size holds
 * for 2 s (Node writes it from the service's main thread).
 */
async function takeSnapshot(running: Running, dir: string, tag: string): Promise<string | undefined> {
  const before = new Set(readdirSync(dir));
  running.child.kill('SIGUSR2');
  let lastSize = -1;
  for (let i = 0; i < 120; i++) {
    await sleep(1000);
    const found = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!found) continue;
    const size = statSync(join(dir, found)).size;
    if (size > 0 && size === lastSize) {
      const path = join(dir, `${running.name}-${tag}.heapsnapshot.json`);
      renameSync(join(dir, found), path);
      return path;
    }
    lastSize = size;
  }
  return undefined;
}

/** What grew between two snapshots, by constructor, largest growth first. */
function heapGrowth(
  early: Array<{ what: string; mb: number; count: number }>,
  late: Array<{ what: string; mb: number; count: number }>,
  top = 12,
): Array<{ what: string; earlyMb: number; lateMb: number; earlyCount: number; lateCount: number }> {
  const byWhat = new Map(early.map((h) => [h.what, h]));
  return late
    .map((h) => ({
      what: h.what,
      earlyMb: byWhat.get(h.what)?.mb ?? 0,
      lateMb: h.mb,
      earlyCount: byWhat.get(h.what)?.count ?? 0,
      lateCount: h.count,
    }))
    .sort((a, b) => b.lateMb - b.earlyMb - (a.lateMb - a.earlyMb))
    .slice(0, top);
}

/** The V8 heap in use and the memory held outside it (Buffers, native), in MB, from a service's /metrics. */
async function heapMb(running: Running): Promise<{ heap: number; external: number } | undefined> {
  const port = running.started.httpPort;
  if (typeof port !== 'number') return undefined;
  const text = await fetch(`http://127.0.0.1:${port}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]) / 1024 / 1024;
  const heap = metric('nodejs_heap_size_used_bytes');
  return Number.isFinite(heap) ? { heap, external: metric('nodejs_external_memory_bytes') } : undefined;
}

interface Running {
  name: Service;
  child: ChildProcess;
  started: Record<string, unknown>;
}

/** `node --heapsnapshot-signal=SIGUSR2 services/<name>/dist/main.js`, resolved once it logs "<name> started". */
function startService(name: Service, env: Record<string, string>, cwd: string): Promise<Running> {
  const child = spawn(
    process.execPath,
    ['--heapsnapshot-signal=SIGUSR2', join(REPO_ROOT, 'services', name, 'dist', 'main.js')],
    {
      cwd,
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${out.slice(-2000)}`)), 60_000);
    // Whole lines only (a chunk may end mid-line), and only until the service has started: its later
    // output is read by nobody, and must not pile up here.
    const onData = (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed.msg === `${name} started`) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.stdout?.resume();
          resolve({ name, child, started: parsed });
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}):\n${out.slice(-2000)}`)));
  });
}

mkdirSync(RESULTS_DIR, { recursive: true });
const workDir = mkdtempSync(join(tmpdir(), 'aoa-bench-memory-'));
const running: Running[] = [];
const cleanup: Array<() => Promise<unknown>> = [];
let exitCode = 0;
try {
  log('building the service bundles');
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs')], {
    cwd: REPO_ROOT,
    stdio: 'inherit',
  });
  const nats = await startNats();
  cleanup.push(() => nats.stop());
  const idp = await startIdp({
    clients: [{ clientId: 'argocd-sa', clientSecret: 'argocd-secret', groups: ['platform'] }],
  });
  cleanup.push(() => idp.stop());
  const postgres = STORE === 'postgres' ? await startPostgres() : undefined;
  if (postgres) cleanup.push(() => postgres.destroy());
  const keys = { argocd: await makeKey(), ci: await makeKey('ES256'), admin: await makeKey() };
  const policyPath = join(workDir, 'policy.yaml');
  writeFileSync(policyPath, testPolicy(idp.issuer, keys));
  const issuerUrl = 'http://127.0.0.1:1';
  for (const name of SERVICES) {
    const prefix = name.toUpperCase();
    const env = {
      NATS_URL: nats.url,
      AOA_POLICY_FILE: policyPath,
      AOA_ISSUER_URL: issuerUrl,
      [`AOA_${prefix}_GRPC_LISTEN`]: '127.0.0.1:0',
      [`AOA_${prefix}_HTTP_LISTEN`]: '127.0.0.1:0',
      ...(name === 'auditor' ? { AOA_AUDIT_DB: postgres?.url ?? join(workDir, 'audit') } : {}),
    };
    const service = await startService(name, env, workDir);
    running.push(service);
    cleanup.push(async () => {
      service.child.kill('SIGTERM');
      await new Promise((resolve) => service.child.once('exit', resolve));
    });
  }
  log(`services up; ${REST_S} s at rest`);
  await sleep(REST_S * 1000);
  const rest = Object.fromEntries(running.map((r) => [r.name, rssMb(r.child.pid as number)])) as Record<
    Service,
    number
  >;

  const issuer = running.find((r) => r.name === 'issuer') as Running;
  const grpcPort = new URL(String(issuer.started.grpcUrl)).port;
  const client = new pb.IssuerClient(`127.0.0.1:${grpcPort}`, credentials.createInsecure());
  cleanup.push(async () => client.close());
  const holder = await makeKey();
  let issued = 0;
  let failed = 0;
  let firstError = '';
  const request = pb.DelegateRequest.fromPartial({
    subjectToken: await idp.token('argocd-sa', IDP_AUDIENCE),
    child: 'dashboards',
    environment: 'prod',
    scopes: ['read:metrics'],
    holderJkt: holder.jkt,
  });
  // The test IdP's tokens live 10 minutes: a parent fetches a fresh one well before, as a real one does.
  const refresher = setInterval(() => {
    void idp.token('argocd-sa', IDP_AUDIENCE).then((token) => {
      request.subjectToken = token;
    });
  }, 240_000);
  cleanup.push(async () => clearInterval(refresher));
  const fire = () => {
    const md = new Metadata();
    // Signed as sent (about 50 µs each, on the load generator): an assertion lives at most the replay window.
    md.set(
      'client-assertion',
      signClientAssertions(1, keys.argocd.privateKey, issuerUrl, {
        id: 'argocd',
        kid: 'argocd-1',
      })[0] as string,
    );
    client.delegate(request, md, (error) => {
      if (error) {
        failed++;
        firstError ||= error.message;
      } else issued++;
    });
  };
  const samples: Array<{ s: number } & Record<Service, number>> = [];
  const t0 = Date.now();
  log(`soak: ${RATE} Delegate/s for ${SOAK_S} s`);
  // Open loop: calls go out at the rate whatever the answers do, caught up from the clock on each
  // tick (a timer fires late under load; counting ticks would lower the rate).
  let fired = 0;
  const ticker = setInterval(() => {
    const due = Math.floor(((Date.now() - t0) / 1000) * RATE);
    for (; fired < due; fired++) fire();
  }, 10);
  const watched = running.find((r) => r.name === SNAPSHOT) as Running;
  const heapSamples: Array<{ s: number; name: Service; heap: number; external: number }> = [];
  const sampler = setInterval(() => {
    const s = (Date.now() - t0) / 1000;
    for (const r of running) void heapMb(r).then((h) => h && heapSamples.push({ s, name: r.name, ...h }));
    samples.push({
      s: (Date.now() - t0) / 1000,
      ...(Object.fromEntries(running.map((r) => [r.name, rssMb(r.child.pid as number)])) as Record<
        Service,
        number
      >),
    });
  }, SAMPLE_MS);
  // The early snapshot once warm-up has settled (the service pauses while it writes, a second or two).
  await sleep((SOAK_S / 4) * 1000);
  log(`${SNAPSHOT} heap snapshot (early)`);
  const early = await takeSnapshot(watched, workDir, 'early');
  await sleep(Math.max(0, SOAK_S * 1000 - (Date.now() - t0)));
  clearInterval(ticker);
  clearInterval(sampler);
  // Let the calls still in flight answer, so none is counted as neither issued nor failed.
  for (let i = 0; i < 100 && issued + failed < fired; i++) await sleep(100);
  log(`soak done: ${issued} issued, ${failed} failed`);
  if (failed > issued * 0.001) throw new Error(`${failed} Delegate calls failed (${firstError})`);

  log(`${SNAPSHOT} heap snapshot (late)`);
  const late = await takeSnapshot(watched, workDir, 'late');
  const heap = early && late ? heapGrowth(heapByConstructor(early, 40), heapByConstructor(late, 40)) : [];
  const heapSecondHalf = heapSamples.filter((p) => p.s >= SOAK_S / 2);
  /** A service's V8 heap in use and its memory outside the heap, each as MB per minute over the second half. */
  const heapSlopes = (name: Service) => {
    const points = heapSecondHalf.filter((p) => p.name === name);
    return {
      heap: slopePerMinute(points.map((p) => [p.s / 60, p.heap])),
      external: slopePerMinute(points.map((p) => [p.s / 60, p.external])),
      endHeap: points.at(-1)?.heap ?? Number.NaN,
    };
  };

  const secondHalf = samples.filter((p) => p.s >= SOAK_S / 2);
  const rows = SERVICES.map((name) => {
    const curve = samples.map((p) => p[name]);
    const slope = slopePerMinute(secondHalf.map((p) => [p.s / 60, p[name]]));
    return {
      name,
      rest: rest[name],
      max: Math.max(...curve),
      end: curve.at(-1) ?? Number.NaN,
      slope,
      ...Object.fromEntries(Object.entries(heapSlopes(name)).map(([k, v]) => [`${k}Mb`, v])),
    } as {
      name: Service;
      rest: number;
      max: number;
      end: number;
      slope: number;
      heapMb: number;
      externalMb: number;
      endHeapMb: number;
    };
  });
  const fmt = (n: number) => n.toFixed(1);
  const md = `# Memory of each service (RSS), at rest and under ${RATE} Delegate/s

${new Date().toISOString()}, Node ${process.version}, each service its own process from its production bundle
(\`node services/<name>/dist/main.js\`), one issuer, revoker, rotator and auditor (store: ${STORE === 'postgres' ? 'PostgreSQL' : 'embedded PGlite'}) on one
NATS. ${REST_S} s at rest, then ${SOAK_S} s at ${RATE} Delegate/s (open loop; ${fired} sent, ${issued} issued, ${failed} failed),
sampled every ${SAMPLE_MS / 1000} s. \`npm run bench -- memory\` (\`-- --soak-s 1800\` for a 30-minute soak).

| service | RSS at rest (MB) | max under load | at the end | RSS growth, second half (MB/min) | V8 heap at the end (MB) | heap growth, second half (MB/min) | outside the heap growth (MB/min) | at rest < ${REST_LIMIT_MB} MB |
|---|---|---|---|---|---|---|---|---|
${rows.map((r) => `| ${r.name} | ${fmt(r.rest)} | ${fmt(r.max)} | ${fmt(r.end)} | ${r.slope.toFixed(2)} | ${fmt(r.endHeapMb)} | ${r.heapMb.toFixed(2)} | ${r.externalMb.toFixed(2)} | ${r.rest < REST_LIMIT_MB ? 'pass' : 'FAIL'} |`).join('\n')}

Heap figures are each service's own (\`nodejs_heap_size_used_bytes\`, \`nodejs_external_memory_bytes\` on its
/metrics; a service without them shows NaN). RSS is what the kernel holds for the process: V8 keeps pages
it has grown into, and writing a heap snapshot grows the ${SNAPSHOT}'s by about its heap size at once.

What grew in the ${SNAPSHOT}'s V8 heap between a snapshot at ${Math.round(SOAK_S / 4)} s into the soak and one after it
(self size by constructor, largest growth first):

| what | early (MB) | late (MB) | early count | late count |
|---|---|---|---|---|
${heap.map((h) => `| ${h.what.replace(/\|/g, '\\|')} | ${h.earlyMb.toFixed(2)} | ${h.lateMb.toFixed(2)} | ${h.earlyCount} | ${h.lateCount} |`).join('\n')}

Curve (s: MB per service):

${samples
  .filter((_, i) => i % Math.max(1, Math.floor(samples.length / 20)) === 0)
  .map((p) => `- ${Math.round(p.s)} s: ${SERVICES.map((n) => `${n} ${fmt(p[n])}`).join(', ')}`)
  .join('\n')}
`;
  const name = STORE === 'postgres' ? 'memory' : 'memory-pglite';
  writeFileSync(join(RESULTS_DIR, `${name}.md`), md);
  writeFileSync(
    join(RESULTS_DIR, `${name}.json`),
    `${JSON.stringify({ date: new Date().toISOString(), store: STORE, rate: RATE, soakS: SOAK_S, issued, failed, rows, snapshot: SNAPSHOT, heap, heapSamples, samples }, null, 2)}\n`,
  );
  process.stdout.write(md);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
}
process.exit(exitCode);
