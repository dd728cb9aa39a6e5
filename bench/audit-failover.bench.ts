// Auditor failover catch-up (#14 item 1): two auditor processes (their production bundles) on one
// PostgreSQL and one NATS. Three phases, each over the same number of events:
//   ingest   the writer stores a burst as it is published: events/s from the first publish to the
//            last row committed (the ingest rate);
//   takeover the writer is paused (SIGSTOP) and a backlog published; the standby takes the lease once
//            the writer's runs out: events/s from "writer lease taken" to the backlog stored (the
//            catch-up rate), then the paused writer resumes and must store nothing;
//   peer     a restart, the case before the fence: both stopped, a backlog published, one fresh
//            auditor started: events/s from its "writer lease taken" to the backlog stored.
// Target: catch-up at least 50% of the ingest rate. Every event is checked stored exactly once.
//
//   npx tsx bench/audit-failover.bench.ts [--events 20000] [--quick] [--lease-ttl 10s] [--ack-wait 30s]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startNats, startPostgres } from '@aoa/testkit';
import { AuditStore } from '../services/auditor/src/store/audit-store.js';
import { openPostgres } from '../services/auditor/src/store/postgres.js';
import { burst, publisher, standaloneAccess, until } from '../test/support/auditor.js';
import { buildServices, type ServiceProcess, startBuilt, waitForLog } from '../test/support/processes.js';
import { REPO_ROOT } from './lib/procs.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string' },
    quick: { type: 'boolean', default: false },
    // The auditor's own defaults unless given (AOA_AUDITOR_LEASE_TTL, AOA_AUDITOR_ACK_WAIT).
    'lease-ttl': { type: 'string' },
    'ack-wait': { type: 'string' },
  },
});
const EVENTS = Number(args.events ?? (args.quick ? 3000 : 20000));
const TARGET = 0.5;
const log = (message: string) => console.error(`[bench] ${message}`);

const cleanup: Array<() => Promise<unknown>> = [];
let exitCode = 0;
try {
  log('building the auditor bundle');
  buildServices('auditor');
  const nats = await startNats();
  cleanup.push(() => nats.stop());
  const postgres = await startPostgres();
  cleanup.push(() => postgres.destroy());
  const access = await standaloneAccess();
  cleanup.push(access.remove);
  const env = {
    NATS_URL: nats.url,
    AOA_POLICY_FILE: access.access.policyPath,
    AOA_ISSUER_URL: access.access.issuer,
    AOA_AUDIT_DB: postgres.url,
    AOA_AUDITOR_GRPC_LISTEN: '127.0.0.1:0',
    AOA_AUDITOR_HTTP_LISTEN: '127.0.0.1:0',
    ...(args['lease-ttl'] ? { AOA_AUDITOR_LEASE_TTL: args['lease-ttl'] } : {}),
    ...(args['ack-wait'] ? { AOA_AUDITOR_ACK_WAIT: args['ack-wait'] } : {}),
    LOG_LEVEL: 'info',
  };
  const start = async (): Promise<ServiceProcess> => {
    const p = startBuilt('auditor', env);
    cleanup.push(async () => {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
      await p.exited;
    });
    await waitForLog(p, 'auditor started');
    return p;
  };
  const db = await openPostgres(postgres.url);
  cleanup.push(() => db.close());
  const store = new AuditStore(db);
  const head = async () => (await store.head())?.seq ?? 0;
  const { nc, audit } = await publisher(nats.url);
  cleanup.push(() => nc.close());
  /** When the last of `total` rows is committed, polled every 5 ms. */
  const storedAll = async (total: number) => {
    await until(`${total} events stored`, async () => (await head()) >= total, 600_000);
    return performance.now();
  };
  /** The moment (performance.now()) a process logged `msg`, from its log line's time. */
  const loggedAt = async (p: ServiceProcess, msg: string) =>
    Number((await waitForLog(p, msg)).time) - performance.timeOrigin;
  const published: string[] = [];

  const a = await start();
  await waitForLog(a, 'writer lease taken');
  const b = await start();
  log(`ingest: ${EVENTS} events with a writer and a standby`);
  let t0 = performance.now();
  published.push(...(await burst(audit, EVENTS, 500)));
  const ingestRate = EVENTS / (((await storedAll(published.length)) - t0) / 1000);

  log('takeover: writer paused, backlog published, standby takes over');
  a.child.kill('SIGSTOP');
  published.push(...(await burst(audit, EVENTS, 500)));
  const takenAt = await loggedAt(b, 'writer lease taken');
  const catchUpRate = EVENTS / (((await storedAll(published.length)) - takenAt) / 1000);
  a.child.kill('SIGCONT');
  await waitForLog(a, 'writer lease lost: standing by');

  log('peer: a restart drains the backlog');
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  await Promise.all([a.exited, b.exited]);
  published.push(...(await burst(audit, EVENTS, 500)));
  const c = await start();
  t0 = await loggedAt(c, 'writer lease taken');
  const restartRate = EVENTS / (((await storedAll(published.length)) - t0) / 1000);

  const [counts] = await db.query<{ n: unknown; ids: unknown; markers: unknown }>(
    'SELECT count(*) FILTER (WHERE marker IS NULL) AS n, count(DISTINCT id) FILTER (WHERE marker IS NULL) AS ids, count(*) FILTER (WHERE marker IS NOT NULL) AS markers FROM audit_events',
  );
  const once = Number(counts?.n) === published.length && Number(counts?.ids) === published.length;
  const ratio = catchUpRate / ingestRate;
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  const md = `# Auditor failover catch-up (${EVENTS} events per phase)

${new Date().toISOString()}, Node ${process.version}. Two auditor processes (\`node services/auditor/dist/main.js\`,
lease TTL ${args['lease-ttl'] ?? 'default'}, ack wait ${args['ack-wait'] ?? 'default'}) on one PostgreSQL and one nats-server; the publisher (${EVENTS} events, 500 in
flight) runs in the bench process. All share the machine's 2 cores. \`npm run bench -- audit-failover\`.

| phase | events/s | vs ingest |
|---|--:|--:|
| ingest (writer with a standby, as published) | ${f(ingestRate)} | 1.00 |
| takeover catch-up (writer paused, standby drains) | ${f(catchUpRate)} | ${ratio.toFixed(2)} |
| peer: restart, one fresh auditor drains | ${f(restartRate)} | ${(restartRate / ingestRate).toFixed(2)} |

Target (#14): catch-up at least ${TARGET} of the ingest rate: **${ratio >= TARGET ? 'pass' : 'MISSED'}** (${ratio.toFixed(2)}).
Catch-up vs the restart peer: ${(catchUpRate / restartRate).toFixed(2)}.
Every event stored exactly once: **${once ? 'yes' : 'NO'}** (${Number(counts?.n)} rows for ${published.length} published,
${Number(counts?.ids)} distinct ids, ${Number(counts?.markers)} marker rows); the resumed writer logged
"writer lease lost: standing by" and stored nothing of its own.
`;
  writeFileSync(join(REPO_ROOT, 'bench', 'results', 'audit-failover.md'), md);
  writeFileSync(
    join(REPO_ROOT, 'bench', 'results', 'audit-failover.json'),
    `${JSON.stringify({ date: new Date().toISOString(), events: EVENTS, ingestRate, catchUpRate, restartRate, ratio, once, counts }, null, 2)}\n`,
  );
  process.stdout.write(md);
  if (!once) exitCode = 1;
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
}
process.exit(exitCode);
