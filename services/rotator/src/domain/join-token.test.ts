import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, sha256Hex } from '@aoa/core';
import { checkJoinToken, joinTokenHash, joinTokenTtl, newJoinToken } from './join-token.js';

describe('join tokens', () => {
  it('are 256 random bits behind a recognisable prefix, never repeated', () => {
    const a = newJoinToken();
    assert.match(a, /^aoajt_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a, newJoinToken());
  });

  it('are stored only as their hex SHA-256, a legal KV key that reveals nothing', () => {
    const token = newJoinToken();
    const hash = joinTokenHash(token);
    assert.equal(hash, sha256Hex(token));
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.ok(!hash.includes(token.slice(6)));
  });

  it('refuses a forged or malformed token before any lookup', () => {
    for (const bad of [
      '',
      'aoajt_short',
      `xx${newJoinToken()}`,
      `${newJoinToken()}.`,
      'aoajt_'.padEnd(49, '*'),
    ]) {
      assert.throws(
        () => joinTokenHash(bad),
        (e: unknown) => e instanceof AppError && e.code === 'unauthenticated',
      );
    }
  });

  it('work once and only until they expire', () => {
    const now = 1_000_000;
    const record = { grant: 'g'.repeat(22), expires_at_ms: now + 1000, created_by: 'ops' };
    assert.equal(checkJoinToken(record, now), record);
    assert.throws(() => checkJoinToken(undefined, now), /join token: unknown/);
    assert.throws(() => checkJoinToken({ ...record, used_at_ms: now - 1 }, now), /join token: already used/);
    assert.throws(() => checkJoinToken(record, now + 1000), /join token: expired/);
  });

  it('live 10 minutes by default and at most a day', () => {
    assert.equal(joinTokenTtl(0), 600);
    assert.equal(joinTokenTtl(60), 60);
    assert.throws(() => joinTokenTtl(86401), /ttl_seconds/);
    assert.throws(() => joinTokenTtl(-1), /ttl_seconds/);
  });
});
