import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditEnvelope } from '@aoa/core';
import { OUTBOX_BUCKET } from '@aoa/revocation';
import { Kvm } from '@nats-io/kv';
import { type BusProbe, eventually, probeBus } from './support/bus.js';
import { startRevoker } from './support/revoker.js';
import { startSystem, type TestSystem } from './support/system.js';

const OUTBOX_STREAM = `KV_${OUTBOX_BUCKET}`;

/** The observed window: some 60 rounds of each writer at the 100 ms retry interval set below. */
const WINDOW_MS = 6000;

describe('revocation audit outbox', () => {
  let sys: TestSystem;
  let rev: Awaited<ReturnType<typeof startRevoker>>;
  let bus: BusProbe;

  before(async () => {
    sys = await startSystem({ AOA_AUDIT_OUTBOX_RETRY: '100ms' });
    rev = await startRevoker(sys);
    bus = await probeBus(sys.nats.url);
  });

  after(async () => {
    await bus?.close();
    await rev?.stop();
    await sys?.stop();
  });

  const consumers = async () => (await bus.jsm.streams.info(OUTBOX_STREAM)).state.consumer_count;

  it('an issuer and a revoker retrying every 100 ms keep the same consumers on the outbox bucket', async (t) => {
    await new Promise((r) => setTimeout(r, 1000));
    const warm = await consumers();
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const later = await consumers();
    const counts = `consumers on ${OUTBOX_STREAM}: ${warm} after warm-up, ${later} after ${WINDOW_MS} ms`;
    t.diagnostic(counts);
    assert.equal(later, warm, counts);
    assert.ok(warm <= 2, `at most one consumer per writing process, found ${warm}`);
  });

  it('an event a crashed peer left in the outbox is delivered to the audit stream and removed', async () => {
    const kv = await new Kvm(bus.nc).open(OUTBOX_BUCKET);
    const event: AuditEnvelope = {
      id: `peer-${Date.now()}`,
      type: 'revocation.issued',
      time: new Date().toISOString(),
      source: 'crashed-peer',
      subject: 'peer-jti',
      data: { revocation_id: `peer-rev-${Date.now()}` },
    };
    await kv.put(`evt.${event.id}`, JSON.stringify(event));
    const delivered = await eventually('the peer event on the audit stream', async () => {
      const last = await bus.lastAudit('revocation.issued').catch(() => undefined);
      return last?.event.id === event.id ? last.event : undefined;
    });
    assert.deepEqual(delivered.data, event.data);
    await eventually('the peer event removed from the outbox', async () => {
      const entry = await kv.get(`evt.${event.id}`);
      return entry?.operation === 'PUT' ? undefined : true;
    });
  });
});
