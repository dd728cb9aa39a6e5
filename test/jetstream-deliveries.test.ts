import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@aoa/core';
import { createVerifier, type Verifier } from '@aoa/sdk';
import { captureLogs } from '@aoa/testkit';
import { AckPolicy, DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { startAuditor, type TestAuditor, until, unusedScopes } from './support/auditor.js';
import { type BusProbe, probeBus } from './support/bus.js';
import { dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { startRotator } from './support/rotator.js';
import { rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

// A JetStream push consumer delivers stored messages onto any subject its creator names. In one
// account (`aoa dev`, or a deployment without the APPS account) whoever may create consumers could
// aim one at a service's subject; every handler of a service subject and of the revocation notices
// ignores such a delivery. The stored messages below are well-formed, so only that check stops them.

const ROGUE = 'ROGUE';
const REPORT = { env: 'prod', app: 'dashboards', scopes: ['write:rogue'], from_ms: 1, to_ms: 2 };

let sys: TestSystem;
let rot: Awaited<ReturnType<typeof startRotator>>;
let auditor: TestAuditor;
let auditDir: string;
let bus: BusProbe;
let verifier: Verifier;
const verifierLogs = captureLogs();
let holder: TestKey;

/**
 * Points a push consumer of the rogue stream's `filter` message at `target` (in the handler's queue
 * group, when it has one: a push consumer reaches queue subscribers only so); nobody acks it unless a
 * handler answers.
 */
async function deliverOnto(name: string, filter: string, target: string, queue?: string) {
  await bus.jsm.consumers.add(ROGUE, {
    name,
    filter_subject: filter,
    deliver_subject: target,
    ...(queue ? { deliver_group: queue } : {}),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  });
}

/** Whether the delivery is still unacknowledged: nobody answered its `$JS.ACK.` reply. */
async function unanswered(name: string): Promise<boolean> {
  const info = await bus.jsm.consumers.info(ROGUE, name);
  return info.delivered.stream_seq >= 1 && info.num_ack_pending === 1;
}

before(async () => {
  sys = await startSystem();
  rot = await startRotator(sys);
  bus = await probeBus(sys.nats.url);
  await bus.jsm.streams.add({ name: ROGUE, subjects: ['rogue.>'] });
  const js = jetstream(bus.nc);
  await js.publish('rogue.mint', JSON.stringify({ grant_id: 'grant-rogue' }));
  await js.publish('rogue.remint', JSON.stringify({ kid: 'kid-rogue', timeout_ms: 100 }));
  auditDir = await mkdtemp(join(tmpdir(), 'aoa-audit-'));
  auditor = await startAuditor(sys.nats.url, auditDir);
  verifier = createVerifier({
    issuer: sys.issuer.issuer,
    audience: 'https://dashboards.internal',
    nats: bus.nc,
    logger: createLogger({ service: 'verifier', level: 'debug', destination: verifierLogs.stream }),
  });
  holder = await makeKey();
});

after(async () => {
  verifier?.close();
  await auditor?.stop();
  await rot?.stop();
  await bus?.close();
  await sys?.stop();
  if (auditDir) await rm(auditDir, { recursive: true, force: true });
});

describe('service handlers and JetStream deliveries', () => {
  it('the issuer ignores a mint request delivered by JetStream', async () => {
    await deliverOnto('mint', 'rogue.mint', 'aoa.issuer.mint', 'aoa-issuer');
    await until('the issuer to ignore it', async () =>
      sys.logs.text().includes('ignoring a mint request delivered by JetStream'),
    );
    assert.ok(await unanswered('mint'));
  });

  it('the rotator ignores a remint request delivered by JetStream', async () => {
    await deliverOnto('remint', 'rogue.remint', 'aoa.rotator.remint', 'rotator');
    await until('the rotator to ignore it', async () =>
      sys.logs.text().includes('ignoring a remint request delivered by JetStream'),
    );
    assert.ok(await unanswered('remint'));
  });

  it('the auditor ignores a usage report marked as a JetStream delivery', async () => {
    // nats-server 2.9 delivers a push consumer only to subscriptions on its literal deliver subject,
    // and the auditor's is aoa.usage.>; nor may a client publish with a `$JS.ACK.` reply. The report
    // comes with the other mark of a delivery, a heartbeat's status, which no verifier sends.
    bus.nc.publish('aoa.usage.prod.dashboards', JSON.stringify(REPORT), {
      headers: headers(100, 'Idle Heartbeat'),
    });
    await until('the auditor to ignore it', async () =>
      auditor.logs.text().includes('ignoring a usage report delivered by JetStream'),
    );
    const { apps } = await unusedScopes(auditor, { env: 'prod', app: 'dashboards' });
    assert.ok(!apps.some((app) => app.exercised.includes('write:rogue')));
  });

  it('a verifier ignores a revocation notice delivered by JetStream', async () => {
    const { accessToken, jti } = await rootDelegateAsArgocd(sys, {
      scopes: ['read:metrics'],
      holderJkt: holder.jkt,
    });
    await verifier.whenReady();
    const url = 'https://dashboards.internal/api';
    const verify = async () =>
      verifier.verify({
        authorization: `DPoP ${accessToken}`,
        dpop: await dpopProof(holder, 'GET', url, accessToken),
        method: 'GET',
        url,
      });
    await verify();
    const notice = { revocation_id: 'rev-rogue', key: `jti.${jti}`, kind: 'jti', at_ms: Date.now() };
    await jetstream(bus.nc).publish('rogue.notice', JSON.stringify(notice));
    await deliverOnto('notice', 'rogue.notice', 'aoa.revoked.all');
    await until('the verifier to ignore it', async () =>
      verifierLogs.text().includes('ignoring a revocation notice delivered by JetStream'),
    );
    assert.equal((await verify()).jti, jti);
  });
});
