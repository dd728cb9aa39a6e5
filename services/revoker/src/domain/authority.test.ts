import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AoaClaims, AppError, type VerifiedAoaToken } from '@aoa/core';
import { authorizeRevoke, type Caller, callerName, mayList } from './authority.js';

const jti = (n: number) => `jti${String(n).padStart(19, '0')}`;
const JKT = (c: string) => c.repeat(43);

/** A chain root(dashboards, by client argocd) -> child(jobs) -> grandchild(reports). */
function token(depth: number, overrides: Partial<AoaClaims> = {}): VerifiedAoaToken {
  const apps = ['dashboards', 'jobs', 'reports'];
  const claims: AoaClaims = {
    iss: 'https://issuer',
    sub: 'idp:corp:argocd-sa',
    aud: ['https://metrics.internal'],
    client_id: depth === 0 ? 'client:argocd' : `app:${apps[depth - 1]}`,
    env: 'prod',
    scope: 'read:metrics',
    iat: 1,
    nbf: 1,
    exp: 2,
    jti: jti(depth),
    act: { sub: `app:${apps[depth]}` },
    aoa_lineage: apps
      .slice(0, depth)
      .map((app, i) => ({ jti: jti(i), app, env: 'prod', iat_ms: 1, kid: 'k1' })),
    aoa_iat_ms: 1,
    aoa_max_depth: 2,
    aoa_rule: 'r',
    cnf: { jkt: JKT(String(depth)) },
    ...overrides,
  };
  return { claims, kid: 'k1', alg: 'EdDSA' };
}

const admin: Caller = { kind: 'client', id: 'ops', admin: true };
const argocd: Caller = { kind: 'client', id: 'argocd', admin: false };
const ci: Caller = { kind: 'client', id: 'ci', admin: false };
const holderOf = (depth: number): Caller => ({ kind: 'holder', jkt: JKT(String(depth)) });

const denied = (fn: () => unknown) =>
  assert.throws(fn, (e: unknown) => e instanceof AppError && e.code === 'permission_denied');

describe('who may revoke', () => {
  it('an administrator may revoke anything, even an unknown jti', () => {
    assert.equal(authorizeRevoke(admin, { kind: 'jti', jti: jti(9) }, []), undefined);
    assert.deepEqual(authorizeRevoke(admin, { kind: 'app', environment: 'prod', app: 'jobs' }, []), {
      environment: 'prod',
      app: 'jobs',
    });
    authorizeRevoke(admin, { kind: 'kid', kid: 'k1' }, []);
    authorizeRevoke(admin, { kind: 'sub', subject: 's' }, []);
    authorizeRevoke(admin, { kind: 'grant', grant: 'g' }, []);
  });

  it('an operator (the holder of an operator token) is an administrator, named by its subject', () => {
    const operator: Caller = {
      kind: 'operator',
      sub: 'idp:corp:sre-bot',
      jti: jti(8),
      jkt: JKT('o'),
      admin: true,
      owns: [],
    };
    assert.equal(authorizeRevoke(operator, { kind: 'jti', jti: jti(9) }, []), undefined);
    authorizeRevoke(operator, { kind: 'app', environment: 'prod', app: 'jobs' }, []);
    authorizeRevoke(operator, { kind: 'sub', subject: 's' }, []);
    authorizeRevoke(operator, { kind: 'grant', grant: 'g' }, []);
    assert.equal(mayList(operator, 'client:ops', false), true);
    assert.equal(callerName(operator), 'operator:idp:corp:sre-bot');
  });

  it("an owner's operator token has its clients' rights and no more", () => {
    const owner: Caller = {
      kind: 'operator',
      sub: 'idp:corp:bob',
      jti: jti(8),
      jkt: JKT('o'),
      admin: false,
      owns: ['argocd'],
    };
    authorizeRevoke(owner, { kind: 'jti', jti: jti(2) }, [token(0), token(2)]);
    authorizeRevoke(owner, { kind: 'grant', grant: 'g' }, [], 'argocd');
    denied(() => authorizeRevoke(owner, { kind: 'grant', grant: 'g' }, [], 'ci'));
    denied(() => authorizeRevoke(owner, { kind: 'jti', jti: jti(2) }, [token(1), token(2)]));
    denied(() => authorizeRevoke(owner, { kind: 'jti', jti: jti(9) }, []));
    denied(() => authorizeRevoke(owner, { kind: 'sub', subject: 's' }, []));
    denied(() => authorizeRevoke(owner, { kind: 'app', environment: 'prod', app: 'jobs' }, []));
    assert.equal(mayList(owner, 'client:ops', false), false);
    assert.equal(mayList(owner, 'operator:idp:corp:bob', false), true);
  });

  it('the holder of a token may revoke it and every descendant, placed at the target app', () => {
    assert.deepEqual(authorizeRevoke(holderOf(1), { kind: 'jti', jti: jti(1) }, [token(1)]), {
      environment: 'prod',
      app: 'jobs',
    });
    assert.deepEqual(authorizeRevoke(holderOf(0), { kind: 'jti', jti: jti(2) }, [token(0), token(2)]), {
      environment: 'prod',
      app: 'reports',
    });
  });

  it('the holder of a descendant may not revoke an ancestor', () => {
    denied(() => authorizeRevoke(holderOf(2), { kind: 'jti', jti: jti(0) }, [token(2)]));
  });

  it('the requesting client may revoke its token and its descendants, not another client', () => {
    authorizeRevoke(argocd, { kind: 'jti', jti: jti(0) }, [token(0)]);
    authorizeRevoke(argocd, { kind: 'jti', jti: jti(2) }, [token(0), token(2)]);
    denied(() => authorizeRevoke(ci, { kind: 'jti', jti: jti(2) }, [token(0), token(2)]));
  });

  it('a non-administrator must present the token or a descendant', () => {
    denied(() => authorizeRevoke(argocd, { kind: 'jti', jti: jti(5) }, [token(0)]));
    denied(() => authorizeRevoke(holderOf(1), { kind: 'jti', jti: jti(1) }, []));
  });

  it('app, subject and key revocations are for administrators', () => {
    denied(() => authorizeRevoke(argocd, { kind: 'app', environment: 'prod', app: 'jobs' }, [token(0)]));
    denied(() => authorizeRevoke(holderOf(0), { kind: 'sub', subject: 'idp:corp:argocd-sa' }, [token(0)]));
    denied(() => authorizeRevoke(argocd, { kind: 'kid', kid: 'k1' }, [token(0)]));
  });

  it("a grant: administrators, and the grant's parent client only", () => {
    assert.equal(authorizeRevoke(argocd, { kind: 'grant', grant: 'g1' }, [], 'argocd'), undefined);
    denied(() => authorizeRevoke(ci, { kind: 'grant', grant: 'g1' }, [], 'argocd'));
    denied(() => authorizeRevoke(argocd, { kind: 'grant', grant: 'g1' }, [token(0)]));
    denied(() => authorizeRevoke(holderOf(0), { kind: 'grant', grant: 'g1' }, [token(0)], 'argocd'));
    assert.equal(authorizeRevoke(admin, { kind: 'grant', grant: 'unknown' }, []), undefined);
  });

  it('listings: administrators all, others their own or by jti', () => {
    assert.equal(mayList(admin, 'client:x', false), true);
    assert.equal(mayList(argocd, 'client:argocd', false), true);
    assert.equal(mayList(argocd, 'client:ci', false), false);
    assert.equal(mayList(argocd, 'client:ci', true), true);
  });
});
