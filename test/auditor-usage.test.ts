import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuditPublisher, createLogger, Subjects } from '@aoa/core';
import { createDatabase } from '@aoa/testkit';
import { status } from '@grpc/grpc-js';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startAuditor, systemAccess, type TestAuditor, until, unusedScopes } from './support/auditor.js';
import { makeKey } from './support/oauth.js';
import { rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

let sys: TestSystem;
let auditor: TestAuditor;
let nc: NatsConnection;
let dropDatabase: () => Promise<void>;

before(async () => {
  sys = await startSystem();
  const db = await createDatabase();
  dropDatabase = () => db.drop();
  auditor = await startAuditor(sys.nats.url, db.url, {}, systemAccess(sys));
  nc = await connect({ servers: sys.nats.url });
});

after(async () => {
  await nc?.close();
  await auditor?.stop();
  await dropDatabase?.();
  await sys?.stop();
});

/** What a verifier publishes on `aoa.usage.<env>.<app>` after a window. */
const report = (body: Record<string, unknown>) =>
  nc.publish(
    `aoa.usage.${body.env}.${body.app}`,
    JSON.stringify({ from_ms: Date.now() - 1000, to_ms: Date.now(), ...body }),
  );

/** `aoa_auditor_usage_reports_total{result}` from the auditor's `/metrics`. */
async function usageReports(result: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${auditor.httpPort}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`aoa_auditor_usage_reports_total{result="${result}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('the unused-scope report', () => {
  it('lists the scopes issued to an app or granted by a grant that no verifier reported a request needing', async () => {
    // The baseline of dashboards/prod: both scopes, issued by a real Delegate.
    await rootDelegateAsArgocd(sys, {
      scopes: ['read:metrics', 'write:dashboards'],
      holderJkt: (await makeKey()).jkt,
    });
    // A standing grant for dashboards/prod, as the rotator records it.
    const audit = new AuditPublisher(
      jetstream(nc),
      new Subjects('aoa'),
      'rotator/test',
      createLogger({ service: 'test', level: 'silent' }),
    );
    await audit.publish('grant.created', 'grant-1', {
      id: 'grant-1',
      app: 'dashboards',
      env: 'prod',
      scopes: ['read:metrics', 'write:dashboards'],
    });
    const before = await until('the baseline and the grant', async () => {
      const answer = await unusedScopes(auditor, { env: 'prod' });
      return answer.apps.length === 1 && answer.grants.length === 1 ? answer : undefined;
    });
    assert.deepEqual(before.apps[0], {
      env: 'prod',
      app: 'dashboards',
      grantId: '',
      granted: ['read:metrics', 'write:dashboards'],
      exercised: [],
      unused: ['read:metrics', 'write:dashboards'],
    });
    assert.deepEqual(before.grants[0]?.unused, ['read:metrics', 'write:dashboards']);

    // A verifier reports read:metrics in use by a Delegate token, then by a token of the grant.
    report({ env: 'prod', app: 'dashboards', scopes: ['read:metrics'] });
    const appOnly = await until('the first report', async () => {
      const answer = await unusedScopes(auditor, { env: 'prod', app: 'dashboards' });
      return answer.apps[0]?.exercised.length === 1 ? answer : undefined;
    });
    assert.deepEqual(appOnly.apps[0]?.unused, ['write:dashboards']);
    assert.deepEqual(appOnly.grants[0]?.unused, ['read:metrics', 'write:dashboards']);
    report({ env: 'prod', app: 'dashboards', grant_id: 'grant-1', scopes: ['write:dashboards'] });
    const both = await until('the grant report', async () => {
      const answer = await unusedScopes(auditor, { app: 'dashboards' });
      return answer.grants[0]?.exercised.length === 1 ? answer : undefined;
    });
    assert.deepEqual(both.apps[0]?.unused, []);
    assert.deepEqual(both.grants[0], {
      env: 'prod',
      app: 'dashboards',
      grantId: 'grant-1',
      granted: ['read:metrics', 'write:dashboards'],
      exercised: ['write:dashboards'],
      unused: ['read:metrics'],
    });

    // A deleted grant is no longer reported; other apps and environments are filtered out.
    await audit.publish('grant.deleted', 'grant-1', { grant_id: 'grant-1' });
    await until('the deletion', async () =>
      (await unusedScopes(auditor, { env: 'prod' })).grants.length === 0 ? true : undefined,
    );
    assert.deepEqual(await unusedScopes(auditor, { env: 'staging' }), { apps: [], grants: [] });
  });

  it('counts and ignores a malformed report, and answers only administrators with valid filters', async () => {
    const refusedBefore = await usageReports('refused');
    nc.publish('aoa.usage.prod.dashboards', 'not json');
    report({ env: 'prod', app: 'dashboards', scopes: [] });
    report({ env: 'prod', app: 'dashboards', scopes: ['read:metrics'], from_ms: 2, to_ms: 1 });
    // The subject names another app than the report.
    nc.publish(
      'aoa.usage.prod.jobs',
      JSON.stringify({ env: 'prod', app: 'dashboards', scopes: ['x'], from_ms: 1, to_ms: 2 }),
    );
    await until('four refusals', async () =>
      (await usageReports('refused')) - refusedBefore === 4 ? true : undefined,
    );
    await assert.rejects(unusedScopes(auditor, {}, auditor.access.nonAdmin), {
      code: status.PERMISSION_DENIED,
    });
    await assert.rejects(
      unusedScopes(auditor, { env: 'Prod!' }),
      (error: { code: number; details: string }) => {
        assert.equal(error.code, status.INVALID_ARGUMENT);
        assert.match(error.details, /^env: must match/);
        return true;
      },
    );
  });
});
