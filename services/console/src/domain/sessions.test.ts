import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csrfMatches, type Session, SessionStore } from './sessions.js';

const fields = (sub = 'idp:dev:alice') => ({
  person: { sub, name: sub },
  idpAccessToken: 'idp-token',
  idpExpiresAtMs: 0,
});

function created(store: SessionStore, sub?: string): Session {
  const session = store.create(fields(sub));
  assert.ok(session, 'a session is created');
  return session;
}

describe('console sessions', () => {
  it('a session ends at its absolute expiry: get() answers nothing from then on', () => {
    let now = 1_000_000;
    const store = new SessionStore({ nowMs: () => now }, 60_000, 10);
    const session = created(store);
    now += 59_999;
    assert.equal(store.get(session.id), session);
    now += 1;
    assert.equal(store.get(session.id), undefined);
    assert.equal(store.size(), 0);
  });

  it('ids and CSRF tokens are fresh 256-bit secrets; a CSRF token matches only its own session', () => {
    const store = new SessionStore({ nowMs: () => 0 }, 60_000, 10);
    const a = created(store, 'idp:dev:a');
    const b = created(store, 'idp:dev:b');
    assert.notEqual(a.id, b.id);
    assert.match(a.csrf, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(csrfMatches(a, a.csrf));
    assert.ok(!csrfMatches(a, b.csrf));
    assert.ok(!csrfMatches(a, ''));
    assert.ok(!csrfMatches(a, null));
    assert.ok(!csrfMatches(a, `${a.csrf}x`));
  });

  it('when full, a new sign-in is refused rather than ending anyone else’s session', () => {
    const store = new SessionStore({ nowMs: () => 0 }, 60_000, 2);
    const first = created(store, 'idp:dev:a');
    const second = created(store, 'idp:dev:b');
    assert.equal(store.create(fields('idp:dev:mallory')), undefined);
    assert.equal(store.get(first.id), first);
    assert.equal(store.get(second.id), second);
  });

  it('one person holds at most five sessions: a sixth ends their oldest', () => {
    const store = new SessionStore({ nowMs: () => 0 }, 60_000, 100);
    const mine = Array.from({ length: 5 }, () => created(store));
    const sixth = created(store);
    assert.equal(store.get(mine[0]?.id), undefined);
    assert.equal(store.get(mine[1]?.id), mine[1]);
    assert.equal(store.get(sixth.id), sixth);
  });

  it('a sign-in state is good for one callback, not after ten minutes, and refused while full', () => {
    let now = 0;
    const store = new SessionStore({ nowMs: () => now }, 60_000, 2);
    const login = store.beginLogin('verifier');
    assert.equal(login && store.takeLogin(login.state)?.codeVerifier, 'verifier');
    assert.equal(login && store.takeLogin(login.state), undefined, 'used once');
    const late = store.beginLogin('verifier');
    store.beginLogin('verifier');
    assert.equal(store.beginLogin('verifier'), undefined, 'full');
    now += 10 * 60_000;
    assert.equal(late && store.takeLogin(late.state), undefined, 'expired');
    assert.ok(store.beginLogin('verifier'), 'room again once the old ones expired');
  });
});
