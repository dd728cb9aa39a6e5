import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, errorInfoFrom } from '@aoa/core';
import { issuer as pb } from '@aoa/proto';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { buildIssuer, type RunningIssuer } from '../services/issuer/src/app.js';
import { loadIssuerConfig } from '../services/issuer/src/config.js';
import { clientAssertion, dpopProof, makeKey, type TestKey } from './support/oauth.js';
import { oauthHarness, post } from './support/oauth-http.js';
import { callDelegate, startSystem, type TestSystem, testPolicy } from './support/system.js';

let sys: TestSystem;
let nc: NatsConnection;
let holder: TestKey;

before(async () => {
  sys = await startSystem();
  nc = await connect({ servers: sys.nats.url });
  holder = await makeKey();
});
after(async () => {
  await nc?.close();
  await sys?.stop();
});

const proof = async (audience = sys.issuer.issuer, claims: Record<string, unknown> = {}) => ({
  'client-assertion': await clientAssertion('argocd', sys.keys.argocd, audience, { claims }),
});
const rootRequest = async (request: Record<string, unknown> = {}) => ({
  subjectToken: await sys.idpToken('argocd-sa'),
  child: 'dashboards',
  environment: 'prod',
  scopes: ['read:metrics'],
  holderJkt: holder.jkt,
  ...request,
});

/** What a refused call told its caller: code, and the ErrorInfo of `grpc-status-details-bin`. */
async function refusal(call: Promise<unknown>) {
  const error = (await call.then(
    () => assert.fail('the call was not refused'),
    (e: unknown) => e,
  )) as ServiceError;
  const info = errorInfoFrom(error.metadata);
  assert.ok(info, `no ErrorInfo in the trailers of: ${error.details}`);
  return { code: error.code, reason: info.reason, domain: info.domain, metadata: info.metadata };
}

/** The data of the latest `delegation.denied` event on AOA_AUDIT. */
async function lastDenied(): Promise<Record<string, unknown>> {
  const jsm = await jetstreamManager(nc);
  const message = await jsm.streams.getMessage('AOA_AUDIT', { last_by_subj: 'aoa.audit.delegation.denied' });
  return message?.json<{ data: Record<string, unknown> }>().data ?? {};
}

async function subDelegate(parent: string, request: Record<string, unknown>) {
  const htu = `${sys.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`;
  return callDelegate(
    sys.client,
    { subjectToken: parent, child: 'jobs', environment: 'prod', scopes: ['read:metrics'], ...request },
    { dpop: await dpopProof(holder, 'POST', htu, parent) },
  );
}

