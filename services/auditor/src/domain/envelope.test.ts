import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUDIT_BATCH_MAX_BYTES, AUDIT_EVENT_TYPES } from '@aoa/core';
import { parseAuditMessage } from './envelope.js';
import { compileQuery, type QueryFilter } from './query.js';

const opts = { prefix: 'aoa', maxBytes: 1024 };
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const good = {
  id: 'abcdefgh12345678',
  type: 'delegation.issued',
  time: '2026-01-01T00:00:00Z',
  source: 'issuer/x',
  subject: 'j1',
  data: { jti: 'j1' },
};

describe('audit message validation', () => {
  it('accepts a valid envelope and normalises its time to milliseconds in UTC', () => {
    const parsed = parseAuditMessage(bytes(good), 'aoa.audit.delegation.issued', opts);
    assert.deepEqual(parsed, {
      ok: true,
      events: [{ ok: true, event: { ...good, time: '2026-01-01T00:00:00.000Z' } }],
    });
  });

  it('gives a reason for every kind of bad input', () => {
    const reason = (raw: Uint8Array, subject = 'aoa.audit.delegation.issued') => {
      const parsed = parseAuditMessage(raw, subject, opts);
      assert.equal(parsed.ok, false);
      return parsed.ok ? '' : parsed.reason;
    };
    assert.equal(reason(bytes('{not json')), 'invalid JSON');
    assert.match(
      reason(bytes({ ...good, data: { pad: 'x'.repeat(2000) } })),
      /^oversized: \d+ bytes, limit 1024$/,
    );
    assert.match(reason(bytes({ ...good, time: 'yesterday' })), /^schema: time:/);
    assert.match(reason(bytes({ ...good, extra: 1 })), /^schema:/);
    assert.equal(
      reason(bytes({ ...good, type: 'bogus.thing' }), 'aoa.audit.bogus.thing'),
      'unknown type bogus.thing',
    );
    // A known noun is not enough: only the types defined in AUDIT_EVENT_TYPES are stored.
    assert.equal(
      reason(bytes({ ...good, type: 'grant.stolen' }), 'aoa.audit.grant.stolen'),
      'unknown type grant.stolen',
    );
    for (const type of AUDIT_EVENT_TYPES) {
      assert.equal(parseAuditMessage(bytes({ ...good, type }), `aoa.audit.${type}`, opts).ok, true, type);
    }
    assert.match(
      reason(bytes(good), 'aoa.audit.key.prepared'),
      /published on subject aoa.audit.key.prepared/,
    );
    assert.match(reason(bytes({ ...good, subject: 'a\u0000b' })), /NUL/);
  });

  it('accepts a batch message on aoa.audit.batch as its events, in order, whatever their types', () => {
    const denied = {
      ...good,
      id: 'zyxwvuts87654321',
      type: 'delegation.denied',
      time: '2026-01-01T01:00:00+01:00',
    };
    const parsed = parseAuditMessage(bytes({ events: [good, denied] }), 'aoa.audit.batch', opts);
    assert.deepEqual(parsed, {
      ok: true,
      events: [
        { ok: true, event: { ...good, time: '2026-01-01T00:00:00.000Z' } },
        { ok: true, event: { ...denied, time: '2026-01-01T00:00:00.000Z' } },
      ],
    });
  });

  it('gives each bad event of a batch its own reason and keeps its siblings; a bad batch is one dead letter', () => {
    const members = (value: unknown) => {
      const parsed = parseAuditMessage(bytes(value), 'aoa.audit.batch', opts);
      assert.equal(parsed.ok, true);
      return parsed.ok ? parsed.events.map((e) => (e.ok ? e.event.id : e.reason)) : [];
    };
    const deep = Array.from({ length: 40 }).reduce<unknown>((inner) => ({ inner }), 'x');
    assert.deepEqual(
      members({
        events: [
          good,
          { ...good, id: 'short' },
          { ...good, type: 'grant.stolen' },
          { ...good, subject: 'a\u0000b' },
          // A single event's own size limit holds inside a batch too.
          { ...good, data: { pad: 'x'.repeat(2000) } },
          { ...good, data: deep },
          { ...good, id: 'last-event-0001' },
        ],
      }).map((r) => r.replace(/\d+ bytes/, 'N bytes')),
      [
        good.id,
        'events[1]: schema: id: must be 8-128 base64url characters',
        'events[2]: unknown type grant.stolen',
        'events[3]: schema: NUL character in event',
        'events[4]: oversized: N bytes, limit 1024',
        'events[5]: schema: data: nested deeper than 32 levels',
        'last-event-0001',
      ],
    );
    const reason = (value: unknown, subject = 'aoa.audit.batch') => {
      const parsed = parseAuditMessage(bytes(value), subject, opts);
      assert.equal(parsed.ok, false);
      return parsed.ok ? '' : parsed.reason;
    };
    assert.equal(reason({ events: [] }), 'schema: events: must be an array of 1-1024 events');
    assert.equal(reason({ events: good }), 'schema: events: must be an array of 1-1024 events');
    assert.equal(reason({ events: [good], more: 1 }), 'schema: (root): unknown field more');
    assert.equal(reason([good]), 'schema: (root): must be an object');
    assert.equal(
      reason({ events: [good] }, 'aoa.audit.delegation.issued'),
      'schema: (root): unknown field events',
    );
    // A batch may be larger than one event may (the publisher's own bound), never unbounded.
    assert.equal(
      parseAuditMessage(bytes({ events: Array(20).fill(good) }), 'aoa.audit.batch', opts).ok,
      true,
    );
    assert.match(
      reason({ events: [{ ...good, data: { pad: 'x'.repeat(AUDIT_BATCH_MAX_BYTES) } }] }),
      new RegExp(`^oversized: \\d+ bytes, limit ${AUDIT_BATCH_MAX_BYTES}$`),
    );
    // Nesting is bounded for a single event as well.
    assert.equal(
      reason({ ...good, data: deep }, 'aoa.audit.delegation.issued'),
      'schema: data: nested deeper than 32 levels',
    );
  });
});

