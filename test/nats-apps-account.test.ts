import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUCKETS, bucketStream, STREAMS } from '@aoa/core';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  APPS_API,
  AUTH_CONFIG,
  type NatsCredentials,
  type NatsUser,
  natsCredentials,
  violations,
} from './support/nats-auth.js';
import { startRotator } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

// The verifiers and agents live in account APPS of infra/nats/auth.conf, beside the services' account
// AOA: what an app identity creates there is bounded by APPS's JetStream limits, and what it makes
// JetStream deliver stays in APPS, where no service listens.

const VERIFIER = 'verifier-dashboards-api';
const VERIFIER_INBOX = '_INBOX_VERIFIER_dashboards-api';
const KEYS = bucketStream(BUCKETS.keys);
/** `max_consumers` of account APPS in auth.conf: per stream. */
const APPS_MAX_CONSUMERS = 1000;

let creds: NatsCredentials;
let sys: TestSystem;
let rot: Awaited<ReturnType<typeof startRotator>>;
let verifier: NatsConnection;
const opened: NatsConnection[] = [];

async function connectAs(user: NatsUser, inboxPrefix?: string): Promise<NatsConnection> {
  const nc = await connect({
    servers: sys.nats.url,
    user,
    pass: creds.password(user),
    ...(inboxPrefix ? { inboxPrefix } : {}),
  });
  opened.push(nc);
  return nc;
}

/** Asks `nc` to create an ephemeral consumer on the keys mirror, with the filter its user may name. */
async function createKeysConsumer(nc: NatsConnection, name: string, config: Record<string, unknown>) {
  const filter = `$KV.${BUCKETS.keys}.>`;
  const reply = await nc.request(
    `$JS.API.CONSUMER.CREATE.${KEYS}.${name}.${filter}`,
    JSON.stringify({
      stream_name: KEYS,
      config: { name, filter_subject: filter, ack_policy: 'none', ...config },
    }),
    { timeout: 2000 },
  );
  return JSON.parse(reply.string()) as { error?: { description: string }; name?: string };
}

before(async () => {
  creds = await natsCredentials();
  sys = await startSystem(creds.serviceEnv('issuer'), { nats: { configFile: AUTH_CONFIG } });
  rot = await startRotator(sys, creds.serviceEnv('rotator'));
  verifier = await connectAs(VERIFIER, VERIFIER_INBOX);
});

after(async () => {
  for (const nc of opened) await nc.close().catch(() => undefined);
  await rot?.stop();
  await sys?.stop();
  await creds?.remove();
});

