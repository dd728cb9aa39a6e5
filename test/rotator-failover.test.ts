import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rotator as pb } from '@aoa/proto';
import { type Agent, createAgent } from '@aoa/sdk';
import { credentials } from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { buildServices, type ServiceProcess, startBuilt, waitForLog } from './support/processes.js';
import { grantWithEnrolledAgent } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

/** Eventual success with a generous deadline; never a latency assertion. */
async function waitFor<T>(what: string, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('rotator failover between real processes', () => {
  let sys: TestSystem;
  let nc: NatsConnection;
  let agent: Agent | undefined;
  const rotators: ServiceProcess[] = [];

  before(async () => {
    buildServices('rotator');
    sys = await startSystem();
    nc = await connect({ servers: sys.nats.url });
  });
  after(async () => {
    await agent?.stop();
    for (const r of rotators) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await nc?.close();
    await sys?.stop();
  });

  const startReplica = async () => {
    const replica = startBuilt('rotator', {
      NATS_URL: sys.nats.url,
      AOA_POLICY_FILE: sys.policyPath,
      AOA_ISSUER_URL: sys.issuer.issuer,
      AOA_ROTATOR_GRPC_LISTEN: '127.0.0.1:0',
      AOA_ROTATOR_HTTP_LISTEN: '127.0.0.1:0',
      AOA_ROTATOR_SCAN_INTERVAL: '100ms',
      AOA_ROTATOR_LEASE: '2s',
      LOG_LEVEL: 'info',
    });
    rotators.push(replica);
    const started = await waitForLog(replica, 'rotator started');
    return { replica, grpc: `127.0.0.1:${started.grpcPort}` };
  };

  it("a second replica takes over the grants of a SIGKILLed one; the agent's credentials keep coming", async () => {
    const first = await startReplica();
    const client = new pb.RotatorClient(first.grpc, credentials.createInsecure());
    const { grant, keys } = await grantWithEnrolledAgent(sys, client, { tokenTtlSeconds: 3 }, 'dash-1');
    client.close();
    const jtis: string[] = [];
    agent = await createAgent({
      nats: nc,
      env: 'prod',
      app: 'dashboards',
      agentId: 'dash-1',
      keys: keys.private,
      issuer: sys.issuer.issuer,
    });
    agent.on('rotated', (credential) => jtis.push(credential.jti));
    await waitFor('a first credential from the first replica', () => (jtis.length >= 1 ? true : undefined));
    const rotatedByFirst = () =>
      first.replica.lines().filter((l) => l.msg === 'grant rotated' && l.grant === grant.id).length;
    // Its log line comes through a pipe, after the delivery the agent may already have seen.
    await waitFor('the first replica holding the grant', () => (rotatedByFirst() >= 1 ? true : undefined));

    const second = await startReplica();
    first.replica.child.kill('SIGKILL');
    assert.equal(await first.replica.exited, null, 'killed, not stopped');
    const before = jtis.length;
    await waitFor('two more credentials after the kill', () =>
      jtis.length >= before + 2 ? true : undefined,
    );
    await waitFor('the second replica rotating the grant once the dead one’s lease lapsed', () =>
      second.replica.lines().some((l) => l.msg === 'grant rotated' && l.grant === grant.id)
        ? true
        : undefined,
    );
    assert.equal(new Set(jtis).size, jtis.length, 'every delivery is a new credential');
    assert.doesNotThrow(() => agent?.token(), 'the agent holds a valid credential');
  });
});
