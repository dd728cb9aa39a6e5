import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AuditPublisher, connectNats, createLogger, ensureAuditStream, STREAMS, Subjects } from '@aoa/core';
import { freePort } from '@aoa/testkit';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadRotatorConfig } from '../services/rotator/src/config.js';
import { type NatsCredentials, natsCredentials } from './support/nats-auth.js';

const INFRA = fileURLToPath(new URL('../infra/nats/', import.meta.url));
const log = createLogger({ service: 'test', level: 'silent' });

interface Node {
  name: string;
  url: string;
  monitor: number;
  proc: ChildProcess;
  exited: Promise<void>;
  /** What the node wrote to stderr (its log), for a failure message. */
  output: string[];
}

let dir: string;
let creds: NatsCredentials;
let nodes: Node[] = [];
let nc: NatsConnection;

/**
 * Runs infra/nats/cluster/nats-<n>.conf on loopback: a copy of infra/nats with each node's store
 * directory moved into the test's directory; the listen addresses and the routes (the files name the
 * hosts nats-1..3) are overridden on the command line.
 */
async function startCluster(): Promise<Node[]> {
  const infra = join(dir, 'nats');
  await cp(INFRA, infra, { recursive: true });
  for (const n of [1, 2, 3]) {
    const file = join(infra, 'cluster', `nats-${n}.conf`);
    const text = await readFile(file, 'utf8');
    assert.match(text, /store_dir: \/data\/jetstream/);
    await writeFile(file, text.replace('/data/jetstream', join(dir, `store-${n}`)));
  }
  const ports = await Promise.all(
    [1, 2, 3].map(async () => ({
      client: await freePort(),
      monitor: await freePort(),
      route: await freePort(),
    })),
  );
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  return ports.map((p, i) => {
    const name = `nats-${i + 1}`;
    const proc = spawn(
      'nats-server',
      [
        '-c',
        join(infra, 'cluster', `${name}.conf`),
        '-a',
        '127.0.0.1',
        '-p',
        String(p.client),
        '-m',
        String(p.monitor),
        '--cluster',
        `nats://127.0.0.1:${p.route}`,
        '--routes',
        routes,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const output: string[] = [];
    proc.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    return { name, url: `nats://127.0.0.1:${p.client}`, proc, exited, monitor: p.monitor, output };
  });
}

/** Waits until the node's monitoring endpoint answers, or fails if the node exits. */
async function waitListening(node: Node): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (node.proc.exitCode !== null) {
      throw new Error(`${node.name} exited with ${node.proc.exitCode}:\n${node.output.join('')}`);
    }
    const ok = await fetch(`http://127.0.0.1:${node.monitor}/varz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${node.name} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopNode(node: Node): Promise<void> {
  if (node.proc.exitCode === null && node.proc.signalCode === null) node.proc.kill('SIGTERM');
  await node.exited;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aoa-nats-cluster-'));
  creds = await natsCredentials();
  nodes = await startCluster();
  await Promise.all(nodes.map(waitListening));
  const env = creds.serviceEnv('issuer');
  // Every node is up and the cluster has elected its JetStream meta leader when a stream can be made.
  nc = await connectNats(
    {
      url: nodes.map((n) => n.url).join(','),
      name: 'cluster-test',
      user: env.NATS_USER,
      passwordFile: env.NATS_PASSWORD_FILE,
    },
    log,
  );
});

after(async () => {
  await nc?.close();
  for (const node of nodes) await stopNode(node);
  await creds?.remove();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Runs a JetStream call until it succeeds: while a stream or the meta group re-elects a leader after
 * a node stops, a call has no responder or times out. Anything still failing after 15 s fails the test.
 */
async function retried<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

describe('the 3-node cluster example in infra/nats/cluster', () => {
  it('holds R3 streams and buckets that keep acknowledging with a node down', async () => {
    const { natsReplicas } = loadRotatorConfig({
      NATS_URL: nodes[0]?.url,
      AOA_POLICY_FILE: 'policy.yaml',
      AOA_ISSUER_URL: 'https://issuer.aoa.test',
      AOA_NATS_REPLICAS: '3',
    });
    assert.equal(natsReplicas, 3);
    const subjects = new Subjects('aoa');
    const deadline = Date.now() + 15_000;
    let jsm: JetStreamManager;
    for (;;) {
      try {
        jsm = await jetstreamManager(nc, { timeout: 2000 });
        await ensureAuditStream(jsm, subjects, {
          maxAgeSeconds: 3600,
          maxBytes: 1024 ** 2,
          replicas: natsReplicas,
        });
        break;
      } catch (error) {
        // Until the routes are up and a JetStream meta leader is elected, the API does not answer.
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    const kv = await new Kvm(nc).create('aoa_keys', { history: 1, storage: 'file', replicas: natsReplicas });
    for (const stream of [STREAMS.audit, 'KV_aoa_keys']) {
      const info = await jsm.streams.info(stream);
      assert.equal(info.config.num_replicas, 3, stream);
      assert.equal(info.cluster?.replicas?.length, 2, stream);
    }

    // Stop a node that holds neither this connection nor, where the cluster allows, the leadership
    // of either stream: writes still gather a quorum of two and are acknowledged. Where the victim
    // did lead the bucket, the two left elect a new leader within seconds and writes resume.
    const leaders = await Promise.all(
      [STREAMS.audit, 'KV_aoa_keys'].map(async (s) => (await jsm.streams.info(s)).cluster?.leader),
    );
    const connected = nc.info?.server_name;
    const others = nodes.filter((n) => n.name !== connected);
    const victim = others.find((n) => !leaders.includes(n.name)) ?? others[0];
    assert.ok(victim, `no node to stop (connected to ${connected})`);
    const before = (await jsm.streams.info(STREAMS.audit)).state.messages;
    await stopNode(victim);
    const audit = new AuditPublisher(jetstream(nc), subjects, 'cluster-test', log);
    // One envelope, published with its id as Nats-Msg-Id: a retried write is stored once.
    const event = audit.envelope('key.prepared', 'kid-1', { kid: 'kid-1', alg: 'EdDSA', state: 'prepared' });
    await retried(() => audit.publishEnvelope(event));
    await retried(() => kv.put('kid-1', '{}'));
    // The issuer's user may not read the audit stream's messages; its state shows the one stored.
    assert.equal((await retried(() => jsm.streams.info(STREAMS.audit))).state.messages, before + 1);
    assert.equal((await retried(() => kv.get('kid-1')))?.string(), '{}');
  });
});
