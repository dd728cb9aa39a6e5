import { type AuditEnvelope, type BUCKETS, STREAMS } from '@aoa/core';
import { issuer as pb } from '@aoa/proto';
import { credentials } from '@grpc/grpc-js';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { RunningIssuer } from '../../services/issuer/src/app.js';

/** A test's own view of the bus: raw KV and stream access, as an operator with the `nats` CLI has. */
export interface BusProbe {
  nc: NatsConnection;
  jsm: JetStreamManager;
  bucket(name: (typeof BUCKETS)[keyof typeof BUCKETS]): Promise<KV>;
  /** Every live entry of a bucket, by key, as raw text. */
  entries(name: (typeof BUCKETS)[keyof typeof BUCKETS]): Promise<Map<string, string>>;
  /** The last audit event of a type on `AOA_AUDIT`, with its stream sequence. */
  lastAudit(type: string, prefix?: string): Promise<{ seq: number; event: AuditEnvelope } | undefined>;
  /** Every audit event on `AOA_AUDIT`, those of `aoa.audit.batch` messages one by one, in stream order. */
  auditEvents(): Promise<Array<{ seq: number; subject: string; event: AuditEnvelope }>>;
  close(): Promise<void>;
}

export async function probeBus(url: string): Promise<BusProbe> {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  const bucket = (name: string) => kvm.open(name);
  return {
    nc,
    jsm,
    bucket,
    entries: async (name) => {
      const kv = await bucket(name);
      const out = new Map<string, string>();
      for await (const key of await kv.keys()) {
        const entry = await kv.get(key);
        if (entry?.operation === 'PUT') out.set(key, entry.string());
      }
      return out;
    },
    lastAudit: async (type, prefix = 'aoa') => {
      const msg = await jsm.streams.getMessage(STREAMS.audit, { last_by_subj: `${prefix}.audit.${type}` });
      return msg ? { seq: msg.seq, event: msg.json<AuditEnvelope>() } : undefined;
    },
    auditEvents: async () => {
      const { state } = await jsm.streams.info(STREAMS.audit);
      const out: Array<{ seq: number; subject: string; event: AuditEnvelope }> = [];
      for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq += 1) {
        const msg = await jsm.streams.getMessage(STREAMS.audit, { seq });
        if (!msg) continue;
        const body = msg.json<AuditEnvelope | { events: AuditEnvelope[] }>();
        for (const event of 'events' in body ? body.events : [body])
          out.push({ seq, subject: msg.subject, event });
      }
      return out;
    },
    close: () => nc.close(),
  };
}

/** A gRPC client for one issuer instance (the system's own client talks to the first issuer only). */
export const issuerClient = (issuer: RunningIssuer): pb.IssuerClient =>
  new pb.IssuerClient(`127.0.0.1:${issuer.grpcPort}`, credentials.createInsecure());

/** The issuer's RFC 8414 metadata document. */
export async function issuerMetadata(issuer: RunningIssuer): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${issuer.httpPort}/.well-known/oauth-authorization-server`);
  if (!response.ok) throw new Error(`metadata answered ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

/**
 * Polls `probe` until it returns a value other than undefined; a change that travels over the bus
 * (a KV watch) has no completion signal to await. Fails after `attempts` tries, naming `what`.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, attempts = 200) {
  for (let i = 0; i < attempts; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`gave up waiting: ${what}`);
}
