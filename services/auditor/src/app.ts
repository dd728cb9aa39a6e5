import { readFile } from 'node:fs/promises';
import {
  AuditPublisher,
  type Clock,
  ConfigError,
  connectService,
  ensureAuditStream,
  followTokenMirrors,
  GrpcServer,
  grpcBaseUrl,
  type Logger,
  NatsProbe,
  openBucket,
  ReplayGuard,
  randomId,
  runCleanup,
  STREAMS,
  StreamPublisher,
  Subjects,
  serviceRoutes,
  startHttpServer,
  systemClock,
} from '@aoa/core';
import { PolicyStore } from '@aoa/policy';
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
import { parseTrustedKeys, type TrustedKeys } from './domain/checkpoint-keys.js';
import { auditorHandlers } from './grpc/auditor-service.js';
import { CreepAlertOutbox } from './ingest/creep-alerts.js';
import { IngestSession } from './ingest/session.js';
import { WriterLoop } from './ingest/writer-loop.js';
import { AuditorMetrics } from './metrics.js';
import { CheckpointStream } from './nats/checkpoint-stream.js';
import { LEASE_BUCKET, WriterLease } from './nats/lease.js';
import { serveUsageReports } from './nats/usage-subscription.js';
import { AuditStore } from './store/audit-store.js';
import { CreepStore } from './store/creep-store.js';
import type { SqlDriver } from './store/driver.js';
import { migrate } from './store/migrations.js';
import { openPglite } from './store/pglite.js';
import { openPostgres } from './store/postgres.js';
import { StoreProbe } from './store/store-probe.js';
import { UsageStore } from './store/usage-store.js';

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
  /** Base URL of the gRPC endpoint, the prefix of every DPoP `htu`. */
  grpcUrl: string;
  /** This instance's lease holder name. */
  instance: string;
  /** True while this instance holds the writer lease and ingests. */
  isWriter(): boolean;
  store: AuditStore;
  stop(): Promise<void>;
}

