import { BUCKETS, KeySetMirror, type Logger, RevocationMirror, Subjects } from '@aoa/core';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

/** The key set and revocations every verifier on one connection reads, synchronised once. */
export interface Mirrors {
  keys: KeySetMirror;
  revocations: RevocationMirror;
}

interface Shared {
  users: number;
  mirrors: Promise<Mirrors>;
}

const byConnection = new WeakMap<NatsConnection, Map<string, Shared>>();

async function startMirrors(nc: NatsConnection, subjectPrefix: string, log: Logger): Promise<Mirrors> {
  const kvm = new Kvm(nc);
  const [keysKv, revocationsKv] = await Promise.all([kvm.open(BUCKETS.keys), kvm.open(BUCKETS.revocations)]);
  const keys = new KeySetMirror(keysKv, log);
  const revocations = new RevocationMirror(revocationsKv, log, {
    nc,
    subject: new Subjects(subjectPrefix).revokedAll(),
  });
  try {
    await Promise.all([keys.start(), revocations.start()]);
    await revocations.whenSynced();
  } catch (error) {
    keys.stop();
    revocations.stop();
    throw error;
  }
  return { keys, revocations };
}

/**
 * The mirrors of `aoa_keys` and `aoa_revocations` on `nc`, shared by every verifier on that connection
 * and subject prefix: one KV watch per bucket and process however many verifiers it runs (each watch is
 * a JetStream consumer, and the apps' NATS account bounds them). Resolves once both are synchronised;
 * `release` is called once by each user, and the last one stops the watches.
 */
export function acquireMirrors(
  nc: NatsConnection,
  subjectPrefix: string,
  log: Logger,
): { mirrors: Promise<Mirrors>; release: () => void } {
  let bySubject = byConnection.get(nc);
  if (!bySubject) {
    bySubject = new Map();
    byConnection.set(nc, bySubject);
  }
  let shared = bySubject.get(subjectPrefix);
  if (!shared) {
    const mirrors = startMirrors(nc, subjectPrefix, log);
    const started: Shared = { users: 0, mirrors };
    shared = started;
    bySubject.set(subjectPrefix, started);
    // A failed start is not kept: the next verifier tries again.
    mirrors.catch(() => {
      if (bySubject?.get(subjectPrefix) === started) bySubject.delete(subjectPrefix);
    });
  }
  const entry = shared;
  entry.users++;
  let released = false;
  return {
    mirrors: entry.mirrors,
    release: () => {
      if (released) return;
      released = true;
      if (--entry.users > 0) return;
      if (bySubject?.get(subjectPrefix) === entry) bySubject.delete(subjectPrefix);
      entry.mirrors.then(
        ({ keys, revocations }) => {
          keys.stop();
          revocations.stop();
        },
        () => undefined,
      );
    },
  };
}
