import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { STREAMS } from '@aoa/core';
import { type Agent, type AgentCredential, createAgent } from '@aoa/sdk';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  AUTH_CONFIG,
  type NatsCredentials,
  natsCredentials,
  subscriptionRefused,
  violations,
} from './support/nats-auth.js';
import { grantWithEnrolledAgent, startRotator } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

const AGENT_USER = 'agent-prod-dashboards-dash-1';
const AGENT_INBOX = '_INBOX_AGENT_dash-1';
const OWN_SUBJECT = 'aoa.creds.prod.dashboards.dash-1';

let creds: NatsCredentials;
let sys: TestSystem;
let rot: Awaited<ReturnType<typeof startRotator>>;
let agentConnection: NatsConnection;
let agent: Agent | undefined;

/** Resolves when `nc`'s request is refused for permissions, rejects on any other outcome. */
async function requestRefused(nc: NatsConnection, subject: string, data = ''): Promise<void> {
  await assert.rejects(nc.request(subject, data, { timeout: 1000 }), /permission/i, subject);
}

before(async () => {
  creds = await natsCredentials();
  sys = await startSystem(creds.serviceEnv('issuer'), { nats: { configFile: AUTH_CONFIG } });
  rot = await startRotator(sys, creds.serviceEnv('rotator'));
  agentConnection = await connect({
    servers: sys.nats.url,
    user: AGENT_USER,
    pass: creds.password(AGENT_USER),
    inboxPrefix: AGENT_INBOX,
  });
});

after(async () => {
  await agent?.stop();
  await agentConnection?.close();
  await rot?.stop();
  await sys?.stop();
  await creds?.remove();
});

