// Sustained audit ingest into PostgreSQL and into PGlite: events/s with zero loss and end-to-end lag
// (JetStream acknowledgement of the publish to the commit that made the row visible), next to the raw
// batched multi-row INSERT rate of the same rows into the same kind of store, measured in the same run.
// Writes bench/results/audit-ingest.md + .json.
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger, randomId } from '@aoa/core';
import { createDatabase, startNats } from '@aoa/testkit';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { buildAuditor } from '../services/auditor/src/app.js';
import { loadAuditorConfig } from '../services/auditor/src/config.js';
import { chainRows, GENESIS_HASH, type RowContent } from '../services/auditor/src/domain/chain.js';
import { AuditStore } from '../services/auditor/src/store/audit-store.js';
import type { SqlDriver } from '../services/auditor/src/store/driver.js';
import { migrate } from '../services/auditor/src/store/migrations.js';
import { openPglite } from '../services/auditor/src/store/pglite.js';
import { openPostgres } from '../services/auditor/src/store/postgres.js';
import { REPO_ROOT } from './lib/procs.js';
import { quantile } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    events: { type: 'string' },
    'publish-to': { type: 'string' },
    'per-message': { type: 'string', default: '1' },
  },
});
const EVENTS = Number(args.events ?? (args.quick ? 5_000 : 20_000));
const BATCH = 500;
/** Events per message in the batch-message rows: a DelegateBatch of 50 children's, on `aoa.audit.batch`. */
const PER_BATCH_MESSAGE = 50;
const IN_FLIGHT = 500;
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const log = (message: string) => console.error(`[bench] ${message}`);
const now = () => performance.timeOrigin + performance.now();

const event = (i: number) => ({
  id: randomId(),
  type: 'delegation.issued',
  time: new Date().toISOString(),
  source: 'bench/ingest',
  subject: `jti-${i}`,
  data: {
    jti: `jti-${i}`,
    child: 'jobs',
    env: 'prod',
    scopes_granted: ['read:metrics'],
    depth: 1,
    lineage: [],
  },
});

/** The raw rate: the same rows, chained, written with the store's batched INSERT and nothing else. */
async function rawInsertRate(db: SqlDriver): Promise<number> {
  await migrate(db);
  const store = new AuditStore(db);
  const rows = chainRows(
    GENESIS_HASH,
    Array.from(
      { length: EVENTS },
      (_, i): RowContent => ({ seq: i + 1, part: 0, parts: 1, ...event(i), marker: null }),
    ),
  );
  const writer = { epoch: 1, holder: 'bench' };
  await store.raiseFence(writer);
  const started = now();
  for (let i = 0; i < rows.length; i += BATCH) await store.append(writer, rows.slice(i, i + BATCH), []);
  return EVENTS / ((now() - started) / 1000);
}

/** Runs the publisher process; resolves when it has published, with each sequence's ack time. */
async function runPublisher(
  natsUrl: string,
  perMessage: number,
): Promise<{ started: number; acks: number[] }> {
  // The publisher runs in its own process, as the issuer would: it does not share the auditor's event loop.
  const child = fork(
    fileURLToPath(import.meta.url),
    ['--publish-to', natsUrl, '--events', String(EVENTS), '--per-message', String(perMessage)],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const messages: unknown[] = [];
  const waiters: Array<() => void> = [];
  child.on('message', (m) => {
    messages.push(m);
    waiters.shift()?.();
  });
  const nextMessage = async (): Promise<unknown> => {
    if (messages.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
    return messages.shift();
  };
  await nextMessage(); // connected
  const started = now();
  child.send('go');
  const acks = (await nextMessage()) as number[];
  return { started, acks };
}

const startBenchAuditor = (natsUrl: string, db: string) =>
  buildAuditor(
    loadAuditorConfig({
      NATS_URL: natsUrl,
      // The API is not called here; the auditor still needs a policy to authenticate callers with.
      AOA_POLICY_FILE: join(REPO_ROOT, 'packages/policy/src/fixtures/example.policy.yaml'),
      AOA_ISSUER_URL: 'https://issuer.bench.invalid',
      AOA_AUDIT_DB: db,
      AOA_AUDITOR_GRPC_LISTEN: '127.0.0.1:0',
      AOA_AUDITOR_HTTP_LISTEN: '127.0.0.1:0',
      AOA_AUDITOR_BATCH_SIZE: String(BATCH),
    }),
    { logger: createLogger({ service: 'auditor', level: 'error' }) },
  ).start();

/** Ingest of EVENTS events, `perMessage` to a message: every figure counts events, the lag messages. */
async function ingest(dbSetting: string, perMessage: number) {
  const messages = EVENTS / perMessage;
  const nats = await startNats();
  const auditor = await startBenchAuditor(nats.url, dbSetting);
  const ackedAt = new Float64Array(messages + 1);
  const committedAt = new Float64Array(messages + 1);
  let polled = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const head = (await auditor.store.head())?.seq ?? 0;
      const t = now();
      for (let s = polled + 1; s <= head; s += 1) committedAt[s] = t;
      polled = Math.max(polled, head);
      if (polled >= messages) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const { started, acks } = await runPublisher(nats.url, perMessage);
  for (let s = 1; s <= messages; s += 1) ackedAt[s] = acks[s] ?? Number.NaN;
  const published = now();
  await poller;
  polling = false;
  const finished = now();
  const stored = Number(
    (await auditor.store.db.query<{ n: unknown }>('SELECT count(DISTINCT id) AS n FROM audit_events'))[0]?.n,
  );
  const lags = Array.from({ length: messages }, (_, i) => committedAt[i + 1]! - ackedAt[i + 1]!).sort(
    (a, b) => a - b,
  );
  await auditor.stop();
  // Backlog drain: events published while no auditor runs, then one auditor drains them.
  await runPublisher(nats.url, perMessage);
  const drainer = await startBenchAuditor(nats.url, dbSetting);
  const drainStart = now();
  while (((await drainer.store.head())?.seq ?? 0) < 2 * messages) await new Promise((r) => setTimeout(r, 5));
  const drainPerSecond = EVENTS / ((now() - drainStart) / 1000);
  const storedAfterDrain = Number(
    (await drainer.store.db.query<{ n: unknown }>('SELECT count(DISTINCT id) AS n FROM audit_events'))[0]?.n,
  );
  await drainer.stop();
  await nats.stop();
  return {
    eventsPerSecond: EVENTS / ((finished - started) / 1000),
    publishPerSecond: EVENTS / ((published - started) / 1000),
    lost: EVENTS - stored + (EVENTS - (storedAfterDrain - stored)),
    drainPerSecond,
    lagMs: { p50: quantile(lags, 0.5), p99: quantile(lags, 0.99), max: lags.at(-1) ?? Number.NaN },
  };
}

/**
 * The publisher process: `IN_FLIGHT` events at a time, one a message or `perMessage` together on
 * `aoa.audit.batch` as DelegateBatch sends them; sends back each sequence's ack time.
 */
async function publish(url: string, perMessage: number): Promise<void> {
  const nc = await connect({ servers: url });
  const js = jetstream(nc);
  const ackedAt: number[] = new Array(EVENTS / perMessage + 1).fill(0);
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send?.('ready');
  });
  let next = 0;
  const publisher = async () => {
    while (next < EVENTS) {
      const events = Array.from({ length: perMessage }, () => event(next++));
      const [first] = events as [ReturnType<typeof event>];
      const ack =
        perMessage === 1
          ? await js.publish(`aoa.audit.${first.type}`, JSON.stringify(first), { msgID: first.id })
          : await js.publish('aoa.audit.batch', JSON.stringify({ events }), { msgID: first.id });
      ackedAt[ack.seq] = now();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT / perMessage }, publisher));
  await nc.close();
  await new Promise<void>((resolve) => process.send?.(ackedAt, () => resolve()));
}

