import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csrfMatches, SessionStore } from './sessions.js';

const person = { sub: 'idp:dev:alice', name: 'Alice' };
const fields = { person, idpAccessToken: 'idp-token', idpExpiresAtMs: 0 };

describe('console sessions', () => {
  it('a session ends at its absolute expiry: get() answers nothing from then on', () => {
    let now = 1_000_000;
    const store = new SessionStore({ nowMs: () => now }, 60_000, 10);
    const session = store.create(fields);
    now += 59_999;
    assert.equal(store.get(session.id), session);
    now += 1;
    assert.equal(store.get(session.id), undefined);
    assert.equal(store.size(), 0);
  });

  it('ids and CSRF tokens are fresh 256-bit secrets; a CSRF token matches only its own session', () => {
    const store = new SessionStore({ nowMs: () => 0 }, 60_000, 10);
    const a = store.create(fields);
    const b = store.create(fields);
    assert.notEqual(a.id, b.id);
    assert.match(a.csrf, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(csrfMatches(a, a.csrf));
    assert.ok(!csrfMatches(a, b.csrf));
    assert.ok(!csrfMatches(a, ''));
    assert.ok(!csrfMatches(a, null));
    assert.ok(!csrfMatches(a, `${a.csrf}x`));
  });

  it('at most maxSessions live at once: the oldest goes first', () => {
    const store = new SessionStore({ nowMs: () => 0 }, 60_000, 2);
    const first = store.create(fields);
    const second = store.create(fields);
    const third = store.create(fields);
    assert.equal(store.get(first.id), undefined);
    assert.equal(store.get(second.id), second);
    assert.equal(store.get(third.id), third);
  });

  it('a sign-in state is good for one callback, and not after ten minutes', () => {
    let now = 0;
    const store = new SessionStore({ nowMs: () => now }, 60_000, 10);
    const login = store.beginLogin('verifier');
    assert.equal(store.takeLogin(login.state)?.codeVerifier, 'verifier');
    assert.equal(store.takeLogin(login.state), undefined, 'used once');
    const late = store.beginLogin('verifier');
    now += 10 * 60_000;
    assert.equal(store.takeLogin(late.state), undefined, 'expired');
  });
});