describe('NATS permissions of the rotator and of an agent from infra/nats/auth.conf', () => {
  it('delivers and rotates a grant through the rotator user to an agent through its own user', async () => {
    const { grant, keys, enrolled } = await grantWithEnrolledAgent(
      sys,
      rot.client,
      { tokenTtlSeconds: 3 },
      'dash-1',
    );
    assert.equal(enrolled.subject, OWN_SUBJECT);

    const refused = violations(agentConnection);
    const rotations: AgentCredential[] = [];
    agent = await createAgent({
      nats: agentConnection,
      env: 'prod',
      app: 'dashboards',
      agentId: 'dash-1',
      keys: keys.private,
      issuer: sys.issuer.issuer,
    });
    agent.on('rotated', (c) => rotations.push(c));
    const deadline = Date.now() + 15_000;
    while (rotations.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(rotations.length >= 2, `only ${rotations.length} credentials arrived`);
    assert.notEqual(rotations[0]?.jti, rotations[1]?.jti);
    const held = agent.credential();
    assert.equal(held.claims.aoa_grant, grant.id);
    assert.equal(held.claims.act.sub, 'app:dashboards');
    assert.equal(held.claims.cnf?.jkt, keys.dpopJkt);
    assert.deepEqual(refused, [], 'the agent needed something its user is not allowed');
    assert.doesNotMatch(sys.logs.text(), /Permissions Violation/);
  });

  it('lets the issuer ask the rotators to re-mint, and the rotator answer', async () => {
    const nc = await connect({ servers: sys.nats.url, user: 'issuer', pass: creds.password('issuer') });
    try {
      const reply = await nc.request('aoa.rotator.remint', '{}', { timeout: 3000 });
      assert.match(reply.string(), /"error"/);
    } finally {
      await nc.close();
    }
  });

  it('refuses the rotator the signing keys, the issuer role and the revocation notices', async () => {
    const nc = await connect({ servers: sys.nats.url, user: 'rotator', pass: creds.password('rotator') });
    try {
      await requestRefused(nc, '$JS.API.STREAM.INFO.KV_aoa_signing_keys');
      await requestRefused(nc, '$JS.API.DIRECT.GET.KV_aoa_signing_keys.$KV.aoa_signing_keys.ring');
      // It reads aoa_keys (operator tokens), as a verifier does: it may neither change nor write it.
      await requestRefused(nc, '$JS.API.STREAM.UPDATE.KV_aoa_keys', '{}');
      await requestRefused(nc, '$JS.API.STREAM.CREATE.KV_aoa_keys', '{}');
      for (const subject of ['aoa.issuer.mint', 'aoa.audit.>', 'aoa.creds.>']) {
        assert.ok(await subscriptionRefused(nc, subject), subject);
      }
      const refused = violations(nc);
      nc.publish('aoa.revoked.all', '{}');
      nc.publish('$KV.aoa_keys.forged', '{}');
      await nc.flush();
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(refused.filter((e) => /permission/i.test(e)).length, 2, refused.join('; '));
    } finally {
      await nc.close();
    }
  });

  it("refuses the agent's user another app's or agent's credentials and any other inbox", async () => {
    const refused = violations(agentConnection);
    const subjects = [
      'aoa.creds.prod.dashboards.dash-2',
      'aoa.creds.prod.billing.dash-1',
      'aoa.creds.staging.dashboards.dash-1',
      'aoa.creds.>',
      OWN_SUBJECT,
      '_INBOX.>',
      '_INBOX_AGENT_dash-2.>',
      '_INBOX_VERIFIER_dashboards-api.>',
      'aoa.revoked.prod.billing',
      'aoa.revoked.>',
      'aoa.audit.>',
      '>',
    ];
    for (const subject of subjects) assert.ok(await subscriptionRefused(agentConnection, subject), subject);
    for (const subject of subjects) {
      assert.ok(
        refused.some((v) => v.includes(`Subscription to "${subject}"`)),
        `no permissions violation reported for ${subject}`,
      );
    }
    assert.equal(await subscriptionRefused(agentConnection, 'aoa.revoked.prod.dashboards'), false);
  });

  it("refuses the agent's user a consumer on any other filter", async () => {
    for (const filter of [
      'aoa.creds.prod.dashboards.dash-2',
      'aoa.creds.prod.billing.dash-1',
      'aoa.creds.>',
    ]) {
      await requestRefused(
        agentConnection,
        `$JS.API.CONSUMER.CREATE.${STREAMS.creds}.spy.${filter}`,
        JSON.stringify({ stream_name: STREAMS.creds, config: { name: 'spy', filter_subject: filter } }),
      );
    }
    // Without a filter in the subject, the request could ask for any filter: refused too.
    await requestRefused(
      agentConnection,
      `$JS.API.CONSUMER.CREATE.${STREAMS.creds}`,
      JSON.stringify({ stream_name: STREAMS.creds, config: { filter_subject: 'aoa.creds.>' } }),
    );
    // The filter in the subject must match the one in the request: the server refuses a mismatch.
    const mismatch = await agentConnection.request(
      `$JS.API.CONSUMER.CREATE.${STREAMS.creds}.spy.${OWN_SUBJECT}`,
      JSON.stringify({
        stream_name: STREAMS.creds,
        config: { name: 'spy', filter_subject: 'aoa.creds.prod.dashboards.dash-2' },
      }),
      { timeout: 1000 },
    );
    assert.match(mismatch.string(), /"error"/);
    // The client library's own call: the same refusal.
    const js = jetstream(agentConnection);
    await assert.rejects(
      (async () => {
        const consumer = await js.consumers.get(STREAMS.creds, {
          filter_subjects: 'aoa.creds.prod.dashboards.dash-2',
        });
        await consumer.next({ expires: 1000 });
      })(),
      /permission/i,
    );
    await requestRefused(agentConnection, `$JS.API.CONSUMER.LIST.${STREAMS.creds}`);
    await requestRefused(agentConnection, `$JS.API.STREAM.MSG.GET.${STREAMS.creds}`, '{"seq":1}');
  });

  it("refuses the agent's user publishing to any aoa subject", async () => {
    const refused = violations(agentConnection);
    const subjects = [
      OWN_SUBJECT,
      'aoa.creds.prod.dashboards.dash-2',
      'aoa.revoked.all',
      'aoa.revoked.prod.dashboards',
      'aoa.audit.delegation.issued',
      'aoa.issuer.mint',
      'aoa.rotator.remint',
      '$KV.aoa_revocations.jti.x',
    ];
    for (const subject of subjects) agentConnection.publish(subject, '{}');
    await agentConnection.flush();
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const subject of subjects) {
      assert.ok(
        refused.some((v) => v.includes(`Publish to "${subject}"`)),
        `no permissions violation reported for ${subject}: ${refused.join('; ')}`,
      );
    }
  });
});
