import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuditPublisher, createLogger, GrantMirror, grantKeys, Subjects, systemClock } from '@aoa/core';
import { type NatsServer, startNats } from '@aoa/testkit';
import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { LeaseRecord } from '../services/rotator/src/domain/schedule.js';
import { RotatorMetrics } from '../services/rotator/src/metrics.js';
import { GrantStore } from '../services/rotator/src/nats/grant-store.js';
import { RotationLoop } from '../services/rotator/src/nats/rotation-loop.js';
import { grantRecord } from './support/rotator.js';

const GRANTS = 1280;
const MINT_TIMEOUT_MS = 500;
/** Every mint answers well within its timeout, but 1280 grants at 64 at a time take longer than a scan may. */
const MINT_DELAY_MS = 100;

const grant = (id: string) => grantRecord(id, { token_ttl_seconds: 900 });

describe('the rotation loop under a slow issuer', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let mirror: GrantMirror;
  const log = createLogger({ service: 'test', level: 'silent' });
  const subjects = new Subjects('aoa');

  before(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
    kv = await new Kvm(nc).create('aoa_grants', { history: 1, storage: 'file' });
    for (let i = 0; i < GRANTS; i++) await kv.put(grantKeys.grant(`g-${i}`), JSON.stringify(grant(`g-${i}`)));
    mirror = new GrantMirror(kv, nc, log);
    await mirror.start();
  });

  after(async () => {
    mirror?.stop();
    await nc?.close();
    await nats?.stop();
  });

  /** A running loop of replica `rotator-a` over the test's bucket, with its own metrics. */
  const startLoop = () => {
    const metrics = new RotatorMetrics(false);
    const loop = new RotationLoop({
      store: new GrantStore(kv, mirror),
      nc,
      js: jetstream(nc),
      subjects,
      audit: new AuditPublisher(jetstream(nc), subjects, 'test', log),
      holder: 'rotator-a',
      leaseMs: 30_000,
      scanMs: 50,
      mintTimeoutMs: MINT_TIMEOUT_MS,
      clock: systemClock,
      log,
      metrics,
    });
    loop.start();
    return { loop, metrics };
  };

  it('mints each due grant once, even when a scan is abandoned as stalled while its ticks still run', async () => {
    // The issuer's side of `aoa.issuer.mint`, slowed down; it counts what it is asked to mint.
    const minted = new Map<string, number>();
    const issuer = nc.subscribe(subjects.issuerMint(), {
      callback: (_error, msg) => {
        const { grant_id: id } = msg.json<{ grant_id: string }>();
        minted.set(id, (minted.get(id) ?? 0) + 1);
        setTimeout(() => msg.respond(JSON.stringify({ deliveries: [] })), MINT_DELAY_MS);
      },
    });
    const { loop, metrics } = startLoop();
    try {
      const deadline = Date.now() + 60_000;
      const rotated = () =>
        Array.from(
          { length: GRANTS },
          (_, i) => mirror.lease(`g-${i}`)?.value as LeaseRecord | undefined,
        ).filter((lease) => lease?.rotated_ms !== undefined).length;
      while (rotated() < GRANTS) {
        assert.ok(Date.now() < deadline, `${rotated()}/${GRANTS} grants rotated after 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // The scans did overlap: one was abandoned while its ticks were running.
      const count = async (
        counter: RotatorMetrics['rotations'] | RotatorMetrics['loopErrors'],
        ok?: boolean,
      ) =>
        (await counter.get()).values
          .filter((v) => ok === undefined || (v.labels.result === 'ok') === ok)
          .reduce((sum, v) => sum + v.value, 0);
      assert.ok(
        (await count(metrics.loopErrors)) > 0,
        'no scan was abandoned: the overlap was not exercised',
      );
      // Each grant is asked for once, and once more per failed attempt (a mint that timed out on a
      // loaded machine is retried): never a second mint while the first is in flight.
      const requests = [...minted.values()].reduce((sum, n) => sum + n, 0);
      assert.equal(minted.size, GRANTS);
      assert.equal(await count(metrics.rotations, true), GRANTS);
      assert.equal(requests, GRANTS + (await count(metrics.rotations, false)));
    } finally {
      await loop.stop();
      issuer.unsubscribe();
    }
  });

  it('asks every attempt of an emergency re-mint not to sign with the retired key, until one succeeds', async () => {
    const asked: unknown[] = [];
    const issuer = nc.subscribe(subjects.issuerMint(), {
      callback: (_error, msg) => {
        const request = msg.json<{ grant_id: string; not_kid?: string }>();
        if (request.grant_id !== 'g-0') return;
        asked.push(request.not_kid);
        // The first replica to answer has not followed the switch yet.
        const reply =
          asked.length === 1
            ? {
                error: {
                  code: 'unavailable',
                  message: 'this replica still signs with the key being retired; retry',
                },
              }
            : { deliveries: [] };
        msg.respond(JSON.stringify(reply));
      },
    });
    const store = new GrantStore(kv, mirror);
    await store.markDue('g-0', 'kid-retired');
    const { loop } = startLoop();
    try {
      const deadline = Date.now() + 15_000;
      const lease = () => mirror.lease('g-0')?.value as LeaseRecord | undefined;
      while (asked.length < 2 || lease()?.avoid_kid !== undefined) {
        assert.ok(Date.now() < deadline, `asked ${JSON.stringify(asked)}, lease ${JSON.stringify(lease())}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.deepEqual(asked, ['kid-retired', 'kid-retired']);
      assert.ok((lease()?.next_due_ms ?? 0) > Date.now());
    } finally {
      await loop.stop();
      issuer.unsubscribe();
    }
  });
});
