import { readFile } from 'node:fs/promises';
import { IdpKeySets } from '@aoa/auth';
import {
  AuditPublisher,
  BUCKETS,
  bucketStream,
  type Clock,
  connectService,
  ensureAppMirrors,
  ensureAuditStream,
  GrantMirror,
  GrpcServer,
  grpcBaseUrl,
  hostForUrl,
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
  startHttpServer,
  systemClock,
} from '@aoa/core';
import { type Policy, PolicyStore, policyWarnings } from '@aoa/policy';
import { issuer as pb } from '@aoa/proto';
import { openRevocationWriter, type RevocationWriter, writeRevocation } from '@aoa/revocation';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { IssuerConfig } from './config.js';
import type { IssuerContext } from './domain/delegate.js';
import { SubjectTokenVerifier } from './domain/subject-token.js';
import { issuerHandlers } from './grpc/issuer-service.js';
import { DpopNonces } from './http/dpop-nonce.js';
import { RateLimiter } from './http/rate-limit.js';
import { issuerRoutes } from './http/routes.js';
import { KeyManager } from './keys/key-manager.js';
import { MemoryKeyStore } from './keys/memory-store.js';
import { KeyRotation } from './keys/rotation.js';
import { SealedKeyStore } from './keys/sealed-store.js';
import { IssuerMetrics } from './metrics.js';
import { mirrorGrantSource, serveGrantMint } from './nats/mint-handler.js';

export interface IssuerDeps {
  logger: Logger;
  clock?: Clock;
  /** Collect process-wide default metrics (off when several instances share a process). */
  defaultMetrics?: boolean;
}

export interface RunningIssuer {
  /** The issuer identifier: `iss` of every token and the metadata document. */
  issuer: string;
  grpcPort: number;
  httpPort: number;
  /** Base URL of the gRPC endpoint, the prefix of every DPoP `htu`. */
  grpcUrl: string;
  keys: KeyManager;
  policy(): Policy;
  stop(): Promise<void>;
}

/**
 * Composes the issuer: NATS (audit stream, key, replay and revocation stores), policy, keys, the
 * Delegate domain, and the gRPC and HTTP adapters. Nothing happens until `start()`.
 */
export function buildIssuer(config: IssuerConfig, deps: IssuerDeps): { start(): Promise<RunningIssuer> } {
  return { start: () => startIssuer(config, deps) };
}

