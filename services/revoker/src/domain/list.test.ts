import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '@aoa/core';
import { listRevocations } from './list.js';

const rec = (by: string, kind: string) => ({ id: 'r', at_ms: 1, reason: '', by, kind });
const all = [
  { key: 'app.prod.jobs', record: rec('client:ops', 'app') },
  { key: 'app.staging.jobs', record: rec('client:ops', 'app') },
  { key: 'jti.AAAAAAAAAAAAAAAAAAAAAA', record: rec('client:argocd', 'jti') },
  { key: 'jti.BBBBBBBBBBBBBBBBBBBBBB', record: rec('jkt:x', 'jti') },
  { key: 'kid.k1', record: rec('client:ops', 'kid') },
];

describe('listRevocations', () => {
  const admin = { kind: 'client', id: 'ops', admin: true } as const;
  it('pages in key order for administrators, with filters', () => {
    const first = listRevocations(admin, all, { pageSize: 2 });
    assert.deepEqual(
      first.items.map((i) => i.key),
      ['app.prod.jobs', 'app.staging.jobs'],
    );
    const second = listRevocations(admin, all, { pageSize: 2, pageToken: first.nextPageToken });
    assert.equal(second.items[0]?.key, 'jti.AAAAAAAAAAAAAAAAAAAAAA');
    assert.deepEqual(
      listRevocations(admin, all, { kind: 'kid' }).items.map((i) => i.key),
      ['kid.k1'],
    );
    assert.deepEqual(
      listRevocations(admin, all, { environment: 'prod' }).items.map((i) => i.key),
      ['app.prod.jobs'],
    );
    assert.equal(listRevocations(admin, all, {}).nextPageToken, '');
  });

  it('shows others only their own revocations, or one by jti', () => {
    const argocd = { kind: 'client', id: 'argocd', admin: false } as const;
    assert.deepEqual(
      listRevocations(argocd, all, {}).items.map((i) => i.key),
      ['jti.AAAAAAAAAAAAAAAAAAAAAA'],
    );
    assert.deepEqual(
      listRevocations(argocd, all, { jti: 'BBBBBBBBBBBBBBBBBBBBBB' }).items.map((i) => i.key),
      ['jti.BBBBBBBBBBBBBBBBBBBBBB'],
    );
  });

  it('refuses bad filters', () => {
    for (const bad of [
      { kind: 'x' },
      { pageSize: 5000 },
      { environment: 'Prod' },
      { jti: 'x' },
      { pageToken: 'a b' },
    ]) {
      assert.throws(
        () => listRevocations(admin, all, bad),
        (e: unknown) => e instanceof AppError && e.code === 'invalid_argument',
      );
    }
  });
});
