import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { parsePolicy } from './load.js';
import { baseDocument, problemsAfter } from './test-helpers.js';

const jwkOf = (type: 'x25519' | 'p256' | 'ed25519', half: 'publicKey' | 'privateKey' = 'publicKey') => {
  const pair =
    type === 'p256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync(type as 'x25519');
  return pair[half].export({ format: 'jwk' }) as Record<string, unknown>;
};

const grant = (overrides: Record<string, unknown> = {}) => ({
  name: 'dashboards-prod',
  sub: 'idp:corp:alice',
  parent_client: 'argocd',
  app: 'dashboards',
  env: 'prod',
  scopes: ['read:metrics'],
  token_ttl: '5m',
  expires_in: 'none',
  ...overrides,
});

const withGrants =
  (...grants: unknown[]) =>
  (doc: { grants?: unknown[] }) => {
    doc.grants = grants;
  };

describe('grants in policy', () => {
  it('loads a grant with its defaults, its agents reduced to their public members', () => {
    const doc = baseDocument();
    const dpop = jwkOf('ed25519');
    doc.grants = [
      grant({
        scopes: ['read:metrics'],
        expires_in: '30d',
        agents: [{ id: 'web-1', encryption_jwk: { ...jwkOf('x25519'), kid: 'e' }, dpop_jwk: dpop }],
      }),
      grant({ name: 'forever', audience: ['https://dashboards.internal'] }),
    ];
    const policy = parsePolicy(stringify(doc), 'policy.yaml');
    const [first, second] = policy.grants;
    assert.equal(first?.tokenTtlSeconds, 300);
    assert.equal(first?.expiresInSeconds, 30 * 86400);
    assert.deepEqual(first?.audience, []);
    assert.deepEqual(Object.keys(first?.agents[0]?.encryptionJwk ?? {}).sort(), ['crv', 'kty', 'x']);
    assert.deepEqual(first?.agents[0]?.dpopJwk, { kty: 'OKP', crv: 'Ed25519', x: dpop.x });
    assert.equal(second?.expiresInSeconds, 0);
    assert.deepEqual(second?.agents, []);
  });

  it('reports every malformed field at its path in one pass', () => {
    assert.deepEqual(
      problemsAfter(
        withGrants(
          grant({ sub: 'alice', token_ttl: '2d', expires_in: undefined, extra: 1 }),
          grant({
            name: 'second',
            parent_client: 'nobody',
            app: 'nowhere',
            sub: 'idp:other:bob',
            scopes: [],
          }),
          grant({ name: 'second', token_ttl: 1, expires_in: 'soon' }),
        ),
      ),
      [
        'policy.yaml: grants[0].sub: "alice" must read idp:<idp namespace>:<sub> (printable ASCII, no spaces)',
        'policy.yaml: grants[0].token_ttl: 172800s is not between 2s and 24h',
        'policy.yaml: grants[0].expires_in: required: a duration like 30d, or none',
        'policy.yaml: grants[0].extra: unknown key',
        'policy.yaml: grants[1].scopes: a grant needs at least one scope',
        'policy.yaml: grants[2].token_ttl: 1s is not between 2s and 24h',
        'policy.yaml: grants[2].expires_in: "soon": expected a duration like 90s, 15m, 2h or 30d (or none)',
        'policy.yaml: grants[2].name: duplicate grant name "second" (also grants[1])',
        'policy.yaml: grants[1].parent_client: no client has id "nobody"',
        'policy.yaml: grants[1].app: no app is named "nowhere"',
        'policy.yaml: grants[1].sub: no idp has namespace "other"',
      ],
    );
  });

  it('refuses agent keys that are private, of the wrong kind, one key twice, or a repeated agent id', () => {
    const dpop = jwkOf('p256');
    assert.deepEqual(
      problemsAfter(
        withGrants(
          grant({
            agents: [
              { id: 'a', encryption_jwk: jwkOf('x25519', 'privateKey'), dpop_jwk: jwkOf('x25519') },
              { id: 'b', encryption_jwk: dpop, dpop_jwk: dpop },
              { id: 'a', encryption_jwk: jwkOf('p256'), dpop_jwk: jwkOf('ed25519') },
              { id: 'Bad.Id', encryption_jwk: 'text', dpop_jwk: jwkOf('ed25519') },
            ],
          }),
        ),
      ),
      [
        'policy.yaml: grants[0].agents[0].encryption_jwk: contains a private key part',
        'policy.yaml: grants[0].agents[0].dpop_jwk: must be EC P-256 or OKP Ed25519',
        'policy.yaml: grants[0].agents[1].dpop_jwk: is the same key as encryption_jwk: use two different keys',
        'policy.yaml: grants[0].agents[3].id: "Bad.Id" is not a valid agent name (lowercase letters, digits and inner dashes, 1 to 63)',
        'policy.yaml: grants[0].agents[3].encryption_jwk: expected record, got string',
        'policy.yaml: grants[0].agents[2].id: duplicate agent id (also agents[0])',
      ],
    );
  });

  it('refuses a grant its own rules do not allow, naming the grant and the reason', () => {
    assert.deepEqual(
      problemsAfter(
        withGrants(
          grant({ name: 'too-wide', scopes: ['read:metrics', 'write:config'] }),
          grant({ name: 'too-long', token_ttl: '1h' }),
          grant({ name: 'wrong-env', env: 'staging' }),
          grant({ name: 'nobody', sub: 'idp:corp:mallory' }),
          grant({ name: 'short', token_ttl: '5m', expires_in: '5m' }),
        ),
      ),
      [
        'policy.yaml: grants[0]: grant "too-wide" is not allowed: rule deployers-dashboards does not allow scope write:config in prod',
        'policy.yaml: grants[1]: grant "too-long" is not allowed: ttl 3600s exceeds rule deployers-dashboards max_ttl (900s)',
        'policy.yaml: grants[2]: grant "wrong-env" is not allowed: no rule lets idp:corp:alice delegate to dashboards in staging',
        'policy.yaml: grants[3]: grant "nobody" is not allowed: no rule lets idp:corp:mallory delegate to dashboards in prod',
        'policy.yaml: grants[4].expires_in: 300s does not outlive one token (token_ttl 300s)',
      ],
    );
  });

  it('takes an attest naming a kubernetes IdP, a namespace, a service account and a compiled when', () => {
    const k8s = {
      namespace: 'k8s',
      profile: 'kubernetes',
      issuer: 'https://kubernetes.default.svc',
      audience: 'aoa',
    };
    const attest = { idp: 'k8s', namespace: 'dashboards', service_account: 'dashboards' };
    const doc = baseDocument();
    doc.idps.push(k8s);
    doc.grants = [
      grant({ attest: { ...attest, when: 'claims["kubernetes.io"].pod.name.startsWith("web-")' } }),
    ];
    const loaded = parsePolicy(stringify(doc), 'policy.yaml').grants[0]?.attest;
    assert.deepEqual(
      [loaded?.idp, loaded?.namespace, loaded?.serviceAccount],
      ['k8s', 'dashboards', 'dashboards'],
    );
    assert.equal(loaded?.when?.source, 'claims["kubernetes.io"].pod.name.startsWith("web-")');
    assert.equal(parsePolicy(stringify(baseDocument()), 'policy.yaml').grants[0]?.attest, undefined);
    const problems = (entry: Record<string, unknown>, idps: unknown[] = [k8s]) =>
      problemsAfter((d) => {
        d.idps.push(...idps);
        d.grants = [grant({ attest: entry })];
      });
    assert.deepEqual(problems({ ...attest, idp: 'corp' }, []), [
      'policy.yaml: grants[0].attest.idp: idp corp is not of profile kubernetes: pods attest with service-account tokens',
    ]);
    assert.deepEqual(problems({ ...attest, idp: 'nope' }), [
      'policy.yaml: grants[0].attest.idp: no idp has namespace "nope"',
    ]);
    assert.match(
      problems({ ...attest, when: 'claims.x ==' })[0] ?? '',
      /^policy\.yaml: grants\[0\]\.attest\.when: column \d+: /,
    );
    assert.match(
      problems({ ...attest, service_account: 'Bad_Name' })[0] ?? '',
      /grants\[0\]\.attest\.service_account: must be a Kubernetes service account name/,
    );
  });
});