async function startIssuer(config: IssuerConfig, deps: IssuerDeps): Promise<RunningIssuer> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger.child({ component: 'issuer' });
  const metrics = new IssuerMetrics(deps.defaultMetrics ?? false);
  const subjects = new Subjects(config.subjectPrefix);
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    const nc = await connectService(config, 'issuer', log);
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
    const [keysKv, signingKv, replay, revocationsKv, grantsKv] = await Promise.all([
      openBucket(kvm, BUCKETS.keys, { replicas: config.natsReplicas }),
      openBucket(kvm, BUCKETS.signingKeys, { replicas: config.natsReplicas }),
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
    if (config.natsAppsApi) {
      await ensureAppMirrors(
        nc,
        config.natsAppsApi,
        [bucketStream(BUCKETS.keys), bucketStream(BUCKETS.revocations)],
        log,
      );
    }
    const revocationMaxAgeSeconds = (await revocationsKv.status()).ttl / 1000 || Number.POSITIVE_INFINITY;
    const audit = new AuditPublisher(publisher, subjects, `issuer/${randomId(6)}`, log);

    const policyStore = await openPolicy(config.policyFile, revocationMaxAgeSeconds, audit, metrics, log);
    cleanup.push(() => policyStore.close());

    const keySet = new KeySetMirror(keysKv, log);
    await keySet.start();
    cleanup.push(() => keySet.stop());
    const store =
      config.keyManager === 'sealed'
        ? new SealedKeyStore(signingKv, await readKek(config.kekFile))
        : new MemoryKeyStore();
    const keys = new KeyManager(
      store,
      keysKv,
      async (type, key) => {
        await audit.publish(type, key.kid, {
          kid: key.kid,
          alg: key.alg,
          state: key.state,
          key_manager: store.kind,
        });
      },
      clock,
      log,
      config.signingAlg,
    );
    await keys.start();
    cleanup.push(() => keys.stop());
    if (!(await keySet.waitFor(keys.active().kid)))
      throw new Error('active signing key not visible in aoa_keys');

    const revocations = new RevocationMirror(revocationsKv, log);
    await revocations.start();
    cleanup.push(() => revocations.stop());

    const grpc = new GrpcServer(log, ['aoa/v1/issuer.proto']);
    const grpcPort = await grpc.listen(`${config.grpcListen.host}:${config.grpcListen.port}`, config.tls);
    cleanup.push(() => grpc.stop());
    const grpcUrl = grpcBaseUrl(config.grpcUrl, config.grpcListen.host, grpcPort, Boolean(config.tls));
    const scheme = config.tls ? 'https' : 'http';

    const notReady = () => [
      ...natsProbe.problems(),
      ...(revocations.ready() ? [] : ['revocation view not synchronised']),
    ];
    let issuer = config.issuerUrl ?? '';
    // The HTTP listener binds before the domain exists (the issuer URL may come from its port).
    let ctx: IssuerContext | undefined;
    let writer: RevocationWriter | undefined;
    const http = await startHttpServer({
      listen: config.httpListen,
      log,
      tls: config.tls,
      routes: issuerRoutes({
        issuer: () => issuer,
        issuerPath: config.issuerUrl ? new URL(config.issuerUrl).pathname : '/',
        grpcUrl,
        keys: keySet,
        metrics,
        notReady,
        clientCertificates: Boolean(config.tls?.clientCaFile),
        oauth: {
          context: () => ctx,
          revocationWriter: () => writer?.ctx,
          nonces: new DpopNonces(clock, await readNonceSecret(config.dpopNonceSecretFile)),
          perClient: new RateLimiter({ perSecond: config.tokenRatePerClient }, clock),
          perSource: new RateLimiter({ perSecond: config.tokenRatePerSource }, clock),
          log: log.child({ component: 'oauth' }),
        },
      }),
    });
    cleanup.push(() => http.close());
    issuer ||= `${scheme}://${hostForUrl(config.httpListen.host)}:${http.port}`;

    ctx = {
      issuer,
      policy: () => policyStore.current(),
      signingKey: () => keys.active(),
      subjects: new SubjectTokenVerifier(issuer, new IdpKeySets(3000, config.idpJwksMaxAgeMs), keySet, clock),
      revocations,
      replay,
      audit,
      clock,
      windowSeconds: config.replayWindowSeconds,
      busProblem: () => natsProbe.problems()[0],
    };
    // RFC 7009 revocations are written here as by the revoker, so this process drains the outbox too.
    writer = await openRevocationWriter({
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
    const openedWriter = writer;
    cleanup.push(() => openedWriter.stop());
    const rotation = new KeyRotation({
      keys,
      keySet,
      keysKv,
      nc,
      subjects,
      audit,
      revokeKid: async (kid, reason, by) => {
        const written = await writeRevocation(openedWriter.ctx, {
          target: { kind: 'kid', kid },
          reason,
          by,
          place: undefined,
        });
        return { revocationId: written.revocationId };
      },
      retainMs: () => policyStore.current().limits.maxTokenTtlSeconds * 1000,
      intervalMs: config.keyRotationMs,
      leadMs: config.keyPublicationLeadMs,
      remintTimeoutMs: config.keyRemintTimeoutMs,
      clock,
      log: log.child({ component: 'key-rotation' }),
    });
    rotation.start();
    cleanup.push(() => rotation.stop());
    grpc.addService(pb.IssuerService, issuerHandlers(ctx, grpcUrl, metrics, log, rotation));
    const grantMirror = new GrantMirror(grantsKv, nc, log.child({ component: 'grant-mirror' }));
    await grantMirror.start();
    cleanup.push(() => grantMirror.stop());
    const mintCtx = { ...ctx, grants: mirrorGrantSource(grantMirror, grantsKv) };
    const mintSub = serveGrantMint(nc, subjects, mintCtx, grantMirror, keys, metrics.registry, log);
    cleanup.push(() => mintSub.unsubscribe());
    grpc.followReadiness(notReady, ['aoa.v1.Issuer']);
    policyStore.watch();
    log.info({ issuer, grpcUrl, httpPort: http.port, keyManager: store.kind }, 'issuer started');
    return {
      issuer,
      grpcPort,
      httpPort: http.port,
      grpcUrl,
      keys,
      policy: () => policyStore.current(),
      stop: () => runCleanup(cleanup),
    };
  } catch (error) {
    await runCleanup(cleanup);
    throw error;
  }
}

/** A shared DPoP nonce secret lets replicas accept each other's nonces; absent, each draws its own. */
async function readNonceSecret(file: string | undefined): Promise<Buffer | undefined> {
  if (!file) return undefined;
  const secret = Buffer.from((await readFile(file, 'utf8')).trim(), 'utf8');
  if (secret.length < 16) throw new Error('AOA_DPOP_NONCE_SECRET_FILE: must hold at least 16 bytes');
  return secret;
}

async function readKek(file: string | undefined): Promise<Buffer> {
  if (!file) throw new Error('AOA_KEK_FILE: required for the sealed key manager');
  const text = (await readFile(file, 'utf8')).trim();
  const kek = Buffer.from(text, /^[0-9a-f]{64}$/i.test(text) ? 'hex' : 'base64');
  if (kek.length !== 32) throw new Error('AOA_KEK_FILE: must hold 32 bytes as hex or base64');
  return kek;
}

/**
 * Opens the policy and audits every load and refusal with its hash. A policy allowing tokens that
 * outlive the revocation bucket is refused: a revocation could expire before the token it revokes.
 */
async function openPolicy(
  path: string,
  revocationMaxAgeSeconds: number,
  audit: AuditPublisher,
  metrics: IssuerMetrics,
  log: Logger,
): Promise<PolicyStore> {
  const report = (promise: Promise<unknown>) =>
    promise.catch(() => log.error('policy audit event not acknowledged'));
  return PolicyStore.open(path, {
    validate: (policy) =>
      policy.limits.maxTokenTtlSeconds > revocationMaxAgeSeconds
        ? [
            `limits.max_token_ttl (${policy.limits.maxTokenTtlSeconds}s) exceeds the revocation bucket's max age (${revocationMaxAgeSeconds}s)`,
          ]
        : [],
    onLoaded: (policy) => {
      metrics.policyLoads.inc({ result: 'loaded' });
      log.info({ hash: policy.hash, rules: policy.rules.length }, 'policy loaded');
      for (const warning of policyWarnings(policy))
        log.warn({ hash: policy.hash, warning }, 'policy warning');
      void report(
        audit.publish('policy.loaded', policy.hash, {
          hash: policy.hash,
          path: policy.path,
          rules: policy.rules.length,
          clients: policy.clients.length,
          apps: policy.apps.length,
        }),
      );
    },
    onRejected: (problems, hash) => {
      metrics.policyLoads.inc({ result: 'rejected' });
      log.warn({ hash, problems }, 'policy change rejected; previous policy stays in force');
      void report(audit.publish('policy.rejected', hash || 'unreadable', { hash, path, problems }));
    },
  });
}
