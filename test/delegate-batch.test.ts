import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { errorInfoFrom } from '@aoa/core';
import { issuer as pb } from '@aoa/proto';
import { Metadata, type ServiceError, status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { decodeJwt } from 'jose';
import { type BusProbe, probeBus } from './support/bus.js';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { callDelegate, startSystem, type TestSystem } from './support/system.js';

// #15 item 1: DelegateBatch mints a whole app-of-apps sync in one call, each child decided exactly as
// a Delegate would decide it, each audited, all acknowledged before any credential is returned.

let sys: TestSystem;
let bus: BusProbe;
let keys: TestKey[];

before(async () => {
  sys = await startSystem();
  bus = await probeBus(sys.nats.url);
  keys = await Promise.all(Array.from({ length: 8 }, () => makeKey()));
});
after(async () => {
  await bus?.close();
  await sys?.stop();
});

type Item = Partial<pb.DelegateBatchItem>;

async function batch(
  items: Item[],
  options: { subjectToken?: string; metadata?: Record<string, string> } = {},
): Promise<pb.DelegateBatchResponse> {
  const metadata = new Metadata();
  const given = options.metadata ?? {
    'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
  };
  for (const [k, v] of Object.entries(given)) metadata.set(k, v);
  const request = pb.DelegateBatchRequest.fromPartial({
    subjectToken: options.subjectToken ?? (await sys.idpToken('argocd-sa')),
    items: items.map((item) => pb.DelegateBatchItem.fromPartial(item)),
  });
  return new Promise((resolve, reject) =>
    sys.client.delegateBatch(request, metadata, (error, response) =>
      error ? reject(error) : resolve(response),
    ),
  );
}

const item = (i: number, overrides: Item = {}): Item => ({
  child: 'dashboards',
  environment: 'prod',
  scopes: ['read:metrics'],
  holderJkt: keys[i]?.jkt ?? '',
  ...overrides,
});

/** Events of a type on the audit stream, those of batch messages included. */
async function auditCount(type: string): Promise<number> {
  return (await bus.auditEvents()).filter(({ event }) => event.type === type).length;
}

describe('DelegateBatch', () => {
  it('issues each allowed child its own key-bound credential and each refused child its refusal, in order, every one audited', async () => {
    const [issuedBefore, deniedBefore] = [
      await auditCount('delegation.issued'),
      await auditCount('delegation.denied'),
    ];
    const response = await batch([
      item(0),
      item(1, {
        environment: 'staging',
        scopes: ['admin'],
        audience: ['https://dashboards.internal'],
        ttlSeconds: 120,
      }),
      item(2, { child: 'jobs' }),
      item(3, { scopes: ['write:config'] }),
      item(4, { child: 'Bad!' }),
    ]);
    const [a, b, jobs, scope, invalid] = response.results;
    for (const [i, issued] of [a?.issued, b?.issued].entries()) {
      assert.ok(issued, `item ${i} issued`);
      const claims = decodeJwt(issued.accessToken);
      assert.deepEqual(claims.cnf, { jkt: keys[i]?.jkt });
      assert.equal(claims.jti, issued.jti);
      assert.equal(claims.sub, 'idp:corp:argocd-sa');
    }
    assert.notEqual(a?.issued?.jti, b?.issued?.jti);
    assert.deepEqual(decodeJwt(b?.issued?.accessToken ?? '').aud, ['https://dashboards.internal']);
    assert.equal(jobs?.refused?.code, 'PERMISSION_DENIED');
    assert.equal(jobs?.refused?.reason, 'NO_MATCHING_RULE');
    assert.deepEqual(
      [scope?.refused?.reason, scope?.refused?.rule],
      ['SCOPE_NOT_ALLOWED', 'deployers-dashboards'],
    );
    assert.deepEqual(
      [invalid?.refused?.code, invalid?.refused?.reason],
      ['INVALID_ARGUMENT', 'INVALID_ARGUMENT'],
    );
    // The five events travel together, in the items' order: one message, one acknowledgement.
    const events = await bus.auditEvents();
    const together = events.filter(({ seq }) => seq === events.at(-1)?.seq);
    assert.deepEqual(
      together.map(({ subject, event }) => [
        subject,
        event.type,
        event.type === 'delegation.issued' ? event.subject : '',
      ]),
      [
        ['aoa.audit.batch', 'delegation.issued', a?.issued?.jti],
        ['aoa.audit.batch', 'delegation.issued', b?.issued?.jti],
        ['aoa.audit.batch', 'delegation.denied', ''],
        ['aoa.audit.batch', 'delegation.denied', ''],
        ['aoa.audit.batch', 'delegation.denied', ''],
      ],
    );
    assert.equal(await auditCount('delegation.issued'), issuedBefore + 2, 'one issued event per credential');
    assert.equal(
      await auditCount('delegation.denied'),
      deniedBefore + 3,
      'one denied event per refused child',
    );
  });

  it('gives each child exactly what a Delegate of the same request gives (property)', async () => {
    const scopes = fc.subarray(['read:metrics', 'write:dashboards', 'admin', 'run:job'], { minLength: 1 });
    const child = fc.record({
      child: fc.constantFrom('dashboards', 'jobs'),
      environment: fc.constantFrom('prod', 'staging'),
      scopes,
      ttlSeconds: fc.constantFrom(0, 60, 900, 3600),
    });
    const subjectToken = await sys.idpToken('argocd-sa');
    await fc.assert(
      fc.asyncProperty(fc.array(child, { minLength: 1, maxLength: 4 }), async (children) => {
        const requests = children.map((c, i) => ({ ...c, holderJkt: keys[i]?.jkt ?? '' }));
        const batched = await batch(requests, { subjectToken });
        for (const [i, request] of requests.entries()) {
          const single = await callDelegate(
            sys.client,
            { ...request, subjectToken },
            {
              'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer),
            },
          ).then(
            (r) => ({ issued: r }),
            (e: ServiceError) => ({ reason: errorInfoFrom(e.metadata)?.reason }),
          );
          const got = batched.results[i];
          if ('issued' in single) {
            assert.ok(got?.issued, `${JSON.stringify(request)}: Delegate issued, the batch did not`);
            const [x, y] = [decodeJwt(got.issued.accessToken), decodeJwt(single.issued.accessToken)];
            assert.deepEqual([x.scope, x.aud, x.aoa_rule, x.env], [y.scope, y.aud, y.aoa_rule, y.env]);
            assert.ok(Math.abs((x.exp as number) - (y.exp as number)) <= 2);
          } else {
            assert.equal(got?.refused?.reason, single.reason, JSON.stringify(request));
          }
        }
      }),
      { numRuns: 15 },
    );
  });

  it('lets the holder of an aoa token sub-delegate to several children with one DPoP proof, never beyond its own token', async () => {
    const parentKey = keys[7] as TestKey;
    const parent = await callDelegate(
      sys.client,
      {
        subjectToken: await sys.idpToken('argocd-sa'),
        child: 'dashboards',
        environment: 'prod',
        scopes: ['read:metrics'],
        holderJkt: parentKey.jkt,
      },
      { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
    );
    const htu = `${sys.issuer.grpcUrl}/aoa.v1.Issuer/DelegateBatch`;
    const response = await batch(
      [item(0, { child: 'jobs' }), item(1, { child: 'jobs', scopes: ['run:job'] })],
      {
        subjectToken: parent.accessToken,
        metadata: { dpop: await dpopProof(parentKey, 'POST', htu, parent.accessToken) },
      },
    );
    const [allowed, beyond] = response.results;
    const claims = decodeJwt(allowed?.issued?.accessToken ?? '');
    assert.deepEqual(claims.act, { sub: 'app:jobs', act: { sub: 'app:dashboards' } });
    assert.deepEqual(
      (claims.aoa_lineage as Array<{ jti: string }>).map((l) => l.jti),
      [parent.jti],
    );
    assert.equal(beyond?.refused?.reason, 'SCOPE_NOT_IN_PARENT');
  });

  it('refuses the whole call for a bad caller proof (audited once), a replayed assertion, or a batch of 0 or 257', async () => {
    const refusal = (attempt: Promise<unknown>) =>
      attempt.then(
        () => assert.fail('accepted'),
        (e: ServiceError) => ({
          code: e.code,
          reason: errorInfoFrom(e.metadata)?.reason,
          details: e.details,
        }),
      );
    const deniedBefore = await auditCount('delegation.denied');
    const noProof = await refusal(batch([item(0), item(1)], { metadata: {} }));
    assert.equal(noProof.code, status.UNAUTHENTICATED);
    assert.equal(await auditCount('delegation.denied'), deniedBefore + 1, 'one event for the refused call');
    // The children are decided and signed while the proof's claim is in flight: a replay, refused,
    // must still publish none of their events.
    const assertion = await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer);
    const many = Array.from({ length: 35 }, (_, i) => item(i % keys.length));
    await batch(many, { metadata: { 'client-assertion': assertion } });
    const [issuedBeforeReplay, deniedBeforeReplay] = await Promise.all([
      auditCount('delegation.issued'),
      auditCount('delegation.denied'),
    ]);
    const replayed = await refusal(batch(many, { metadata: { 'client-assertion': assertion } }));
    assert.deepEqual([replayed.code, replayed.reason], [status.UNAUTHENTICATED, 'PROOF_REPLAYED']);
    assert.equal(
      await auditCount('delegation.issued'),
      issuedBeforeReplay,
      'a replay published issued events',
    );
    assert.equal(await auditCount('delegation.denied'), deniedBeforeReplay + 1, 'one event for the replay');
    const empty = await refusal(batch([]));
    assert.deepEqual(
      [empty.code, empty.details],
      [status.INVALID_ARGUMENT, 'items: 1 to 256 children, got 0'],
    );
    const tooMany = await refusal(batch(Array.from({ length: 257 }, () => item(0))));
    assert.equal(tooMany.code, status.INVALID_ARGUMENT);
  });

  it('mints 256 children in one call, each with its own jti', async () => {
    const response = await batch(Array.from({ length: 256 }, (_, i) => item(i % keys.length)));
    const jtis = new Set(response.results.map((r) => r.issued?.jti));
    assert.equal(jtis.size, 256);
  });
});
