import { AuditPublisher, createLogger, Subjects } from '@aoa/core';
import { type events, auditor as pb } from '@aoa/proto';
import { captureLogs } from '@aoa/testkit';
import { credentials } from '@grpc/grpc-js';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { buildAuditor, type RunningAuditor } from '../../services/auditor/src/app.js';
import { loadAuditorConfig } from '../../services/auditor/src/config.js';

/** Starts an auditor on free loopback ports with test-sized batches, lease and checkpoints. */
export async function startAuditor(
  natsUrl: string,
  db: string,
  env: Record<string, string> = {},
): Promise<RunningAuditor & { client: pb.AuditorClient; logs: ReturnType<typeof captureLogs> }> {
  const logs = captureLogs();
  const running = await buildAuditor(
    loadAuditorConfig({
      NATS_URL: natsUrl,
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
    isWriter: running.isWriter,
    stop: async () => {
      client.close();
      await running.stop();
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
      audit.publish('key.prepared', `kid-${i + j}`, { kid: `kid-${i + j}`, alg: 'EdDSA', state: 'prepared' }),
    );
    for (const event of await Promise.all(chunk)) ids.push(event.id);
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

export function verifyChain(client: pb.AuditorClient): Promise<pb.VerifyChainResponse> {
  return new Promise((resolve, reject) =>
    client.verifyChain({}, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

export function lineage(client: pb.AuditorClient, jti: string): Promise<pb.LineageResponse> {
  return new Promise((resolve, reject) =>
    client.lineage({ jti }, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

export function query(
  client: pb.AuditorClient,
  request: Partial<pb.QueryRequest>,
): Promise<events.AuditEvent[]> {
  return new Promise((resolve, reject) => {
    const out: events.AuditEvent[] = [];
    const call = client.query(pb.QueryRequest.fromPartial(request));
    call.on('data', (event: events.AuditEvent) => out.push(event));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
}
