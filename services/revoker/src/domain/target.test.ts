import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '@aoa/core';
import { targetKey, validateRevokeRequest } from './target.js';

const JTI = 'AAAAAAAAAAAAAAAAAAAAAA';

const invalid = (fn: () => unknown, field: RegExp) =>
  assert.throws(
    fn,
    (e: unknown) => e instanceof AppError && e.code === 'invalid_argument' && field.test(e.message),
  );

describe('validateRevokeRequest', () => {
  it('accepts each target kind and maps it to the contract KV key', () => {
    assert.deepEqual(targetKey(validateRevokeRequest({ jti: JTI }).target), {
      key: `jti.${JTI}`,
      absolute: true,
    });
    assert.equal(targetKey(validateRevokeRequest({ kid: 'k-1_a' }).target).key, 'kid.k-1_a');
    assert.equal(targetKey(validateRevokeRequest({ grantId: 'g1' }).target).key, 'grant.g1');
    const app = validateRevokeRequest({ app: { environment: 'prod', child: 'jobs' } }).target;
    assert.deepEqual(targetKey(app), { key: 'app.prod.jobs', absolute: false });
    const sub = targetKey(validateRevokeRequest({ subject: 'idp:corp:argocd-sa' }).target);
    assert.match(sub.key, /^sub\.[0-9a-f]{64}$/);
    assert.equal(sub.absolute, false);
  });

  it('refuses no target or two targets', () => {
    invalid(() => validateRevokeRequest({}), /exactly one/);
    invalid(() => validateRevokeRequest({ jti: JTI, kid: 'k1' }), /exactly one/);
  });

  it('refuses malformed ids that could split or escape a KV key or subject', () => {
    invalid(() => validateRevokeRequest({ jti: 'short' }), /^jti/);
    invalid(() => validateRevokeRequest({ jti: `${JTI}.>` }), /^jti/);
    invalid(() => validateRevokeRequest({ kid: 'a.b' }), /^kid/);
    invalid(() => validateRevokeRequest({ grantId: 'g*' }), /^grant_id/);
    invalid(() => validateRevokeRequest({ subject: 'a\nb' }), /^subject/);
    invalid(() => validateRevokeRequest({ jti: JTI, reason: 'x'.repeat(513) }), /^reason/);
  });

  it('refuses app and environment names outside the name pattern', () => {
    for (const bad of ['Prod', 'prod.eu', '*', '>', '-prod', 'a'.repeat(64), '']) {
      invalid(() => validateRevokeRequest({ app: { environment: bad, child: 'jobs' } }), /app\.environment/);
      invalid(() => validateRevokeRequest({ app: { environment: 'prod', child: bad || 'X' } }), /app\.child/);
    }
  });
});
