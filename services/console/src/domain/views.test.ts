import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { events, rotator } from '@aoa/proto';
import { creepDays, grantRows, tokenRows } from './views.js';

const grant: rotator.Grant = {
  id: 'g1',
  sub: 'idp:dev:orchestrator',
  child: 'dashboards',
  environment: 'prod',
  scopes: ['read:metrics'],
  audience: ['https://metrics.internal'],
  tokenTtlSeconds: 600,
  expiresAt: 0,
  state: 'active',
  parentClient: 'orchestrator',
  agents: ['web-1', 'web-2'],
};
const event = (type: string, at: number, data: Record<string, unknown>): events.AuditEvent => ({
  id: `${type}-${at}`,
  type,
  time: new Date(at),
  source: 'test',
  subject: 's',
  data,
});

describe('console views', () => {
  it("a tree search lists delegations' tokens and each agent's token of a grant, newest first", () => {
    const issued = {
      ...event('delegation.issued', 1, { child: 'jobs', env: 'prod', scopes_granted: ['run:job'] }),
      subject: 'jti-1',
    };
    const minted = event('grant.minted', 2, {
      child: 'dashboards',
      env: 'prod',
      scopes: ['read:metrics'],
      deliveries: [{ agent: 'web-1', jti: 'jti-2' }, { agent: 'web-2', jti: 'jti-3' }, { agent: 'bad' }],
    });
    assert.deepEqual(
      tokenRows([issued, minted]).map((t) => [t.jti, t.child, t.scopes.join(' '), t.agent]),
      [
        ['jti-3', 'dashboards', 'read:metrics', 'web-2'],
        ['jti-2', 'dashboards', 'read:metrics', 'web-1'],
        ['jti-1', 'jobs', 'run:job', ''],
      ],
    );
  });

  it('a grant shows its last mint, the expected next one (half the TTL later), and each agent’s last delivery', () => {
    const [row] = grantRows(
      [grant],
      [
        event('grant.minted', 1_000_000, { grant_id: 'g1' }),
        event('credential.delivered', 1_000_100, { grant_id: 'g1', agent: 'web-1' }),
      ],
      1_000_000 + 300_000,
    );
    assert.equal(row?.lastRotation, new Date(1_000_000).toISOString());
    assert.equal(row?.nextRotation, new Date(1_300_000).toISOString());
    assert.equal(row?.lagSeconds, 0);
    assert.deepEqual(row?.agents, [
      { agent: 'web-1', lastDelivery: new Date(1_000_100).toISOString() },
      { agent: 'web-2', lastDelivery: undefined },
    ]);
  });

  it('a grant whose rotation is overdue past the jitter shows its lag; one never minted shows none', () => {
    const [late] = grantRows(
      [grant],
      [event('grant.minted', 0, { grant_id: 'g1' })],
      300_000 + 30_000 + 5_000,
    );
    assert.equal(late?.lagSeconds, 5);
    const [fresh] = grantRows([grant], [], 10_000_000);
    assert.equal(fresh?.lagSeconds, 0);
    assert.equal(fresh?.lastRotation, undefined);
  });

  it('creep alerts are counted per UTC day, empty days included, oldest first', () => {
    const day = 86_400_000;
    const now = Date.UTC(2026, 11, 7, 12);
    const days = creepDays(
      [
        event('alert.privilege_creep', now - day, {}),
        event('alert.privilege_creep', now - day + 1, {}),
        event('alert.privilege_creep', now, {}),
      ],
      now,
      3,
    );
    assert.deepEqual(days, [
      { day: '2026-12-05', alerts: 0 },
      { day: '2026-12-06', alerts: 2 },
      { day: '2026-12-07', alerts: 1 },
    ]);
  });
});
