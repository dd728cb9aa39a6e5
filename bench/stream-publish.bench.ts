// What one acknowledged JetStream publish costs the publishing process: aoa's StreamPublisher (one
// reply subscription, acknowledgements matched by a counter) beside nats.js's own `jetstream(nc)`
// publish (a request per message), measured in the same run on the same connection and server. Two
// operations, as every Delegate makes them: an audit event (a delegation.issued envelope with
// `Nats-Msg-Id`) and a replay claim (KV `aoa_replay` create: nats.js `kv.create` beside
// `ReplayGuard.claim`). Closed loops of 1, 16 and 64 in flight; the ways alternate, 3 windows each,
// medians kept. Writes bench/results/stream-publish.md + .json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BUCKETS, ReplayGuard, randomId, StreamPublisher } from '@aoa/core';
import { startNats } from '@aoa/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { median } from './lib/load.js';
import { pinSelf, REPO_ROOT } from './lib/procs.js';
import { quantile } from './lib/stats.js';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, 'window-ms': { type: 'string' } },
});
const WINDOW_MS = Number(args['window-ms'] ?? (args.quick ? 500 : 2000));
const WINDOWS = args.quick ? 1 : 3;
const IN_FLIGHT = [1, 16, 64];
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const log = (message: string) => console.error(`[bench] ${message}`);

interface Window {
  opsPerS: number;
  cpuUsPerOp: number;
  p50Ms: number;
  p99Ms: number;
}

/** `inFlight` concurrent loops calling `op` until the window closes; CPU is this process's own. */
async function window(op: () => Promise<unknown>, inFlight: number): Promise<Window> {
  const latencies: number[] = [];
  const end = performance.now() + WINDOW_MS;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await op();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  return {
    opsPerS: (latencies.length / elapsedMs) * 1000,
    cpuUsPerOp: (used.user + used.system) / latencies.length,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
  };
}

const nats = await startNats();
// The server keeps its own core; this process and its measurements stay on core 1.
pinSelf(1);
const nc = await connect({ servers: nats.url, noAsyncTraces: true, name: 'bench-stream-publish' });
try {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'AOA_AUDIT', subjects: ['aoa.audit.>'], duplicate_window: 120e9 });
  const kv = await new Kvm(nc).create(BUCKETS.replay, { history: 1, ttl: 300_000 });
  const js = jetstream(nc);
  const publisher = new StreamPublisher(nc);
  const guard = new ReplayGuard(publisher);
  const envelope = () =>
    JSON.stringify({
      id: randomId(),
      type: 'delegation.issued',
      time: new Date().toISOString(),
      source: 'issuer/bench',
      subject: randomId(),
      data: {
        jti: randomId(),
        sub: 'idp:corp:argocd-sa',
        actors: ['client:argocd'],
        client_id: 'argocd',
        child: 'dashboards',
        env: 'prod',
        scopes_requested: ['read:metrics'],
        scopes_granted: ['read:metrics'],
        audience: ['urn:aoa:app:prod:dashboards'],
        exp: 1_800_000_000,
        depth: 1,
        rule: 'deployers-dashboards',
        kid: randomId(),
        cnf_jkt: randomId(32),
        lineage: [],
        parent_jti: '',
      },
    });
  const ways = {
    'audit event: jetstream(nc).publish': () =>
      js.publish('aoa.audit.delegation.issued', envelope(), { msgID: randomId(), timeout: 2000 }),
    'audit event: StreamPublisher': () =>
      publisher.publish('aoa.audit.delegation.issued', envelope(), { msgID: randomId(), timeout: 2000 }),
    'replay claim: kv.create': () => kv.create(`ca.${randomId(32)}`, '1'),
    'replay claim: ReplayGuard (StreamPublisher)': () => guard.claim('ca', 'argocd', randomId()),
  } as const;
  type Way = keyof typeof ways;
  const results: Record<number, Record<string, Window>> = {};
  for (const op of Object.values(ways)) await window(op, 16); // warm-up
  for (const inFlight of IN_FLIGHT) {
    const windows: Record<string, Window[]> = {};
    for (let w = 0; w < WINDOWS; w++) {
      for (const [name, op] of Object.entries(ways)) {
        const result = await window(op, inFlight);
        windows[name] = [...(windows[name] ?? []), result];
        log(`${name} ×${inFlight}: ${result.opsPerS.toFixed(0)}/s, ${result.cpuUsPerOp.toFixed(1)} µs/op`);
      }
    }
    results[inFlight] = Object.fromEntries(
      Object.entries(windows).map(([name, list]) => [
        name,
        {
          opsPerS: median(list.map((r) => r.opsPerS)),
          cpuUsPerOp: median(list.map((r) => r.cpuUsPerOp)),
          p50Ms: median(list.map((r) => r.p50Ms)),
          p99Ms: median(list.map((r) => r.p99Ms)),
        },
      ]),
    );
  }
  publisher.close();

  const pairs: Array<[Way, Way]> = [
    ['audit event: StreamPublisher', 'audit event: jetstream(nc).publish'],
    ['replay claim: ReplayGuard (StreamPublisher)', 'replay claim: kv.create'],
  ];
  const lines = [
    '# One acknowledged JetStream publish: StreamPublisher beside nats.js',
    '',
    `${new Date().toISOString()} · Node ${process.versions.node} · this process on core 1, nats-server unpinned · ` +
      `${WINDOWS} alternating windows of ${WINDOW_MS} ms per way, medians · \`npm run bench -- stream-publish\``,
    '',
    "CPU is the publishing process's own (`process.cpuUsage`) per acknowledged operation: what an issuer pays per audit event and per replay claim. Each audit event is a fresh ~700-byte `delegation.issued` envelope with its own `Nats-Msg-Id`; each claim a fresh key.",
    '',
    '| in flight | way | ops/s | client µs/op | p50 ms | p99 ms |',
    '| ---: | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const inFlight of IN_FLIGHT) {
    for (const [name, r] of Object.entries(results[inFlight] ?? {})) {
      lines.push(
        `| ${inFlight} | ${name} | ${r.opsPerS.toFixed(0)} | ${r.cpuUsPerOp.toFixed(1)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} |`,
      );
    }
  }
  lines.push('', '## Ratios (aoa / nats.js, same run)', '');
  lines.push('| in flight | operation | CPU per op | ops/s | p99 |', '| ---: | --- | ---: | ---: | ---: |');
  for (const inFlight of IN_FLIGHT) {
    for (const [ours, theirs] of pairs) {
      const a = results[inFlight]?.[ours];
      const b = results[inFlight]?.[theirs];
      if (!a || !b) continue;
      lines.push(
        `| ${inFlight} | ${ours.split(':')[0]} | ${(a.cpuUsPerOp / b.cpuUsPerOp).toFixed(2)}× | ${(a.opsPerS / b.opsPerS).toFixed(2)}× | ${(a.p99Ms / b.p99Ms).toFixed(2)}× |`,
      );
    }
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(
    join(RESULTS_DIR, 'stream-publish.json'),
    `${JSON.stringify({ windowMs: WINDOW_MS, windows: WINDOWS, results }, null, 2)}\n`,
  );
  writeFileSync(join(RESULTS_DIR, 'stream-publish.md'), `${lines.join('\n')}\n`);
  log('wrote bench/results/stream-publish.md and stream-publish.json');
} finally {
  await nc.close();
  await nats.stop();
}
