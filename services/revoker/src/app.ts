import {
  AppError,
  AuditPublisher,
  BUCKETS,
  type Clock,
  connectService,
  ensureAuditStream,
  GrpcServer,
  grpcBaseUrl,
  KeySetMirror,
  type Logger,
  NatsProbe,
  openBucket,
  ReplayGuard,
  RevocationMirror,
  randomId,
  runCleanup,
  StreamPublisher,
  Subjects,
  serviceRoutes,
  startHttpServer,
  systemClock,
} from '@aoa/core';
import { PolicyStore } from '@aoa/policy';
import { revoker as pb } from '@aoa/proto';
import { kvGrantRegistry, openRevocationWriter } from '@aoa/revocation';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { RevokerConfig } from './config.js';
import type { RevokerContext } from './domain/revoke.js';
import { revokerHandlers } from './grpc/revoker-service.js';
import { RevokerMetrics } from './metrics.js';

export { OUTBOX_BUCKET } from '@aoa/revocation';

/** How long a listing waits for the mirror to apply what the bucket already holds. */
const LIST_CATCH_UP_MS = 2000;

export interface RevokerDeps {
  logger: Logger;
  clock?: Clock;
  /** Collect process-wide default metrics (off when several instances share a process). */
  defaultMetrics?: boolean;
}

export interface RunningRevoker {
  grpcPort: number;
  httpPort: number;
  /** Base URL of the gRPC endpoint, the prefix of every DPoP `htu`. */
  grpcUrl: string;
  /** Audit events still waiting for JetStream. */
  outboxPending(): number;
  stop(): Promise<void>;
}

/**
 * Composes the revoker: NATS (audit stream, `aoa_revocations`, `aoa_keys`, `aoa_replay`, the outbox),
 * policy (registered clients), the Revoke domain, and the gRPC and HTTP adapters. Nothing happens
 * until `start()`.
 */
export function buildRevoker(config: RevokerConfig, deps: RevokerDeps): { start(): Promise<RunningRevoker> } {
  return { start: () => startRevoker(config, deps) };
}

async function startRevoker(config: RevokerConfig, deps: RevokerDeps): Promise<RunningRevoker> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger.child({ component: 'revoker' });
  const metrics = new RevokerMetrics(deps.defaultMetrics ?? false);
  const subjects = new Subjects(config.subjectPrefix);
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    const nc = await connectService(config, 'revoker', log);
    cleanup.push(() => nc.drain().catch(() => undefined));
    const publisher = new StreamPublisher(nc);
    cleanup.push(() => publisher.close());
    const natsProbe = new NatsProbe(nc, log);
    natsProbe.start();
    cleanup.push(() => natsProbe.stop());
    await ensureAuditStream(await jetstreamManager(nc), subjects, {
      maxAgeSeconds: config.auditMaxAgeSeconds,
      maxBytes: config.auditMaxBytes,
      replicas: config.natsReplicas,
    });
    const kvm = new Kvm(nc);
    const [keysKv, replay, revocationsKv, grantsKv] = await Promise.all([
      openBucket(kvm, BUCKETS.keys, { replicas: config.natsReplicas }),
      ReplayGuard.open(kvm, publisher, {
        replicas: config.natsReplicas,
        windowSeconds: config.replayWindowSeconds,
      }),
      openBucket(kvm, BUCKETS.revocations, {
        replicas: config.natsReplicas,
        maxAgeMs: config.revocationMaxAgeSeconds * 1000,
      }),
      openBucket(kvm, BUCKETS.grants, { replicas: config.natsReplicas }),
    ]);
    const bucketAge = (await revocationsKv.status()).ttl / 1000;
    if (bucketAge !== 0 && bucketAge < config.revocationMaxAgeSeconds) {
      throw new Error(
        `AOA_REVOCATION_MAX_AGE: bucket ${BUCKETS.revocations} keeps entries ${bucketAge}s, less than the configured ${config.revocationMaxAgeSeconds}s`,
      );
    }

    const policyStore = await PolicyStore.open(config.policyFile, {
      onLoaded: (policy) => log.info({ hash: policy.hash }, 'policy loaded'),
      onRejected: (problems, hash) =>
        log.warn({ hash, problems }, 'policy change rejected; previous policy stays'),
    });
    cleanup.push(() => policyStore.close());
    const keys = new KeySetMirror(keysKv, log);
    await keys.start();
    cleanup.push(() => keys.stop());
    const revocations = new RevocationMirror(revocationsKv, log);
    await revocations.start();
    cleanup.push(() => revocations.stop());

    const audit = new AuditPublisher(publisher, subjects, `revoker/${randomId(6)}`, log);
    const writer = await openRevocationWriter({
      nc,
      kvm,
      revocationsKv,
      subjects,
      audit,
      metrics,
      clock,
      log,
      outboxMaxAgeSeconds: config.auditMaxAgeSeconds,
      retryMs: config.outboxRetryMs,
      replicas: config.natsReplicas,
    });
    cleanup.push(() => writer.stop());

    const ctx: RevokerContext = {
      issuer: config.issuerUrl,
      policy: () => policyStore.current(),
      keys,
      revocations,
      replay,
      windowSeconds: config.replayWindowSeconds,
      ...writer.ctx,
      grants: kvGrantRegistry(grantsKv),
      log,
    };

    const grpc = new GrpcServer(log, ['aoa/v1/revoker.proto']);
    const grpcPort = await grpc.listen(`${config.grpcListen.host}:${config.grpcListen.port}`, config.grpcTls);
    cleanup.push(() => grpc.stop());
    const grpcUrl = grpcBaseUrl(config.grpcUrl, config.grpcListen.host, grpcPort, Boolean(config.tls));
    grpc.addService(
      pb.RevokerService,
      revokerHandlers({
        ctx,
        list: async () => {
          // The bucket's last revision comes from the server: without it, the view cannot be vouched for.
          if (!(await revocations.catchUp(LIST_CATCH_UP_MS).catch(() => false))) {
            throw new AppError('unavailable', 'revocation view has not caught up with the bucket; retry');
          }
          return revocations.list();
        },
        grpcBaseUrl: grpcUrl,
        metrics,
        log,
      }),
    );
    const notReady = () => [
      ...natsProbe.problems(),
      ...(revocations.ready() ? [] : ['revocation view not synchronised']),
    ];
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
    grpc.followReadiness(notReady, ['aoa.v1.Revoker']);
    policyStore.watch();
    log.info({ grpcUrl, httpPort: http.port }, 'revoker started');
    return {
      grpcPort,
      httpPort: http.port,
      grpcUrl,
      outboxPending: () => writer.pending(),
      stop: () => runCleanup(cleanup),
    };
  } catch (error) {
    await runCleanup(cleanup);
    throw error;
  }
}
