import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RowContent } from './chain.js';
import { assessBatch, assessIssuance, type Issuance, issuanceOf, issuancesOf } from './creep.js';

const T0 = Date.UTC(2026, 0, 1);

const issued = (
  seq: number,
  over: {
    scopes?: string[];
    audience?: string[];
    ttl?: number;
    depth?: number;
    rule?: string;
    child?: string;
  },
): RowContent => ({
  seq,
  part: 0,
  parts: 1,
  id: `event-${String(seq).padStart(4, '0')}`,
  type: 'delegation.issued',
  time: new Date(T0 + seq * 1000 + 250).toISOString(),
  source: 'issuer/test',
  subject: `jti-${seq}`,
  data: {
    jti: `jti-${seq}`,
    sub: 'idp:corp:argocd-sa',
    child: over.child ?? 'jobs',
    env: 'prod',
    scopes_granted: over.scopes ?? ['read:metrics'],
    audience: over.audience ?? ['https://metrics.internal'],
    exp: T0 / 1000 + seq + (over.ttl ?? 600),
    depth: over.depth ?? 0,
    rule: over.rule ?? 'deployers-jobs',
  },
  marker: null,
});

const issuance = (row: RowContent): Issuance => {
  const found = issuanceOf(row);
  assert.ok(found);
  return found;
};

describe('privilege creep', () => {
  it('reads a delegation: scopes granted, audience, TTL from exp and event time, depth, rule', () => {
    assert.deepEqual(issuance(issued(1, { ttl: 600, depth: 1 })), {
      eventId: 'event-0001',
      eventType: 'delegation.issued',
      app: 'jobs',
      env: 'prod',
      scopes: ['read:metrics'],
      audiences: ['https://metrics.internal'],
      ttlSeconds: 600,
      depth: 1,
      rule: 'deployers-jobs',
      sub: 'idp:corp:argocd-sa',
      jti: 'jti-1',
      grantId: '',
    });
  });

  it('reads a grant mint by its longest delivery and ignores every other event and marker rows', () => {
    const minted: RowContent = {
      ...issued(2, {}),
      type: 'grant.minted',
      data: {
        grant_id: 'g1',
        child: 'jobs',
        env: 'prod',
        scopes: ['run:job'],
        deliveries: [{ exp: T0 / 1000 + 302 }, { exp: T0 / 1000 + 62 }],
      },
    };
    assert.deepEqual(
      [issuance(minted).scopes, issuance(minted).ttlSeconds, issuance(minted).grantId],
      [['run:job'], 300, 'g1'],
    );
    assert.equal(issuanceOf({ ...issued(3, {}), type: 'delegation.denied' }), undefined);
    assert.equal(issuanceOf({ ...issued(4, {}), id: null, marker: 'duplicate' }), undefined);
  });

  it('only sets the baseline on the first issuance for an app and environment', () => {
    const { baseline, growth } = assessIssuance(undefined, issuance(issued(1, { scopes: ['b', 'a'] })));
    assert.equal(growth, undefined);
    assert.deepEqual(baseline.scopes, ['a', 'b']);
  });

  it('names every dimension that grew, old against new, and widens the baseline', () => {
    const first = assessIssuance(undefined, issuance(issued(1, {}))).baseline;
    const wider = issuance(
      issued(2, {
        scopes: ['read:metrics', 'write:config'],
        audience: ['https://jobs.internal'],
        ttl: 900,
        depth: 2,
      }),
    );
    const { baseline, growth } = assessIssuance(first, wider);
    assert.deepEqual(growth, {
      scopes: { before: ['read:metrics'], added: ['write:config'] },
      audiences: { before: ['https://metrics.internal'], added: ['https://jobs.internal'] },
      ttl: { before: 600, after: 900 },
      depth: { before: 0, after: 2 },
    });
    assert.deepEqual(baseline, {
      app: 'jobs',
      env: 'prod',
      scopes: ['read:metrics', 'write:config'],
      audiences: ['https://jobs.internal', 'https://metrics.internal'],
      maxTtlSeconds: 900,
      maxDepth: 2,
    });
  });

  it('does not alert for a narrower or equal issuance, nor for a TTL a second longer', () => {
    const first = assessIssuance(undefined, issuance(issued(1, { scopes: ['a', 'b'], ttl: 900 }))).baseline;
    assert.equal(assessIssuance(first, issuance(issued(2, { scopes: ['a'], ttl: 300 }))).growth, undefined);
    assert.equal(assessIssuance(first, issuance(issued(3, { scopes: ['a'], ttl: 901 }))).growth, undefined);
  });

  it('alerts once per growth in a batch, per app, with the rule that allowed it and a stable id', () => {
    const rows = [
      issued(1, {}),
      issued(2, { child: 'reports' }),
      issued(3, { scopes: ['read:metrics', 'write:config'], rule: 'widened' }),
      issued(4, { scopes: ['read:metrics', 'write:config'], rule: 'widened' }),
    ];
    const { changed, alerts } = assessBatch(new Map(), issuancesOf(rows));
    assert.deepEqual(changed.map((b) => b.app).sort(), ['jobs', 'reports']);
    assert.equal(alerts.length, 1);
    const [alert] = alerts;
    assert.equal(alert?.sourceSeq, 3);
    assert.equal(alert?.subject, 'jobs.prod');
    assert.deepEqual(alert?.data.grew, ['scopes']);
    assert.equal(alert?.data.rule, 'widened');
    assert.equal(alert?.data.jti, 'jti-3');
    assert.match(alert?.id ?? '', /^creep_[A-Za-z0-9_-]{32}$/);
    assert.equal(assessBatch(new Map(), issuancesOf(rows)).alerts[0]?.id, alert?.id);
  });
});