/** Runs `use` on a fresh store of `kind` (a new database's URL, or a new PGlite directory), then removes it. */
async function withFreshStore<T>(
  kind: 'postgres' | 'pglite',
  use: (setting: string) => Promise<T>,
): Promise<T> {
  if (kind === 'postgres') {
    const db = await createDatabase();
    try {
      return await use(db.url);
    } finally {
      await db.drop();
    }
  }
  const dir = await mkdtemp(join(tmpdir(), 'aoa-bench-'));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main() {
  const results: Record<string, unknown> = {};
  const lines = [
    `# Audit ingest (${EVENTS} events, batches of ${BATCH})`,
    '',
    '| store | sustained events/s | backlog drain events/s | raw INSERT rows/s | drain / raw | publish events/s | lag p50 ms | lag p99 ms | lost |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const kind of ['postgres', 'pglite'] as const) {
    log(`${kind}: raw batched INSERT`);
    const raw = await withFreshStore(kind, async (setting) => {
      const driver = kind === 'postgres' ? openPostgres(setting) : await openPglite(setting);
      try {
        return await rawInsertRate(driver);
      } finally {
        await driver.close();
      }
    });
    // PostgreSQL also ingests DelegateBatch-shaped traffic: 50 events a message on aoa.audit.batch.
    for (const perMessage of kind === 'postgres' ? [1, PER_BATCH_MESSAGE] : [1]) {
      const label = perMessage === 1 ? kind : `${kind}, ${perMessage} events a message`;
      log(`${label}: auditor ingest`);
      const ingestResult = await withFreshStore(kind, (setting) => ingest(setting, perMessage));
      const ratio = ingestResult.drainPerSecond / raw;
      results[perMessage === 1 ? kind : `${kind}-batch-messages`] = {
        perMessage,
        rawInsertRowsPerSecond: raw,
        ratio,
        ...ingestResult,
      };
      const f = (n: number) => Math.round(n).toString();
      lines.push(
        `| ${label} | ${f(ingestResult.eventsPerSecond)} | ${f(ingestResult.drainPerSecond)} | ${f(raw)} | ${ratio.toFixed(2)} | ${f(ingestResult.publishPerSecond)} | ${ingestResult.lagMs.p50.toFixed(1)} | ${ingestResult.lagMs.p99.toFixed(1)} | ${ingestResult.lost} |`,
      );
    }
  }
  lines.push(
    '',
    'Targets (issue 5): PostgreSQL at least 10,000 events/s, at least 50% of the raw rate, lag p99 under 1 s, zero loss.',
    "Lag is measured from the publish acknowledgement to the first 5 ms poll that sees the row committed (for 50 events a message: the message's rows).",
    `Events per second count events in every row; "${PER_BATCH_MESSAGE} events a message" publishes them as DelegateBatch does (ADR 11), ${IN_FLIGHT} events in flight either way.`,
    'The publisher (its own process, 500 publishes in flight), nats-server, the auditor and PostgreSQL share the 2 cores.',
  );
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(
    join(RESULTS_DIR, 'audit-ingest.json'),
    `${JSON.stringify({ events: EVENTS, batch: BATCH, results }, null, 2)}\n`,
  );
  writeFileSync(join(RESULTS_DIR, 'audit-ingest.md'), `${lines.join('\n')}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (args['publish-to']) await publish(args['publish-to'], Number(args['per-message']));
else await main();
process.exit(0);