describe('a refusal names its reason and its rule or constraint', () => {
  it('narrowing refusals carry the constraint they broke, in the ErrorInfo and in the audit event', async () => {
    const parent = await callDelegate(sys.client, await rootRequest(), await proof());
    const cases: [Record<string, unknown>, string, string][] = [
      [{ scopes: ['run:job'] }, 'SCOPE_NOT_IN_PARENT', 'parent.scope'],
      [{ audience: ['https://jobs.internal'] }, 'AUDIENCE_NOT_IN_PARENT', 'parent.aud'],
      [{ environment: 'staging' }, 'ENVIRONMENT_CHANGE', 'parent.env'],
    ];
    for (const [patch, reason, constraint] of cases) {
      const refused = await refusal(subDelegate(parent.accessToken, { holderJkt: holder.jkt, ...patch }));
      assert.deepEqual(refused, {
        code: status.PERMISSION_DENIED,
        reason,
        domain: 'aoa',
        metadata: { constraint },
      });
      const event = await lastDenied();
      assert.deepEqual([event.error_reason, event.constraint, event.rule], [reason, constraint, '']);
      assert.equal(event.parent_jti, parent.jti);
    }
  });

  it('a depth refusal names the parent bound, a rule refusal names the rule', async () => {
    const parent = await callDelegate(sys.client, await rootRequest(), await proof());
    const child = await subDelegate(parent.accessToken, { holderJkt: holder.jkt });
    const grandchild = await subDelegate(child.accessToken, { child: 'reports', holderJkt: holder.jkt });
    assert.equal(grandchild.depth, 2);
    const tooDeep = await refusal(
      subDelegate(grandchild.accessToken, { child: 'reports', holderJkt: holder.jkt }),
    );
    assert.deepEqual(
      [tooDeep.reason, tooDeep.metadata],
      ['DEPTH_EXCEEDED', { constraint: 'parent.aoa_max_depth' }],
    );

    const byRule = await refusal(
      callDelegate(sys.client, await rootRequest({ scopes: ['admin'] }), await proof()),
    );
    assert.deepEqual(
      [byRule.reason, byRule.metadata],
      ['SCOPE_NOT_ALLOWED', { rule: 'deployers-dashboards' }],
    );
    const ttl = await refusal(
      callDelegate(sys.client, await rootRequest({ ttlSeconds: 3600 }), await proof()),
    );
    assert.deepEqual(
      [ttl.reason, ttl.metadata],
      ['TTL_EXCEEDED', { rule: 'deployers-dashboards', constraint: 'rules.deployers-dashboards.max_ttl' }],
    );
    const event = await lastDenied();
    assert.deepEqual(
      [event.error_reason, event.rule, event.constraint],
      ['TTL_EXCEEDED', 'deployers-dashboards', 'rules.deployers-dashboards.max_ttl'],
    );
  });

  it('the OAuth token endpoint maps the same reason into its error and error_description', async () => {
    const h = oauthHarness(sys);
    const answer = await post(h.tokenUrl, {
      ...(await h.exchangeParams({ scope: 'admin', aoa_holder_jkt: holder.jkt })),
      ...(await h.auth()),
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, 'invalid_scope');
    assert.match(String(answer.body.error_description), /^SCOPE_NOT_ALLOWED: rule deployers-dashboards /);
    assert.equal(answer.body.aoa_reason, 'SCOPE_NOT_ALLOWED');
    assert.equal(answer.body.aoa_rule, 'deployers-dashboards');
    const unknown = await post(h.tokenUrl, {
      ...(await h.exchangeParams({ aoa_child: 'ghost', aoa_holder_jkt: holder.jkt })),
      ...(await h.auth()),
    });
    assert.deepEqual(
      [unknown.body.error, unknown.body.aoa_reason, unknown.body.aoa_constraint],
      ['invalid_target', 'UNKNOWN_APP', 'apps'],
    );
  });
});

describe('a replayed caller proof', () => {
  /** The refusal of a replay and its audit event: PROOF_REPLAYED, naming no rule. */
  async function assertRefusedAsReplay(attempt: Promise<unknown>): Promise<void> {
    const replayed = await refusal(attempt);
    assert.deepEqual(
      [replayed.code, replayed.reason, replayed.metadata],
      [status.UNAUTHENTICATED, 'PROOF_REPLAYED', {}],
    );
    const event = await lastDenied();
    assert.deepEqual([event.error_reason, event.rule, event.code], ['PROOF_REPLAYED', '', 'unauthenticated']);
  }

  it('wins over a policy refusal: its refusal and audit event name no rule', async () => {
    const once = await proof();
    const request = await rootRequest({ scopes: ['admin'] });
    const first = await refusal(callDelegate(sys.client, request, once));
    assert.deepEqual([first.reason, first.metadata], ['SCOPE_NOT_ALLOWED', { rule: 'deployers-dashboards' }]);
    await assertRefusedAsReplay(callDelegate(sys.client, request, once));
  });

  it('wins over an allowed decision (the claim runs alongside policy and signing): no credential, no rule', async () => {
    const once = await proof();
    const request = await rootRequest();
    const first = await callDelegate(sys.client, request, once);
    assert.ok(first.accessToken);
    await assertRefusedAsReplay(callDelegate(sys.client, request, once));
  });
});

describe('subject token times', () => {
  /** An issuer whose clock runs `behindSeconds` behind the IdP's, under the test policy plus `idpExtra`. */
  async function issuerBehind(behindSeconds: number, idpExtra: string): Promise<RunningIssuer> {
    const policyPath = join(sys.dir, `policy-skew-${behindSeconds}-${idpExtra.length}.yaml`);
    const policy = testPolicy(sys.idp.issuer, sys.keys).replace(
      '    algorithms: [ES256, RS256]\n',
      `    algorithms: [ES256, RS256]\n${idpExtra}`,
    );
    await writeFile(policyPath, policy);
    return buildIssuer(
      loadIssuerConfig({
        NATS_URL: sys.nats.url,
        AOA_POLICY_FILE: policyPath,
        AOA_ISSUER_GRPC_LISTEN: '127.0.0.1:0',
        AOA_ISSUER_HTTP_LISTEN: '127.0.0.1:0',
      }),
      {
        logger: createLogger({ service: 'issuer', level: 'silent' }),
        clock: { nowMs: () => Date.now() - behindSeconds * 1000 },
      },
    ).start();
  }

  it('refuses a token issued beyond the IdP clock_skew in the future, and accepts one within it', async () => {
    const behind = 60;
    const assertionTimes = () => {
      const now = Math.floor(Date.now() / 1000) - behind;
      return { iat: now, exp: now + 60 };
    };
    const strict = await issuerBehind(behind, '');
    const lenient = await issuerBehind(behind, '    clock_skew: 2m\n');
    try {
      for (const [running, expected] of [
        [strict, 'SUBJECT_TOKEN_FROM_FUTURE'],
        [lenient, 'allowed'],
      ] as const) {
        const client = new pb.IssuerClient(`127.0.0.1:${running.grpcPort}`, credentials.createInsecure());
        const call = callDelegate(client, await rootRequest(), await proof(running.issuer, assertionTimes()));
        if (expected === 'allowed') {
          assert.equal((await call).rule, 'deployers-dashboards');
        } else {
          const refused = await refusal(call);
          assert.deepEqual([refused.code, refused.reason], [status.UNAUTHENTICATED, expected]);
        }
        client.close();
      }
    } finally {
      await strict.stop();
      await lenient.stop();
    }
  });
});
