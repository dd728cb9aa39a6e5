import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '@aoa/core';
import { type RawDelegateRequest, validateDelegateRequest } from './request.js';

const JKT = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';

const valid = (): RawDelegateRequest => ({
  subjectToken: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln',
  subjectTokenType: '',
  child: 'dashboards',
  environment: 'prod',
  scopes: ['read:metrics'],
  audience: ['https://dashboards.internal'],
  ttlSeconds: 300,
  holderJkt: JKT,
});

/** The message a request with one field changed is refused with; fails if it is accepted. */
function refusal(patch: Partial<RawDelegateRequest>): string {
  try {
    validateDelegateRequest({ ...valid(), ...patch });
  } catch (error) {
    assert.ok(error instanceof AppError, 'a bad request must be an AppError');
    assert.equal(error.code, 'invalid_argument');
    return error.message;
  }
  assert.fail(`accepted ${JSON.stringify(patch).slice(0, 80)}`);
}

describe('validateDelegateRequest', () => {
  it('accepts a well-formed request, dropping repeated scopes and audiences', () => {
    const input = validateDelegateRequest({
      ...valid(),
      scopes: ['read:metrics', 'write:dashboards', 'read:metrics'],
      audience: ['https://a', 'https://a'],
    });
    assert.deepEqual(input.scopes, ['read:metrics', 'write:dashboards']);
    assert.deepEqual(input.audience, ['https://a']);
    assert.equal(input.holderJkt, JKT);
  });

  it('treats an empty holder_jkt as none and a zero ttl as the longest allowed', () => {
    const input = validateDelegateRequest({ ...valid(), holderJkt: '', ttlSeconds: 0, audience: [] });
    assert.equal(input.holderJkt, undefined);
    assert.equal(input.ttlSeconds, 0);
    assert.deepEqual(input.audience, []);
  });

  it('requires a subject token', () => {
    assert.equal(refusal({ subjectToken: '' }), 'subject_token: required');
  });

  it('names child and environment when they are missing or not lowercase DNS labels', () => {
    assert.equal(refusal({ child: '' }), 'child: required');
    assert.equal(refusal({ environment: '' }), 'environment: required');
    for (const child of ['x.>', 'a*', 'Dashboards', '-lead', 'trail-', 'd\u0430shboards', 'a'.repeat(64)]) {
      assert.match(refusal({ child }), /^child: must match/, child);
    }
    for (const environment of ['PROD', 'prod.eu', 'prod>', 'prod env']) {
      assert.match(refusal({ environment }), /^environment: must match/, environment);
    }
  });

  it('names scopes when none, too many or a malformed one is asked for, with its index', () => {
    assert.equal(refusal({ scopes: [] }), 'scopes: at least one scope is required');
    assert.equal(refusal({ scopes: Array.from({ length: 33 }, (_, i) => `s${i}`) }), 'scopes: at most 32');
    for (const bad of ['two words', 'quote"d', 'back\\slash', '', 'x'.repeat(129), 'tab\there', 'é']) {
      assert.equal(refusal({ scopes: ['read:metrics', bad] }), 'scopes[1]: not a valid scope token', bad);
    }
  });

  it('names the audience when there are too many or one is empty, overlong, or has spaces or control characters', () => {
    assert.equal(
      refusal({ audience: Array.from({ length: 17 }, (_, i) => `https://a${i}`) }),
      'audience: at most 16',
    );
    for (const bad of [
      '',
      'https://a b',
      `https://${'a'.repeat(505)}`,
      'https://a\n',
      'https://a\u0000b',
      'a\u007fb',
    ]) {
      assert.match(refusal({ audience: ['https://ok', bad] }), /^audience\[1\]: must be 1 to 512/);
    }
  });

  it('names ttl_seconds when it is negative, fractional, not a number or beyond a week', () => {
    for (const ttlSeconds of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 7 * 86400 + 1]) {
      assert.match(refusal({ ttlSeconds }), /^ttl_seconds: must be 0/, String(ttlSeconds));
    }
    assert.equal(validateDelegateRequest({ ...valid(), ttlSeconds: 7 * 86400 }).ttlSeconds, 7 * 86400);
  });

  it('names holder_jkt when it is not a SHA-256 JWK thumbprint', () => {
    for (const holderJkt of ['short', `${JKT}A`, `${JKT.slice(0, 42)}+`, `${JKT.slice(0, 42)}=`]) {
      assert.match(refusal({ holderJkt }), /^holder_jkt: must be an RFC 7638/, holderJkt);
    }
  });
});
