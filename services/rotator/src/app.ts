import { IdpKeySets, verifyPolicyIdpToken } from '@aoa/auth';
import {
  AuditPublisher,
  BUCKETS,
  type Clock,
  connectService,
  ensureAppMirrors,
  ensureAuditStream,
  followTokenMirrors,
  GrantMirror,
  GrpcServer,
  grpcBaseUrl,
  type Logger,
  NatsProbe,
  openBucket,
  ReplayGuard,
  randomId,
  revocationKeys,
  runCleanup,
  STREAMS,
  StreamPublisher,
  Subjects,
  serviceRoutes,
  startHttpServer,
  systemClock,
} from '@aoa/core';
import { PolicyStore } from '@aoa/policy';
import { rotator as pb } from '@aoa/proto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { RotatorConfig } from './config.js';
import type { RotatorContext } from './domain/operations.js';
import { rotatorHandlers } from './grpc/rotator-service.js';
import { RotatorMetrics } from './metrics.js';
import { ensureCredsStream } from './nats/creds-stream.js';
import { GrantStore } from './nats/grant-store.js';
import { PolicyReconciler } from './nats/policy-reconciler.js';
import { serveRemint } from './nats/remint-handler.js';
import { RotationLoop } from './nats/rotation-loop.js';

export interface RotatorDeps {
  logger: Logger;
  clock?: Clock;
  /** Collect process-wide default metrics (off when several instances share a process). */
  defaultMetrics?: boolean;
}

export interface RunningRotator {
  grpcPort: number;
  httpPort: number;
  /** Base URL of the gRPC endpoint, the prefix of every DPoP `htu`. */
  grpcUrl: string;
  /** This replica's lease holder id. */
  holder: string;
  stop(): Promise<void>;
}

/**
 * Composes the rotator: NATS (audit stream, `AOA_CREDS`, `aoa_grants`, `aoa_replay`, and mirrors of
 * `aoa_keys` and `aoa_revocations` for operator tokens), policy
 * (registered clients, grant checks), the grant domain, the rotation loop, and the gRPC and HTTP
 * adapters. Nothing happens until `start()`.
 */
export function buildRotator(config: RotatorConfig, deps: RotatorDeps): { start(): Promise<RunningRotator> } {
  return { start: () => startRotator(config, deps) };
}

async function startRotator(config: RotatorConfig, deps: RotatorDeps): Promise<RunningRotator> {
  const clock = deps.clock ?? systemClock;
  const holder = `rotator/${randomId(6)}`;
  const log = deps.logger.child({ component: 'rotator', holder });
  const metrics = new RotatorMetrics(deps.defaultMetrics ?? false);
  const subjects = new Subjects(config.subjectPrefix);
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    const nc = await connectService(config, 'rotator', log);
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
    await ensureCredsStream(jsm, subjects, config.natsReplicas);
    if (config.natsAppsApi) await ensureAppMirrors(nc, config.natsAppsApi, [STREAMS.creds], log);
    const kvm = new Kvm(nc);
    const [grantsKv, replay] = await Promise.all([
      openBucket(kvm, BUCKETS.grants, { replicas: config.natsReplicas }),
      ReplayGuard.open(kvm, publisher, {
        replicas: config.natsReplicas,
        windowSeconds: config.replayWindowSeconds,
      }),
    ]);
    let reconciler: PolicyReconciler | undefined;
    const policyStore = await PolicyStore.open(config.policyFile, {
      onLoaded: (policy) => {
        log.info({ hash: policy.hash, grants: policy.grants.length }, 'policy loaded');
        void reconciler?.reconcile(policy);
      },
      onRejected: (problems, hash) =>
        log.warn({ hash, problems }, 'policy change rejected; previous policy stays'),
    });
    cleanup.push(() => policyStore.close());

    const js = jetstream(nc);
    const mirror = new GrantMirror(grantsKv, nc, log);
    await mirror.start();
    cleanup.push(() => mirror.stop());
    const store = new GrantStore(grantsKv, mirror);
    const audit = new AuditPublisher(publisher, subjects, holder, log);
    const loop = new RotationLoop({
      store,
      nc,
      js,
      subjects,
      audit,
      holder,
      leaseMs: config.leaseMs,
      scanMs: config.scanMs,
      mintTimeoutMs: config.mintTimeoutMs,
      clock,
      log,
      metrics,
    });
    const rotateNow = async (grantId: string, avoidKid?: string) => {
      await store.markDue(grantId, avoidKid);
      loop.kick();
    };
    reconciler = new PolicyReconciler({ store, audit, clock, log, metrics, rotateNow, retryMs: 5000 });
    cleanup.push(() => reconciler?.stop());
    await reconciler.reconcile(policyStore.current());
    // Operator tokens: not part of readiness (until synchronised, only operator calls are refused).
    const tokenMirrors = await followTokenMirrors(kvm, log);
    cleanup.push(() => tokenMirrors.stop());
    const idpKeys = new IdpKeySets();
    const ctx: RotatorContext = {
      issuer: config.issuerUrl,
      policy: () => policyStore.current(),
      store,
      replay,
      keys: tokenMirrors.keys,
      revocations: tokenMirrors.revocations,
      audit,
      subjects,
      clock,
      windowSeconds: config.replayWindowSeconds,
      maxGrantLifetimeSeconds: config.maxGrantLifetimeSeconds,
      liftGrantRevocation: async (grantId, upToMs) => {
        const revocations = await kvm.open(BUCKETS.revocations);
        const key = revocationKeys.grant(grantId);
        const entry = await revocations.get(key);
        if (entry?.operation !== 'PUT') return;
        const atMs = entry.json<{ at_ms?: unknown }>().at_ms;
        if (typeof atMs === 'number' && atMs > upToMs) return;
        // Compare-and-set: a newer revocation written meanwhile is not deleted.
        await revocations.delete(key, { previousSeq: entry.revision });
      },
      rotateNow,
      verifySubjectToken: (token, policy) => verifyPolicyIdpToken(token, policy, idpKeys, clock),
    };

    const grpc = new GrpcServer(log, ['aoa/v1/rotator.proto']);
    const grpcPort = await grpc.listen(`${config.grpcListen.host}:${config.grpcListen.port}`, config.grpcTls);
    cleanup.push(() => grpc.stop());
    const grpcUrl = grpcBaseUrl(config.grpcUrl, config.grpcListen.host, grpcPort, Boolean(config.tls));
    grpc.addService(pb.RotatorService, rotatorHandlers(ctx, grpcUrl, metrics, log));
    const notReady = () => natsProbe.problems();
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
    loop.start();
    cleanup.push(() => loop.stop());
    const remint = serveRemint({ nc, subjects, store, rotateNow, clock, log });
    cleanup.push(() => remint.unsubscribe());
    grpc.followReadiness(notReady, ['aoa.v1.Rotator']);
    policyStore.watch();
    log.info({ grpcPort, grpcUrl, httpPort: http.port }, 'rotator started');
    return { grpcPort, httpPort: http.port, grpcUrl, holder, stop: () => runCleanup(cleanup) };
  } catch (error) {
    await runCleanup(cleanup);
    throw error;
  }
}
