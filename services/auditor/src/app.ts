import { readFile } from 'node:fs/promises';
import {
  type Clock,
  connectNats,
  ensureAuditStream,
  GrpcServer,
  type Logger,
  randomId,
  STREAMS,
  Subjects,
  serviceRoutes,
  startHttpServer,
  systemClock,
} from '@aoa/core';
import { auditor as pb } from '@aoa/proto';
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { AuditorConfig } from './config.js';
import { CheckpointSigner } from './domain/checkpoint.js';
import { auditorHandlers } from './grpc/auditor-service.js';
import { IngestSession } from './ingest/session.js';
import { AuditorMetrics } from './metrics.js';
import { CheckpointStream } from './nats/checkpoint-stream.js';
import { LEASE_BUCKET, WriterLease } from './nats/lease.js';
import { AuditStore } from './store/audit-store.js';
import type { SqlDriver } from './store/driver.js';
import { migrate } from './store/migrations.js';
import { openPglite } from './store/pglite.js';
import { openPostgres } from './store/postgres.js';

export const CONSUMER = 'auditor';

export interface AuditorDeps {
  logger: Logger;
  clock?: Clock;
  /** Collect process-wide default metrics (off when several instances share a process). */
  defaultMetrics?: boolean;
}

export interface RunningAuditor {
  grpcPort: number;
  httpPort: number;
  /** This instance's lease holder name. */
  instance: string;
  /** True while this instance holds the writer lease and ingests. */
  isWriter(): boolean;
  store: AuditStore;
  stop(): Promise<void>;
}

/**
 * Composes the auditor: the store (PostgreSQL or PGlite, migrated), NATS (audit stream, durable
 * consumer, lease bucket, checkpoint stream), the writer lease loop, and the gRPC and HTTP adapters.
 * Nothing happens until `start()`.
 */
export function buildAuditor(config: AuditorConfig, deps: AuditorDeps): { start(): Promise<RunningAuditor> } {
  return { start: () => startAuditor(config, deps) };
}

async function startAuditor(config: AuditorConfig, deps: AuditorDeps): Promise<RunningAuditor> {
  const clock = deps.clock ?? systemClock;
  const instance = `auditor/${randomId(6)}`;
  const log = deps.logger.child({ component: 'auditor', instance });
  const metrics = new AuditorMetrics(deps.defaultMetrics ?? false);
  const subjects = new Subjects(config.subjectPrefix);
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    const db = await openStore(config, log);
    cleanup.push(() => db.close());
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ versions: applied }, 'audit store migrated');
    const store = new AuditStore(db);

    const nc = await connectNats(
      {
        url: config.natsUrl,
        name: 'aoa-auditor',
        user: config.natsUser,
        passwordFile: config.natsPasswordFile,
      },
      log,
    );
    cleanup.push(() => nc.drain().catch(() => undefined));
    const jsm = await jetstreamManager(nc);
    await ensureAuditStream(jsm, subjects, {
      maxAgeSeconds: config.auditMaxAgeSeconds,
      maxBytes: config.auditMaxBytes,
    });
    await ensureConsumer(jsm, subjects, config);
    const checkpoints = new CheckpointStream(nc, jsm, `${config.subjectPrefix}.audit_checkpoints`, log);
    await checkpoints.ensure();
    const leaseKv = await new Kvm(nc).create(LEASE_BUCKET, { history: 1, storage: 'file' });
    const signer = new CheckpointSigner(config.keyFile ? await readFile(config.keyFile, 'utf8') : undefined);
    log.info({ checkpointKey: signer.publicKey }, 'checkpoint signing key');

    const lease = new WriterLease(leaseKv, instance, config.leaseTtlMs, clock, log);
    const writer = new WriterLoop(
      config,
      lease,
      () =>
        new IngestSession(
          {
            consumer: CONSUMER,
            prefix: config.subjectPrefix,
            batchSize: config.batchSize,
            flushMs: config.flushMs,
            maxEventBytes: config.maxEventBytes,
            gapRetryMs: 250,
            checkpointEvery: config.checkpointEvery,
            checkpointIntervalMs: config.checkpointIntervalMs,
          },
          { js: jetstream(nc), jsm, store, signer, checkpoints, metrics, clock, log },
        ),
      metrics,
      log,
    );
    writer.start();
    cleanup.push(() => writer.stop());

    const grpc = new GrpcServer(log, ['aoa/v1/auditor.proto']);
    const grpcPort = await grpc.listen(`${config.grpcListen.host}:${config.grpcListen.port}`);
    cleanup.push(() => grpc.stop());
    grpc.server.addService(
      pb.AuditorService,
      auditorHandlers({ store, checkpoints: () => checkpoints.readAll(), log }),
    );
    const http = await startHttpServer({
      listen: config.httpListen,
      log,
      routes: serviceRoutes({
        registry: metrics.registry,
        notReady: () => (nc.isClosed() ? ['nats connection closed'] : []),
      }),
    });
    cleanup.push(() => http.close());
    grpc.setServing(true, ['aoa.v1.Auditor']);
    log.info({ grpcPort, httpPort: http.port, store: db.kind }, 'auditor started');
    return {
      grpcPort,
      httpPort: http.port,
      instance,
      isWriter: () => writer.active,
      store,
      stop: () => runCleanup(cleanup),
    };
  } catch (error) {
    await runCleanup(cleanup);
    throw error;
  }
}

