import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { AuditPublisher, createLogger, Subjects } from '@aoa/core';
import { type events, auditor as pb } from '@aoa/proto';
import { captureLogs } from '@aoa/testkit';
import { credentials, Metadata } from '@grpc/grpc-js';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { buildAuditor, type RunningAuditor } from '../../services/auditor/src/app.js';
import { loadAuditorConfig } from '../../services/auditor/src/config.js';
import type { AuditStore } from '../../services/auditor/src/store/audit-store.js';
import { clientAssertion, makeKey, type TestKey } from './oauth.js';
import { type TestSystem, testPolicy } from './system.js';

/** A registered client calling the Auditor: assertions name `issuer` as their audience. */
export interface AuditorCaller {
  clientId: string;
  key: TestKey;
  issuer: string;
}

/** The policy an auditor authenticates callers with, and an admin and a non-admin client of it. */
export interface AuditorAccess {
  policyPath: string;
  issuer: string;
  admin: AuditorCaller;
  nonAdmin: AuditorCaller;
}

export type TestAuditor = RunningAuditor & {
  client: pb.AuditorClient;
  logs: ReturnType<typeof captureLogs>;
  access: AuditorAccess;
};

/** A test system's policy: its admin client `ops` and its parent controller `argocd`. */
export function systemAccess(sys: TestSystem): AuditorAccess {
  const issuer = sys.issuer.issuer;
  return {
    policyPath: sys.policyPath,
    issuer,
    admin: { clientId: 'ops', key: sys.keys.admin, issuer },
    nonAdmin: { clientId: 'argocd', key: sys.keys.argocd, issuer },
  };
}

