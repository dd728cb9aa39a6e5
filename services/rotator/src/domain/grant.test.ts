import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '@aoa/core';
import { assertGrantId, parsePrincipal, validateGrantInput } from './grant.js';
import { parseMintReply } from './mint-reply.js';

const NOW = 1_800_000_000;
const raw = {
  sub: 'idp:corp:owner',
  child: 'dashboards',
  environment: 'prod',
  scopes: ['read:metrics', 'read:metrics'],
  audience: [],
  tokenTtlSeconds: 600,
  expiresAt: 0,
};
const invalid = (fn: () => unknown, message: RegExp) =>
  assert.throws(
    fn,
    (e: unknown) => e instanceof AppError && e.code === 'invalid_argument' && message.test(e.message),
  );

describe('validateGrantInput', () => {
  it('defaults the expiry to the longest lifetime and dedupes scopes', () => {
    const input = validateGrantInput(raw, NOW, 86400);
    assert.equal(input.expiresAt, NOW + 86400);
    assert.deepEqual(input.scopes, ['read:metrics']);
  });

  it('refuses names that could reach a NATS subject unchecked', () => {
    invalid(() => validateGrantInput({ ...raw, child: 'a.>' }, NOW, 86400), /child/);
    invalid(() => validateGrantInput({ ...raw, environment: '*' }, NOW, 86400), /environment/);
  });

  it('refuses a grant outliving the maximum, ending before one token TTL, or with a bad TTL', () => {
    invalid(() => validateGrantInput({ ...raw, expiresAt: NOW + 86401 }, NOW, 86400), /at most 86400s/);
    invalid(() => validateGrantInput({ ...raw, expiresAt: NOW + 600 }, NOW, 86400), /expires_at/);
    invalid(() => validateGrantInput({ ...raw, tokenTtlSeconds: 1 }, NOW, 86400), /token_ttl_seconds/);
  });

  it('needs scopes that are scope tokens, and a principal idp:<namespace>:<subject>', () => {
    invalid(() => validateGrantInput({ ...raw, scopes: [] }, NOW, 86400), /scopes/);
    invalid(() => validateGrantInput({ ...raw, scopes: ['a b'] }, NOW, 86400), /scope token/);
    invalid(() => validateGrantInput({ ...raw, sub: 'app:dashboards' }, NOW, 86400), /sub/);
    assert.deepEqual(parsePrincipal('idp:corp:a:b'), { idp: 'corp', sub: 'a:b' });
  });

  it('accepts only base64url grant ids (legal KV keys, no subject wildcards)', () => {
    assert.equal(assertGrantId('AbC_-1234567'), 'AbC_-1234567');
    invalid(() => assertGrantId('grant.1234567'), /grant_id/);
    invalid(() => assertGrantId('short'), /grant_id/);
  });
});

describe('parseMintReply', () => {
  const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const jwe = 'eyJh.ZW5j.aXY.Y3Q.dGFn';

  it('reads deliveries', () => {
    assert.deepEqual(parseMintReply(bytes({ deliveries: [{ agent: 'web-1', jti: 'j', exp: 5, jwe }] })), [
      { agent: 'web-1', jti: 'j', exp: 5, jwe },
    ]);
  });

  it('turns an error reply into that error, and anything else into internal', () => {
    assert.throws(
      () => parseMintReply(bytes({ error: { code: 'failed_precondition', message: 'grant is revoked' } })),
      (e: unknown) => e instanceof AppError && e.code === 'failed_precondition',
    );
    assert.throws(() => parseMintReply(new TextEncoder().encode('{')), /not JSON/);
    assert.throws(
      () => parseMintReply(bytes({ deliveries: [{ agent: 'x', jti: 'j', exp: 5, jwe: 'a.b.c' }] })),
      /malformed/,
    );
    assert.throws(
      () => parseMintReply(bytes({ deliveries: [{ agent: 'A.>', jti: 'j', exp: 5, jwe }] })),
      /malformed/,
    );
  });
});
