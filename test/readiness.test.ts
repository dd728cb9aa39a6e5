import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { health } from '@aoa/proto';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { startAuditor, systemAccess, type TestAuditor } from './support/auditor.js';
import { aoa } from './support/cli.js';
import { clientAssertion } from './support/oauth.js';
import { startRevoker } from './support/revoker.js';
import { startRotator } from './support/rotator.js';
import { callDelegate, startSystem, type TestSystem } from './support/system.js';

const { SERVING, NOT_SERVING } = health.HealthCheckResponse_ServingStatus;
/** What issue #17 asks: readiness follows the bus within 3 s. A polling deadline, not a measured timing. */
const FOLLOWS_WITHIN_MS = 3000;

interface Probed {
  name: string;
  httpPort: number;
  grpcPort: number;
  grpcService: string;
}

async function readiness(port: number): Promise<{ status: number; problems: string[] }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  const body = (await response.json()) as { problems: string[] };
  return { status: response.status, problems: body.problems };
}

function grpcHealth(target: Probed): Promise<number> {
  const client = new health.HealthClient(`127.0.0.1:${target.grpcPort}`, credentials.createInsecure());
  return new Promise<number>((resolve, reject) =>
    client.check({ service: target.grpcService }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    }),
  );
}

/** Polls every service until `holds` is true of each, failing at `deadline` with what each last said. */
async function untilEvery(
  targets: readonly Probed[],
  what: string,
  holds: (ready: { status: number; problems: string[] }, grpc: number) => boolean,
  deadline: number,
): Promise<Map<string, string[]>> {
  const last = new Map<string, string>();
  for (;;) {
    const states = await Promise.all(
      targets.map(async (t) => ({ t, ready: await readiness(t.httpPort), grpc: await grpcHealth(t) })),
    );
    if (states.every((s) => holds(s.ready, s.grpc))) {
      return new Map(states.map((s) => [s.t.name, s.ready.problems]));
    }
    for (const s of states)
      last.set(s.t.name, `${s.ready.status} ${s.ready.problems.join('; ')} grpc=${s.grpc}`);
    if (Date.now() > deadline) {
      throw new Error(`${what}: not by the deadline; last seen ${JSON.stringify(Object.fromEntries(last))}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What #14 asks of Delegate while the bus is down: UNAVAILABLE at once, so within a 1 s deadline. */
const FAILS_FAST_MS = 1000;

/** A root Delegate as argocd with a 1 s deadline; resolves the gRPC error it is refused with. */
async function refusedDelegate(sys: TestSystem, subjectToken: string): Promise<ServiceError> {
  const refusal = await callDelegate(
    sys.client,
    {
      subjectToken,
      child: 'dashboards',
      environment: 'prod',
      scopes: ['read:metrics'],
      holderJkt: sys.keys.edge.jkt,
    },
    { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
    FAILS_FAST_MS,
  ).then(
    () => assert.fail('a credential was issued while the bus was down'),
    (error: ServiceError) => error,
  );
  return refusal;
}

const unready = (ready: { status: number; problems: string[] }, grpc: number) =>
  ready.status === 503 && ready.problems.some((p) => p.startsWith('nats ')) && grpc === NOT_SERVING;
const isReady = (ready: { status: number }, grpc: number) => ready.status === 200 && grpc === SERVING;

describe('readiness follows NATS (issue #17), and Delegate fails fast while it is down (#14)', () => {
  let sys: TestSystem;
  let auditor: TestAuditor;
  let auditDir: string;
  const stops: Array<() => Promise<void>> = [];
  let targets: Probed[];

  before(async () => {
    sys = await startSystem();
    const revoker = await startRevoker(sys);
    stops.push(revoker.stop);
    const rotator = await startRotator(sys);
    stops.push(rotator.stop);
    auditDir = await mkdtemp(join(tmpdir(), 'aoa-readiness-audit-'));
    auditor = await startAuditor(sys.nats.url, auditDir, {}, systemAccess(sys));
    stops.push(auditor.stop);
    targets = [
      { name: 'issuer', ...sys.issuer, grpcService: 'aoa.v1.Issuer' },
      { name: 'revoker', ...revoker.revoker, grpcService: 'aoa.v1.Revoker' },
      { name: 'rotator', ...rotator.rotator, grpcService: 'aoa.v1.Rotator' },
      { name: 'auditor', ...auditor, grpcService: 'aoa.v1.Auditor' },
    ];
  });
  after(async () => {
    for (const stop of stops.reverse()) await stop();
    await sys?.stop();
    if (auditDir) await rm(auditDir, { recursive: true, force: true });
  });

  it('goes false within 3 s of nats-server dying, aoa status says why, and comes back once NATS does', async () => {
    await untilEvery(targets, 'ready at the start', isReady, Date.now() + 30_000);
    const subjectToken = await sys.idpToken('argocd-sa');
    await sys.nats.restart({
      whileDown: async () => {
        const problems = await untilEvery(
          targets,
          '/readyz 503 and gRPC NOT_SERVING',
          unready,
          Date.now() + FOLLOWS_WITHIN_MS,
        );
        for (const [name, list] of problems) {
          assert.ok(
            list.some((p) => /^nats disconnected from .+ \(reconnecting\)$/.test(p)),
            `${name}: ${list.join('; ')}`,
          );
        }
        const statusRun = await aoa(
          'status',
          '--json',
          '--nats',
          sys.nats.url,
          ...targets.map((t) => `--service=${t.name}=http://127.0.0.1:${t.httpPort}`),
        );
        assert.equal(statusRun.code, 4, statusRun.stderr);
        const rows = (JSON.parse(statusRun.stdout) as { services: Array<Record<string, unknown>> }).services;
        for (const t of targets) {
          const row = rows.find((r) => r.service === t.name);
          assert.equal(row?.state, 'not ready', t.name);
          assert.match(String(row?.problems), /nats disconnected/, t.name);
        }
        assert.equal(rows.find((r) => r.service === 'nats')?.state, 'down');
        const refused = await refusedDelegate(sys, subjectToken);
        assert.equal(refused.code, status.UNAVAILABLE, refused.details);
        assert.match(
          refused.details,
          /^nats disconnected from .+: no credential is issued while its audit cannot be stored$/,
        );
      },
    });
    await untilEvery(targets, 'ready again after NATS returned', isReady, Date.now() + 30_000);
  });

  it('goes false within 3 s of nats-server hanging with its sockets open, and back once it answers', async () => {
    await untilEvery(targets, 'ready at the start', isReady, Date.now() + 30_000);
    const subjectToken = await sys.idpToken('argocd-sa');
    await sys.nats.freeze(async () => {
      const problems = await untilEvery(
        targets,
        '/readyz 503 while the server answers nothing',
        unready,
        Date.now() + FOLLOWS_WITHIN_MS,
      );
      for (const [name, list] of problems) {
        assert.ok(list.includes('nats server not answering (no PONG within 1000 ms)'), `${name}: ${list}`);
      }
      const refused = await refusedDelegate(sys, subjectToken);
      assert.equal(refused.code, status.UNAVAILABLE, refused.details);
    });
    await untilEvery(targets, 'ready again once the server answers', isReady, Date.now() + 30_000);
  });
});