/** A test policy in a temporary directory, for an auditor without a test system around it. */
export async function standaloneAccess(): Promise<{ access: AuditorAccess; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'aoa-auditor-policy-'));
  const keys = { argocd: await makeKey(), ci: await makeKey('ES256'), admin: await makeKey() };
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, testPolicy('https://idp.aoa.test', keys));
  const issuer = 'https://issuer.aoa.test';
  return {
    access: {
      policyPath,
      issuer,
      admin: { clientId: 'ops', key: keys.admin, issuer },
      nonAdmin: { clientId: 'argocd', key: keys.argocd, issuer },
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Starts an auditor on free loopback ports with test-sized batches, lease and checkpoints. Callers are
 * authenticated against `access` (a test system's policy), or a policy of its own.
 */
export async function startAuditor(
  natsUrl: string,
  db: string,
  env: Record<string, string> = {},
  given?: AuditorAccess,
): Promise<TestAuditor> {
  const logs = captureLogs();
  const own = given ? undefined : await standaloneAccess();
  const access = given ?? (own as { access: AuditorAccess }).access;
  const running = await buildAuditor(
    loadAuditorConfig({
      NATS_URL: natsUrl,
      AOA_POLICY_FILE: access.policyPath,
      AOA_ISSUER_URL: access.issuer,
      AOA_AUDIT_DB: db,
      AOA_AUDITOR_GRPC_LISTEN: '127.0.0.1:0',
      AOA_AUDITOR_HTTP_LISTEN: '127.0.0.1:0',
      AOA_AUDITOR_ACK_WAIT: '2s',
      AOA_AUDITOR_LEASE_TTL: '1s',
      AOA_AUDITOR_CHECKPOINT_EVERY: '100',
      AOA_AUDITOR_CHECKPOINT_INTERVAL: '200ms',
      ...env,
    }),
    { logger: createLogger({ service: 'auditor', level: 'debug', destination: logs.stream }) },
  ).start();
  const client = new pb.AuditorClient(`127.0.0.1:${running.grpcPort}`, credentials.createInsecure());
  return {
    ...running,
    client,
    logs,
    access,
    isWriter: running.isWriter,
    stop: async () => {
      client.close();
      await running.stop();
      await own?.remove();
    },
  };
}

export async function publisher(natsUrl: string): Promise<{ nc: NatsConnection; audit: AuditPublisher }> {
  const nc = await connect({ servers: natsUrl });
  const log = createLogger({ service: 'test', level: 'silent' });
  return { nc, audit: new AuditPublisher(jetstream(nc), new Subjects('aoa'), 'test/burst', log) };
}

/** Publishes `count` events, `parallel` at a time. */
export async function burst(audit: AuditPublisher, count: number, parallel = 50): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += parallel) {
    const chunk = Array.from({ length: Math.min(parallel, count - i) }, (_, j) =>
      audit.envelope('key.prepared', `kid-${i + j}`, {
        kid: `kid-${i + j}`,
        alg: 'EdDSA',
        state: 'prepared',
      }),
    );
    await Promise.all(chunk.map((event) => audit.publishEnvelope(event)));
    for (const event of chunk) ids.push(event.id);
  }
  return ids;
}

export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Metadata with a fresh client assertion of `as` (the auditor's admin by default); none for `null`. */
async function callerMetadata(auditor: TestAuditor, as: AuditorCaller | null | undefined): Promise<Metadata> {
  const metadata = new Metadata();
  const caller = as === undefined ? auditor.access.admin : as;
  if (caller)
    metadata.set('client-assertion', await clientAssertion(caller.clientId, caller.key, caller.issuer));
  return metadata;
}

/** A VerifyChain answer without its last checkpoint (which depends on when checkpoints were signed). */
export const verdict = ({ ok, checked, problems }: pb.VerifyChainResponse) => ({ ok, checked, problems });

export async function verifyChain(
  auditor: TestAuditor,
  as?: AuditorCaller | null,
): Promise<pb.VerifyChainResponse> {
  const metadata = await callerMetadata(auditor, as);
  return new Promise((resolve, reject) =>
    auditor.client.verifyChain({}, metadata, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
}

export async function lineage(
  auditor: TestAuditor,
  jti: string,
  as?: AuditorCaller | null,
): Promise<pb.LineageResponse> {
  const metadata = await callerMetadata(auditor, as);
  return new Promise((resolve, reject) =>
    auditor.client.lineage({ jti }, metadata, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
}

export async function query(
  auditor: TestAuditor,
  request: Partial<pb.QueryRequest>,
  as?: AuditorCaller | null,
): Promise<events.AuditEvent[]> {
  const metadata = await callerMetadata(auditor, as);
  return new Promise((resolve, reject) => {
    const out: events.AuditEvent[] = [];
    const call = auditor.client.query(pb.QueryRequest.fromPartial(request), metadata);
    call.on('data', (event: events.AuditEvent) => out.push(event));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
}

export async function unusedScopes(
  auditor: TestAuditor,
  request: Partial<pb.UnusedScopesRequest> = {},
  as?: AuditorCaller | null,
): Promise<pb.UnusedScopesResponse> {
  const metadata = await callerMetadata(auditor, as);
  return new Promise((resolve, reject) =>
    auditor.client.unusedScopes(pb.UnusedScopesRequest.fromPartial(request), metadata, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
}

/**
 * Steps that undo what a test file started, run last first after all its tests; a failing step does not
 * stop the others. Call once, at the top of the file.
 */
export function cleanupAfterAll(): Array<() => Promise<void>> {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const step of cleanups.reverse()) await step().catch(() => undefined);
  });
  return cleanups;
}

/** The rows of the audit store's events, markers included, that satisfy `where`. */
export const countRows = async (store: AuditStore, where = 'true'): Promise<number> =>
  Number(
    (await store.db.query<{ n: unknown }>(`SELECT count(*) AS n FROM audit_events WHERE ${where}`))[0]?.n,
  );

export const headSeq = async (store: AuditStore): Promise<number> => (await store.head())?.seq ?? 0;

/** The highest sequence a checkpoint covers, 0 without any. */
export const checkpointedSeq = async (store: AuditStore): Promise<number> =>
  Number((await store.db.query<{ s: unknown }>('SELECT coalesce(max(seq), 0) AS s FROM checkpoints'))[0]?.s);
