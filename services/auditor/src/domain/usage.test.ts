import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseUsageReport, scopeReport } from './usage.js';

const body = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    env: 'prod',
    app: 'dashboards',
    scopes: ['read:metrics'],
    from_ms: 1,
    to_ms: 2,
    ...extra,
  });

describe('usage reports', () => {
  it('accepts a report on its own app subject, with or without a grant', () => {
    assert.deepEqual(parseUsageReport(body(), 'aoa.usage.prod.dashboards', 'aoa'), {
      env: 'prod',
      app: 'dashboards',
      scopes: ['read:metrics'],
      from_ms: 1,
      to_ms: 2,
    });
    const granted = parseUsageReport(body({ grant_id: 'g-1' }), 'aoa.usage.prod.dashboards', 'aoa');
    assert.equal(typeof granted === 'object' && granted.grant_id, 'g-1');
  });

  it('names what is wrong with anything else', () => {
    const subject = 'aoa.usage.prod.dashboards';
    assert.equal(parseUsageReport('{', subject, 'aoa'), 'not JSON');
    assert.match(String(parseUsageReport(body({ scopes: [] }), subject, 'aoa')), /^scopes: /);
    assert.match(String(parseUsageReport(body({ scopes: ['a b'] }), subject, 'aoa')), /^scopes\.0: /);
    assert.match(String(parseUsageReport(body({ env: 'Prod' }), subject, 'aoa')), /^env: /);
    assert.match(String(parseUsageReport(body({ from_ms: 3 }), subject, 'aoa')), /from_ms after to_ms/);
    assert.match(String(parseUsageReport(body(), 'aoa.usage.prod.jobs', 'aoa')), /another app/);
  });

  it('splits the granted scopes into exercised and unused, sorted and without repeats', () => {
    const key = { env: 'prod', app: 'dashboards', grantId: '' };
    assert.deepEqual(scopeReport(key, ['write', 'read', 'admin', 'read'], new Set(['read', 'other'])), {
      ...key,
      granted: ['admin', 'read', 'write'],
      exercised: ['read'],
      unused: ['admin', 'write'],
    });
  });
});