/**
 * Composes the auditor: the store (PostgreSQL or PGlite, migrated), NATS (audit stream, durable
 * consumer, lease bucket, checkpoint stream, `aoa_replay`, and mirrors of `aoa_keys` and
 * `aoa_revocations` for operator tokens), the writer lease loop, and the gRPC and HTTP adapters.
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
    const store = new AuditStore(db, { stallMs: config.leaseTtlMs });
    const storeProbe = new StoreProbe(db, 1000, log);
    storeProbe.start();
    cleanup.push(() => storeProbe.stop());

    const nc = await connectService(config, 'auditor', log);
    cleanup.push(() => nc.drain().catch(() => undefined));
    const publisher = new StreamPublisher(nc);
    cleanup.push(() => publisher.close());
    const natsProbe = new NatsProbe(nc, log);
    natsProbe.start();
    cleanup.push(() => natsProbe.stop());
    const jsm = await jetstreamManager(nc);
    await ensureAuditStream(jsm, subjects, {
      maxAgeSeconds: config.auditMaxAgeSeconds,
      maxBytes: config.auditMaxBytes,
      replicas: config.natsReplicas,
    });
    await ensureConsumer(jsm, subjects, config);
    const checkpoints = new CheckpointStream(
      nc,
      jsm,
      `${config.subjectPrefix}.audit_checkpoints`,
      config.natsReplicas,
      log,
    );
    await checkpoints.ensure();
    const kvm = new Kvm(nc);
    const [leaseKv, replay] = await Promise.all([
      openBucket(kvm, LEASE_BUCKET, { replicas: config.natsReplicas }),
      ReplayGuard.open(kvm, publisher, {
        replicas: config.natsReplicas,
        windowSeconds: config.replayWindowSeconds,
      }),
    ]);
    // Operator tokens: verified against the published keys and the revocations (not part of readiness:
    // until they are synchronised only operator calls are refused, as unavailable).
    const tokenMirrors = await followTokenMirrors(kvm, log);
    cleanup.push(() => tokenMirrors.stop());
    const signer = new CheckpointSigner(config.keyFile ? await readFile(config.keyFile, 'utf8') : undefined);
    const trustedKeys = await loadTrustedKeys(config, signer, log);
    const policyStore = await PolicyStore.open(config.policyFile, {
      onLoaded: (policy) => log.info({ hash: policy.hash }, 'policy loaded'),
      onRejected: (problems, hash) =>
        log.warn({ hash, problems }, 'policy change rejected; previous policy stays'),
    });
    cleanup.push(() => policyStore.close());
    const creepStore = new CreepStore(db);
    const creepOutbox = new CreepAlertOutbox(
      creepStore,
      new AuditPublisher(publisher, subjects, instance, log),
      instance,
      clock,
      log,
    );

    const lease = new WriterLease(leaseKv, instance, config.leaseTtlMs, clock, log);
    const writer = new WriterLoop(
      config,
      lease,
      (writer) =>
        new IngestSession(
          {
            writer,
            consumer: CONSUMER,
            prefix: config.subjectPrefix,
            batchSize: config.batchSize,
            flushMs: config.flushMs,
            maxEventBytes: config.maxEventBytes,
            gapRetryMs: 250,
            checkpointEvery: config.checkpointEvery,
            checkpointIntervalMs: config.checkpointIntervalMs,
          },
          {
            js: jetstream(nc),
            jsm,
            store,
            signer,
            checkpoints,
            creep: { store: creepStore, outbox: creepOutbox },
            metrics,
            clock,
            log,
          },
        ),
      metrics,
      log,
    );
    writer.start();
    cleanup.push(() => writer.stop());
    const usage = new UsageStore(db);
    const usageSub = serveUsageReports(nc, subjects, usage, metrics, log);
    cleanup.push(() => usageSub.unsubscribe());

    const grpc = new GrpcServer(log, ['aoa/v1/auditor.proto']);
    const grpcPort = await grpc.listen(`${config.grpcListen.host}:${config.grpcListen.port}`, config.grpcTls);
    cleanup.push(() => grpc.stop());
    const grpcUrl = grpcBaseUrl(config.grpcUrl, config.grpcListen.host, grpcPort, Boolean(config.tls));
    grpc.addService(
      pb.AuditorService,
      auditorHandlers({
        store,
        usage,
        checkpoints: () => checkpoints.readAll(),
        trustedKeys,
        caller: {
          policy: () => policyStore.current(),
          issuer: config.issuerUrl,
          windowSeconds: config.replayWindowSeconds,
          clock,
          replay,
          keys: tokenMirrors.keys,
          revocations: tokenMirrors.revocations,
        },
        grpcUrl,
        log,
      }),
    );
    const notReady = () => [...natsProbe.problems(), ...storeProbe.problems()];
    const http = await startHttpServer({
      listen: config.httpListen,
      log,
      tls: config.tls,
      routes: serviceRoutes({
        registry: metrics.registry,
        notReady,
      }),
    });
    cleanup.push(() => http.close());
    grpc.followReadiness(notReady, ['aoa.v1.Auditor']);
    policyStore.watch();
    log.info({ grpcPort, grpcUrl, httpPort: http.port, store: db.kind }, 'auditor started');
    return {
      grpcPort,
      httpPort: http.port,
      grpcUrl,
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
  if (config.store.kind === 'postgres') {
    const { url, passwordFile } = config.store;
    const password = passwordFile ? (await readFile(passwordFile, 'utf8')).trim() : undefined;
    return openPostgres(url, password);
  }
  log.warn(
    { dataDir: config.store.dataDir },
    'audit store is embedded PGlite: development only (fsync off, one process); set AOA_AUDIT_DB to a postgres:// URL in production',
  );
  return openPglite(config.store.dataDir);
}

/**
 * The pinned checkpoint keys, or undefined (trust on first use, said in the log). A pinned set that
 * leaves out this auditor's own key is allowed (keys roll) but logged: its checkpoints will not verify.
 */
async function loadTrustedKeys(
  config: AuditorConfig,
  signer: CheckpointSigner,
  log: Logger,
): Promise<TrustedKeys | undefined> {
  const file = config.checkpointPublicKeysFile;
  if (!file) {
    log.warn(
      { checkpointKey: signer.publicKey },
      'checkpoint keys are not pinned: checkpoints are trusted on first use (by the key each names); set AOA_AUDITOR_CHECKPOINT_PUBLIC_KEYS',
    );
    return undefined;
  }
  let trusted: TrustedKeys;
  try {
    trusted = parseTrustedKeys(await readFile(file, 'utf8'));
  } catch (error) {
    const problem = error instanceof TypeError ? error.message : 'unreadable';
    throw new ConfigError([`AOA_AUDITOR_CHECKPOINT_PUBLIC_KEYS: ${problem}`]);
  }
  const own = trusted.has(signer.publicKey);
  (own ? log.info.bind(log) : log.error.bind(log))(
    { checkpointKey: signer.publicKey, pinned: trusted.size },
    own
      ? 'checkpoint keys pinned'
      : "checkpoint keys pinned, but not this auditor's signing key: its checkpoints will fail VerifyChain",
  );
  return trusted;
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
