import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_METADATA_BYTES } from '@aoa/core';
import { auditor, health, issuer, revoker, rotator } from '@aoa/proto';
import {
  Client,
  credentials,
  Metadata,
  type ServiceDefinition,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import fc from 'fast-check';
import { startAuditor, systemAccess } from './support/auditor.js';
import { clientAssertion } from './support/oauth.js';
import { startRevoker } from './support/revoker.js';
import { startRotator } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

// Property-based abuse of every external input (#14 item 5): whatever bytes, fields, metadata, forms or
// tokens arrive, a service answers a client error (never INTERNAL or UNKNOWN, never HTTP 500) and keeps
// answering. Real services on real NATS; fast-check generates the inputs.

const RUNS = 60;
/** Codes that mean the service failed rather than the input: what no input may cause. */
const FAILURES = new Set([status.INTERNAL, status.UNKNOWN, status.DATA_LOSS]);

let sys: TestSystem;
let auditDir: string;
const stops: Array<() => Promise<void>> = [];
const targets: Array<{ name: string; port: number; service: ServiceDefinition }> = [];

before(async () => {
  sys = await startSystem();
  const rev = await startRevoker(sys);
  stops.push(rev.stop);
  const rot = await startRotator(sys);
  stops.push(rot.stop);
  auditDir = await mkdtemp(join(tmpdir(), 'aoa-fuzz-audit-'));
  const aud = await startAuditor(sys.nats.url, auditDir, {}, systemAccess(sys));
  stops.push(aud.stop);
  targets.push(
    { name: 'issuer', port: sys.issuer.grpcPort, service: issuer.IssuerService },
    { name: 'revoker', port: rev.revoker.grpcPort, service: revoker.RevokerService },
    { name: 'rotator', port: rot.rotator.grpcPort, service: rotator.RotatorService },
    { name: 'auditor', port: aud.grpcPort, service: auditor.AuditorService },
  );
});

after(async () => {
  for (const stop of stops.reverse()) await stop();
  await sys?.stop();
  if (auditDir) await rm(auditDir, { recursive: true, force: true });
});

/** Sends `body` as the raw request of `path`; resolves the gRPC status code (OK as 0) and details. */
function rawCall(
  client: Client,
  path: string,
  streaming: boolean,
  body: Buffer,
  metadata = new Metadata(),
): Promise<{ code: number; details: string }> {
  const identity = (b: Buffer) => b;
  const options = { deadline: Date.now() + 10_000 };
  return new Promise((resolve) => {
    const done = (error: ServiceError | null) =>
      resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '' });
    if (!streaming) {
      client.makeUnaryRequest(path, identity, identity, body, metadata, options, (error) => done(error));
      return;
    }
    const stream = client.makeServerStreamRequest(path, identity, identity, body, metadata, options);
    stream.on('data', () => undefined);
    stream.on('error', (error: ServiceError) => done(error));
    stream.on('end', () => done(null));
  });
}

async function withClient<T>(port: number, use: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/** The varint of an unsigned bigint, for fields no generated encoder would write. */
function varint(value: bigint): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return bytes;
}

async function assertStillServing(port: number): Promise<void> {
  const client = new health.HealthClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    const response = await new Promise<health.HealthCheckResponse>((resolve, reject) =>
      client.check({ service: '' }, (error, value) => (error ? reject(error) : resolve(value))),
    );
    assert.equal(response.status, health.HealthCheckResponse_ServingStatus.SERVING);
  } finally {
    client.close();
  }
}