async function openStore(config: AuditorConfig, log: Logger): Promise<SqlDriver> {
  if (config.store.kind === 'postgres') return openPostgres(config.store.url);
  log.warn(
    { dataDir: config.store.dataDir },
    'audit store is embedded PGlite: development only (fsync off, one process); set AOA_AUDIT_DB to a postgres:// URL in production',
  );
  return openPglite(config.store.dataDir);
}

async function ensureConsumer(
  jsm: JetStreamManager,
  subjects: Subjects,
  config: AuditorConfig,
): Promise<void> {
  const settings = {
    ack_wait: config.ackWaitMs * 1e6,
    max_ack_pending: config.batchSize * 4,
  };
  try {
    const info = await jsm.consumers.info(STREAMS.audit, CONSUMER);
    if (
      info.config.ack_wait !== settings.ack_wait ||
      info.config.max_ack_pending !== settings.max_ack_pending
    ) {
      await jsm.consumers.update(STREAMS.audit, CONSUMER, settings);
    }
  } catch {
    await jsm.consumers.add(STREAMS.audit, {
      durable_name: CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: subjects.auditAll(),
      ...settings,
    });
  }
}

/** Keeps trying the lease; runs an ingest session while held, ends it the moment the lease is lost. */
class WriterLoop {
  active = false;
  private session: IngestSession | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: AuditorConfig,
    private readonly lease: WriterLease,
    private readonly newSession: () => IngestSession,
    private readonly metrics: AuditorMetrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.ticking = this.tick().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.config.leaseTtlMs / 3);
      });
    };
    tick();
  }

  private async tick(): Promise<void> {
    try {
      const held = await this.lease.tryAcquire();
      if (held && !this.session) {
        this.log.info('writer lease taken');
        this.session = this.newSession();
        this.active = true;
        this.metrics.writer.set(1);
        const session = this.session;
        void session.done.then(() => {
          if (this.session === session) {
            this.session = undefined;
            this.active = false;
            this.metrics.writer.set(0);
          }
        });
      } else if (!held && this.session) {
        this.log.warn('writer lease lost: standing by');
        await this.endSession();
      }
    } catch (error) {
      this.log.error({ err: error }, 'writer lease loop failed');
    }
  }

  private async endSession(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    this.active = false;
    this.metrics.writer.set(0);
    await session?.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    clearTimeout(this.timer);
    await this.endSession();
    await this.lease.release();
  }
}

async function runCleanup(steps: Array<() => Promise<void> | void>): Promise<void> {
  for (const step of steps.splice(0).reverse()) await step();
}