describe('the APPS account of infra/nats/auth.conf', () => {
  it('holds mirrors of what verifiers and agents read, kept by the issuer and the rotator', async () => {
    const issuer = await connectAs('issuer');
    const apps = await jetstreamManager(issuer, { apiPrefix: APPS_API, checkAPI: false });
    const own = await jetstreamManager(issuer);
    for (const stream of [KEYS, bucketStream(BUCKETS.revocations)]) {
      const mirror = await apps.streams.info(stream);
      assert.equal(mirror.config.mirror?.name, stream);
      // The issuer's signing key is in aoa_keys: the mirror has it too.
      if (stream === KEYS) assert.ok((await own.streams.info(stream)).state.messages >= 1);
    }
    const rotator = await connectAs('rotator');
    const credsMirror = await (
      await jetstreamManager(rotator, { apiPrefix: APPS_API, checkAPI: false })
    ).streams.info(STREAMS.creds);
    assert.equal(credsMirror.config.mirror?.name, STREAMS.creds);
  });

  it('refuses an app identity any stream of its own, a durable by the legacy API and an unfiltered consumer', async () => {
    for (const [subject, body] of [
      [`$JS.API.STREAM.CREATE.MINE`, { name: 'MINE', subjects: ['mine.>'] }],
      [`$JS.API.STREAM.DELETE.${KEYS}`, {}],
      [
        `$JS.API.CONSUMER.DURABLE.CREATE.${KEYS}.kept`,
        { stream_name: KEYS, config: { durable_name: 'kept' } },
      ],
      [`$JS.API.CONSUMER.CREATE.${KEYS}`, { stream_name: KEYS, config: { ack_policy: 'none' } }],
      [
        `$JS.API.CONSUMER.CREATE.${KEYS}.spy.>`,
        { stream_name: KEYS, config: { name: 'spy', filter_subject: '>' } },
      ],
    ] as const) {
      await assert.rejects(
        verifier.request(subject, JSON.stringify(body), { timeout: 1000 }),
        /permission/i,
        subject,
      );
    }
  });

  it('lets a push consumer an app identity creates deliver nowhere a service listens or stores', async () => {
    // The subjects services subscribe to, each heard through the user that serves it (its queue
    // group, so a delivery aimed at the group would reach it too)...
    const listeners: Array<{ subject: string; sub: Subscription; nc: NatsConnection; queue: string }> = [];
    for (const [user, subject, queue] of [
      ['issuer', 'aoa.issuer.mint', 'aoa-issuer'],
      ['rotator', 'aoa.rotator.remint', 'rotator'],
      ['auditor', 'aoa.usage.prod.dashboards', 'auditor-usage'],
    ] as const) {
      const nc = await connectAs(user);
      const refused = violations(nc);
      listeners.push({ subject, sub: nc.subscribe(subject, { queue }), nc, queue });
      await nc.flush();
      assert.deepEqual(refused, [], `${user} may subscribe to ${subject}`);
    }
    // ...and the subjects the services' streams capture.
    const stored = [
      [STREAMS.audit, 'aoa.audit.delegation.issued'],
      [bucketStream(BUCKETS.revocations), `$KV.${BUCKETS.revocations}.jti.forged`],
      [STREAMS.creds, 'aoa.creds.prod.dashboards.dash-1'],
    ] as const;
    const jsm = await jetstreamManager(await connectAs('issuer'));
    const rotatorJsm = await jetstreamManager(await connectAs('rotator'));
    const lastSeq = async (stream: string) =>
      (await (stream === STREAMS.creds ? rotatorJsm : jsm).streams.info(stream)).state.last_seq;
    const before = await Promise.all(stored.map(([stream]) => lastSeq(stream)));
    const targets = [
      ...listeners.map((l) => ({ deliver_subject: l.subject, deliver_group: l.queue })),
      ...listeners.map((l) => ({ deliver_subject: l.subject })),
      ...stored.map(([, subject]) => ({ deliver_subject: subject })),
    ];
    for (const [i, target] of targets.entries()) {
      const created = await createKeysConsumer(verifier, `rogue${i}`, target);
      assert.equal(created.error, undefined, `${target.deliver_subject}: ${created.error?.description}`);
    }
    // The same kind of consumer delivering to the app identity's own inbox: deliveries do happen.
    const control = verifier.subscribe(`${VERIFIER_INBOX}.control`);
    await verifier.flush();
    const made = await createKeysConsumer(verifier, 'control', {
      deliver_subject: `${VERIFIER_INBOX}.control`,
    });
    assert.equal(made.error, undefined);
    const keyCount = (await jsm.streams.info(KEYS)).state.messages;
    let delivered = 0;
    for await (const _ of control) if (++delivered >= keyCount) break;
    for (const { nc } of listeners) await nc.flush();
    for (const { subject, sub } of listeners)
      assert.equal(sub.getProcessed(), 0, `a service heard ${subject}`);
    assert.deepEqual(await Promise.all(stored.map(([stream]) => lastSeq(stream))), before, 'nothing stored');
    // The running issuer and rotator share those queue groups: they heard nothing either.
    assert.doesNotMatch(sys.logs.text(), /delivered by JetStream/);
  });

  it("bounds the consumers an app identity can create, and counts them in APPS, not in the services' account", async () => {
    const issuer = await jetstreamManager(await connectAs('issuer'));
    const before = (await issuer.streams.info(KEYS)).state.consumer_count;
    const created: string[] = [];
    let refusal: string | undefined;
    while (created.length <= APPS_MAX_CONSUMERS && refusal === undefined) {
      const name = `flood${created.length}`;
      const answer = await createKeysConsumer(verifier, name, { deliver_subject: `${VERIFIER_INBOX}.flood` });
      if (answer.error) refusal = answer.error.description;
      else created.push(name);
    }
    assert.match(refusal ?? 'none', /maximum consumers limit reached/);
    assert.ok(created.length <= APPS_MAX_CONSUMERS, `${created.length} consumers`);
    assert.equal((await issuer.streams.info(KEYS)).state.consumer_count, before);
    for (const name of created)
      await verifier.request(`$JS.API.CONSUMER.DELETE.${KEYS}.${name}`, '', { timeout: 2000 });
  });
});