describe('gRPC requests of any shape', () => {
  it('random bytes to every method of every service: a client error, never INTERNAL', async () => {
    for (const target of targets) {
      await withClient(target.port, async (client) => {
        for (const method of Object.values(target.service)) {
          await fc.assert(
            fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
              const { code, details } = await rawCall(
                client,
                method.path,
                method.responseStream,
                Buffer.from(bytes),
              );
              assert.ok(!FAILURES.has(code), `${method.path}: ${status[code]} ${details}`);
            }),
            { numRuns: RUNS },
          );
        }
      });
      await assertStillServing(target.port);
    }
  });

  it('a body that is not protobuf is MALFORMED_REQUEST, and an int64 beyond 2^53 too', async () => {
    await withClient(sys.issuer.grpcPort, async (client) => {
      const broken = await rawCall(
        client,
        '/aoa.v1.Issuer/Delegate',
        false,
        Buffer.from([0xff, 0xff, 0xff, 0xff]),
      );
      assert.equal(broken.code, status.INVALID_ARGUMENT);
      assert.match(broken.details, /^\/aoa\.v1\.Issuer\/Delegate: the request does not decode \(.+\)$/);
      await fc.assert(
        fc.asyncProperty(fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }), async (ttl) => {
          // Field 7 (ttl_seconds), wire type 0: tag 0x38.
          const body = Buffer.from([0x38, ...varint(ttl)]);
          const { code, details } = await rawCall(client, '/aoa.v1.Issuer/Delegate', false, body);
          assert.equal(code, status.INVALID_ARGUMENT, details);
        }),
        { numRuns: RUNS },
      );
    });
  });

  it('valid messages with arbitrary field values: never INTERNAL', async () => {
    const text = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }));
    const delegateRequest = fc.record({
      subjectToken: fc.oneof(text, jwtLike()),
      subjectTokenType: fc.oneof(text, fc.constant('urn:ietf:params:oauth:token-type:jwt')),
      child: fc.oneof(text, fc.constant('dashboards')),
      environment: fc.oneof(text, fc.constant('prod')),
      scopes: fc.array(text, { maxLength: 40 }),
      audience: fc.array(text, { maxLength: 40 }),
      ttlSeconds: fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
      holderJkt: text,
    });
    await withClient(sys.issuer.grpcPort, async (client) => {
      await fc.assert(
        fc.asyncProperty(delegateRequest, async (request) => {
          const body = Buffer.from(
            issuer.DelegateRequest.encode(issuer.DelegateRequest.fromPartial(request)).finish(),
          );
          const metadata = new Metadata();
          metadata.set(
            'client-assertion',
            await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
          );
          const { code, details } = await rawCall(client, '/aoa.v1.Issuer/Delegate', false, body, metadata);
          assert.ok(!FAILURES.has(code), `${status[code]} ${details}`);
          assert.notEqual(code, status.OK, 'nothing random is issued');
        }),
        { numRuns: RUNS },
      );
    });
    await assertStillServing(sys.issuer.grpcPort);
  });

  it('forged caller proofs (client assertions, DPoP proofs) of any shape: refused, never INTERNAL', async () => {
    const request = Buffer.from(
      issuer.DelegateRequest.encode(
        issuer.DelegateRequest.fromPartial({
          subjectToken: await sys.idpToken('argocd-sa'),
          child: 'dashboards',
          environment: 'prod',
          scopes: ['read:metrics'],
          holderJkt: sys.keys.edge.jkt,
        }),
      ).finish(),
    );
    await withClient(sys.issuer.grpcPort, async (client) => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('client-assertion', 'dpop'),
          fc.oneof(jwtLike(), fc.string({ maxLength: 2000 })),
          async (key, value) => {
            const metadata = new Metadata();
            metadata.set(key, value.replace(/[^\x20-\x7e]/g, ''));
            const { code, details } = await rawCall(
              client,
              '/aoa.v1.Issuer/Delegate',
              false,
              request,
              metadata,
            );
            assert.ok(!FAILURES.has(code), `${key}: ${status[code]} ${details}`);
            assert.notEqual(code, status.OK);
          },
        ),
        { numRuns: RUNS * 2 },
      );
    });
  });

  it('metadata over 16 KiB is RESOURCE_EXHAUSTED naming the limit, on every service', async () => {
    for (const target of targets) {
      const method = Object.values(target.service)[0] as ServiceDefinition[string];
      await withClient(target.port, async (client) => {
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: MAX_METADATA_BYTES + 1, max: 4 * MAX_METADATA_BYTES }),
            async (size) => {
              const metadata = new Metadata();
              // Split over entries of at most 4 KiB, as a client padding many headers would.
              for (let i = 0, left = size; left > 0; i++, left -= 4096) {
                metadata.set(`x-pad-${i}`, 'a'.repeat(Math.min(4096, left)));
              }
              const { code, details } = await rawCall(
                client,
                method.path,
                method.responseStream,
                Buffer.alloc(0),
                metadata,
              );
              assert.equal(code, status.RESOURCE_EXHAUSTED, details);
              assert.match(details, new RegExp(`at most ${MAX_METADATA_BYTES} are accepted$`));
            },
          ),
          { numRuns: 10 },
        );
      });
    }
  });
});

describe('HTTP forms of any shape (token, introspection, revocation endpoints)', () => {
  it('answer a client error (4xx), never 500, and the issuer keeps serving', async () => {
    const field = fc.constantFrom(
      'grant_type',
      'subject_token',
      'subject_token_type',
      'client_assertion',
      'client_assertion_type',
      'resource',
      'audience',
      'scope',
      'token',
      'token_type_hint',
      'actor_token',
      'requested_token_type',
    );
    const form = fc.array(
      fc.tuple(
        fc.oneof(field, fc.string({ maxLength: 40 })),
        fc.oneof(fc.string({ maxLength: 400 }), jwtLike()),
      ),
      {
        maxLength: 12,
      },
    );
    const contentType = fc.constantFrom(
      'application/x-www-form-urlencoded',
      'application/json',
      'text/plain',
      'multipart/form-data; boundary=x',
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/token', '/introspect', '/revoke'),
        form,
        contentType,
        fc.option(fc.oneof(jwtLike(), fc.string({ maxLength: 200 }))),
        async (path, entries, type, dpop) => {
          const body = new URLSearchParams(entries).toString();
          const headers: Record<string, string> = { 'content-type': type };
          if (dpop !== null) headers.dpop = dpop.replace(/[^\x20-\x7e]/g, '');
          const response = await fetch(`${sys.issuer.issuer}${path}`, { method: 'POST', headers, body });
          await response.arrayBuffer();
          assert.ok(response.status < 500 || response.status === 503, `${path}: ${response.status}`);
          assert.ok(response.status !== 200 || path !== '/token', 'a random form mints nothing');
        },
      ),
      { numRuns: RUNS * 3 },
    );
    const ready = await fetch(`http://127.0.0.1:${sys.issuer.httpPort}/readyz`);
    assert.equal(ready.status, 200);
  });
});

/** Strings shaped like compact JWTs: three base64url parts of arbitrary JSON (or not), some signed-looking. */
function jwtLike(): fc.Arbitrary<string> {
  const part = fc.oneof(
    fc.json({ maxDepth: 3 }).map((json) => Buffer.from(json).toString('base64url')),
    fc
      .jsonValue({ maxDepth: 2 })
      .map((value) => Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT', value })).toString('base64url')),
    fc.string({ maxLength: 60 }),
  );
  return fc.tuple(part, part, part).map((parts) => parts.join('.'));
}