const empty: QueryFilter = {
  since: undefined,
  until: undefined,
  types: [],
  app: '',
  env: '',
  subject: '',
  jti: '',
  outcome: '',
  limit: 0,
  pageToken: '',
};

describe('query filters', () => {
  it('compiles filters to parameters, never to SQL text', () => {
    const q = compileQuery(
      { ...empty, types: ['delegation.issued'], app: 'jobs', env: 'prod', outcome: 'issued' },
      { seq: 4, part: 2 },
    );
    assert.equal(q.limit, 100);
    assert.deepEqual(q.params, [4, 2, 'delegation.issued', 'jobs', 'prod', '%.issued']);
    assert.ok(!q.where.includes('jobs'));
  });

  it('refuses malformed filters with invalid_argument naming the field', () => {
    const refuse = (filter: Partial<QueryFilter>, field: RegExp) =>
      assert.throws(
        () => compileQuery({ ...empty, ...filter }, { seq: 0, part: 0 }),
        (e: { code: string; message: string }) => e.code === 'invalid_argument' && field.test(e.message),
      );
    refuse({ limit: -1 }, /^limit:/);
    refuse({ limit: 10_001 }, /^limit:/);
    refuse({ types: ["x'; drop table audit_events; --"] }, /^types:/);
    refuse({ app: 'jobs prod' }, /^app:/);
    refuse({ since: new Date(2000), until: new Date(1000) }, /^since:/);
    refuse({ since: new Date(Number.NaN) }, /^since:/);
    refuse({ outcome: 'Issued!' }, /^outcome:/);
    refuse({ pageToken: '../../' }, /^page_token:/);
  });
});
