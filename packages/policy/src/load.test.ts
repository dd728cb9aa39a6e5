import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { PolicyError } from './errors.js';
import { loadPolicyFile, parsePolicy } from './load.js';
import { findClientByCertificate } from './lookup.js';
import {
  baseDocument,
  EXAMPLE_PATH,
  examplePolicy,
  exampleText,
  privateEd25519Jwk,
  problemsAfter,
  problemsOf,
  publicJwk,
} from './test-helpers.js';

const only = (change: Parameters<typeof problemsAfter>[0], ...expected: string[]) =>
  assert.deepEqual(problemsAfter(change), expected);

describe('loading a policy', () => {
  it('loads the example with defaults filled in, keys imported and the hash of its bytes', () => {
    const policy = examplePolicy();
    assert.equal(policy.hash, createHash('sha256').update(exampleText()).digest('hex'));
    assert.equal(policy.path, EXAMPLE_PATH);
    assert.equal(policy.limits.maxTokenTtlSeconds, 3600);
    assert.deepEqual(
      policy.rules.map((rule) => [
        rule.name,
        rule.maxTtlSeconds,
        rule.mayDelegate,
        rule.maxDepth,
        rule.bearerAllowed,
      ]),
      [
        ['deployers-dashboards', 900, true, 2, false],
        ['deployers-staging', 1800, false, 0, true],
        ['dashboards-jobs', 600, true, 1, false],
      ],
    );
    const [argocd, admin] = policy.clients;
    assert.equal(argocd?.keys[0]?.key.asymmetricKeyType, 'ed25519');
    assert.equal(argocd?.keys[0]?.kid, 'k1');
    assert.equal(argocd?.admin, false);
    assert.equal(admin?.admin, true);
    assert.equal(admin?.keys[0]?.key.asymmetricKeyType, 'ec');
    assert.deepEqual(admin?.mayPresent, [{ idp: 'corp', subjects: [], groups: ['sre'] }]);
    assert.deepEqual(policy.idps[0]?.groupsClaims, ['groups']);
    assert.ok(Object.isFrozen(policy.rules[0]?.scopes.prod));
    assert.deepEqual(
      policy.grants.map((grant) => [grant.name, grant.sub, grant.tokenTtlSeconds, grant.expiresInSeconds]),
      [['dashboards-prod', 'idp:corp:alice', 60, 30 * 86400]],
    );
  });

  it('defaults groups_claim, algorithms, limits and a missing max_ttl', () => {
    const doc = baseDocument();
    delete doc.limits;
    delete doc.rules[0].max_ttl;
    const policy = parsePolicy(stringify(doc), 'policy.yaml');
    assert.deepEqual(policy.idps[0]?.algorithms, ['RS256', 'ES256', 'EdDSA']);
    assert.deepEqual(policy.idps[0]?.groupsClaims, ['groups']);
    assert.equal(policy.idps[0]?.clockSkewSeconds, 5);
    assert.equal(policy.limits.maxTokenTtlSeconds, 3600);
    assert.equal(policy.rules[0]?.maxTtlSeconds, 3600);
  });

  it('accepts durations as plain seconds and P-256 and RSA-2048 keys', () => {
    const doc = baseDocument();
    doc.limits.max_token_ttl = 600;
    doc.rules[0].max_ttl = 60;
    doc.clients[0].jwks.push(
      { ...publicJwk('p256'), kid: 'k2' },
      { ...publicJwk('rsa2048'), kid: 'k3', alg: 'PS256' },
    );
    const policy = parsePolicy(stringify(doc), 'policy.yaml');
    assert.equal(policy.rules[0]?.maxTtlSeconds, 60);
    assert.deepEqual(
      policy.clients[0]?.keys.map((key) => [key.kid, key.key.asymmetricKeyType]),
      [
        ['k1', 'ed25519'],
        ['k2', 'ec'],
        ['k3', 'rsa'],
      ],
    );
  });

  it('reads an IdP clock_skew from 0 to 5m, and refuses a longer or malformed one', () => {
    const skewOf = (clock_skew: unknown) => {
      const doc = baseDocument();
      doc.idps[0].clock_skew = clock_skew;
      return parsePolicy(stringify(doc), 'policy.yaml').idps[0]?.clockSkewSeconds;
    };
    assert.deepEqual([skewOf(0), skewOf('30s'), skewOf('5m')], [0, 30, 300]);
    const problems = (clock_skew: unknown) => {
      const doc = baseDocument();
      doc.idps[0].clock_skew = clock_skew;
      return problemsOf(stringify(doc));
    };
    assert.deepEqual(problems('6m'), [
      'policy.yaml: idps[0].clock_skew: "6m" is longer than 300s: fix the clocks instead',
    ]);
    assert.match(problems('soon')[0] ?? '', /^policy\.yaml: idps\[0\]\.clock_skew: "soon": /);
  });

  it('reads a file from disk and reports an unreadable one by its base name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aoa-policy-'));
    try {
      await writeFile(join(dir, 'p.yaml'), exampleText());
      assert.equal((await loadPolicyFile(join(dir, 'p.yaml'))).rules.length, 3);
      await assert.rejects(loadPolicyFile(join(dir, 'missing.yaml')), (error: unknown) => {
        assert.ok(error instanceof PolicyError);
        assert.deepEqual(error.problems, ['missing.yaml: (file): cannot read the policy file (ENOENT)']);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe('a refused policy', () => {
  it('reports YAML syntax errors with their line and without the text around them', () => {
    const problems = problemsOf('version: 1\napps: [\n  { name: a\nrules: []\n');
    assert.ok(problems.length > 0);
    for (const problem of problems) {
      assert.match(problem, /^policy\.yaml: line \d+, column \d+: YAML syntax: /);
      assert.ok(!problem.includes('\n'));
    }
    assert.deepEqual(problemsOf('version: 1\nversion: 1\n'), [
      'policy.yaml: line 2, column 1: YAML syntax: Map keys must be unique',
    ]);
  });

  it('refuses a document that is not a mapping, or of another version', () => {
    assert.deepEqual(problemsOf('- 1\n'), [
      'policy.yaml: (root): must be a mapping with the keys version, limits, idps, clients, roles, apps, rules, grants',
    ]);
    only((doc) => delete doc.version, 'policy.yaml: version: required');
    only((doc) => (doc.version = 2), 'policy.yaml: version: unsupported version "2": expected 1');
  });

  it('refuses unknown keys at every level', () => {
    only((doc) => (doc.colour = 'blue'), 'policy.yaml: colour: unknown key');
    only((doc) => (doc.limits.max_ttl = '1h'), 'policy.yaml: limits.max_ttl: unknown key');
    only((doc) => (doc.idps[0].group_claim = 'g'), 'policy.yaml: idps[0].group_claim: unknown key');
    only((doc) => (doc.roles[0].members.users = []), 'policy.yaml: roles[0].members.users: unknown key');
    only(
      (doc) => (doc.clients[0].may_present[0].sub = 'x'),
      'policy.yaml: clients[0].may_present[0].sub: unknown key',
    );
    only((doc) => (doc.rules[0].ttl = '1m'), 'policy.yaml: rules[0].ttl: unknown key');
    only((doc) => (doc.clients[0].jwks[0].foo = 'x'), 'policy.yaml: clients[0].jwks[0].foo: unknown key');
  });

  it('refuses bad types and missing fields', () => {
    only(
      (doc) => (doc.rules[0].may_delegate = 'yes'),
      'policy.yaml: rules[0].may_delegate: expected boolean, got string',
    );
    only((doc) => (doc.apps = { dashboards: {} }), 'policy.yaml: apps: must be a list');
    only((doc) => delete doc.apps[1].audiences, 'policy.yaml: apps[1].audiences: required');
    only((doc) => (doc.rules[0].max_depth = 1.5), 'policy.yaml: rules[0].max_depth: must be a whole number');
    only(
      (doc) => (doc.rules[0].max_ttl = true),
      'policy.yaml: rules[0].max_ttl: must be a duration like 15m or a whole number of seconds',
    );
    only(
      (doc) => (doc.rules[0].max_ttl = 'soon'),
      'policy.yaml: rules[0].max_ttl: "soon": expected a duration like 90s, 15m, 2h or 30d',
    );
  });

  it('refuses names outside the name pattern', () => {
    const pattern = 'lowercase letters, digits and inner dashes, 1 to 63';
    only(
      (doc) => (doc.idps[0].namespace = 'Corp'),
      `policy.yaml: idps[0].namespace: "Corp" is not a valid idp namespace name (${pattern})`,
      'policy.yaml: clients[0].may_present[0].idp: no idp has namespace "corp"',
      'policy.yaml: roles[0].members.groups[0]: no idp has namespace "corp"',
      'policy.yaml: roles[0].members.subjects[0]: no idp has namespace "corp"',
    );
    only(
      (doc) => (doc.apps[1].name = 'jobs.v2'),
      `policy.yaml: apps[1].name: "jobs.v2" is not a valid app name (${pattern})`,
    );
    only(
      (doc) => (doc.apps[1].environments = ['prod', '-x']),
      `policy.yaml: apps[1].environments[1]: "-x" is not a valid environment name (${pattern})`,
    );
    only(
      (doc) => (doc.rules[0].name = 'a'.repeat(64)),
      `policy.yaml: rules[0].name: "${'a'.repeat(64)}" is not a valid rule name (${pattern})`,
    );
    only(
      (doc) => (doc.roles[0].name = 'Deployers'),
      `policy.yaml: roles[0].name: "Deployers" is not a valid role name (${pattern})`,
      'policy.yaml: rules[0].role: no role is named "deployers"',
    );
    only(
      (doc) => (doc.clients[0].id = 'argo_cd'),
      `policy.yaml: clients[0].id: "argo_cd" is not a valid client name (${pattern})`,
      'policy.yaml: roles[0].members.clients[0]: no client has id "argocd"',
    );
  });

  it('refuses duplicate names, namespaces, issuers and kids', () => {
    only(
      (doc) => doc.apps.push({ ...doc.apps[0] }),
      'policy.yaml: apps[2].name: duplicate app name "dashboards" (also apps[0])',
    );
    only(
      (doc) => doc.rules.push({ ...doc.rules[0] }),
      'policy.yaml: rules[1].name: duplicate rule name "deployers-dashboards" (also rules[0])',
    );
    only(
      (doc) => doc.roles.push({ name: 'deployers' }),
      'policy.yaml: roles[1].name: duplicate role name "deployers" (also roles[0])',
    );
    only(
      (doc) => doc.clients.push({ ...doc.clients[0] }),
      'policy.yaml: clients[1].id: duplicate client id "argocd" (also clients[0])',
    );
    only(
      (doc) => doc.idps.push({ ...doc.idps[0], issuer: 'https://other.example.com' }),
      'policy.yaml: idps[1].namespace: duplicate idp namespace "corp" (also idps[0])',
    );
    only(
      (doc) => doc.idps.push({ ...doc.idps[0], namespace: 'other' }),
      'policy.yaml: idps[1].issuer: issuer is already trusted as idps[0]',
    );
    only(
      (doc) => doc.clients[0].jwks.push({ ...publicJwk('ed25519'), kid: 'k1' }),
      'policy.yaml: clients[0].jwks[1].kid: duplicate kid (also jwks[0])',
    );
    only(
      (doc) => doc.apps[0].environments.push('prod'),
      'policy.yaml: apps[0].environments[2]: environment "prod" is listed twice',
    );
  });

  it('refuses references to what the policy does not define', () => {
    only((doc) => (doc.rules[0].role = 'nobody'), 'policy.yaml: rules[0].role: no role is named "nobody"');
    only(
      (doc) => doc.rules[0].children.push('ghost'),
      'policy.yaml: rules[0].children[1]: no app is named "ghost"',
    );
    only((doc) => {
      doc.rules[0].children.push('jobs');
      doc.rules[0].environments = ['prod', 'staging'];
      doc.rules[0].scopes.staging = ['x'];
    }, 'policy.yaml: rules[0].environments[1]: app jobs has no environment "staging"');
    only(
      (doc) => (doc.clients[0].may_present[0].idp = 'other'),
      'policy.yaml: clients[0].may_present[0].idp: no idp has namespace "other"',
    );
    only(
      (doc) => doc.roles[0].members.groups.push('other:ops'),
      'policy.yaml: roles[0].members.groups[1]: no idp has namespace "other"',
    );
    only(
      (doc) => doc.roles[0].members.subjects.push('idp:other:bob'),
      'policy.yaml: roles[0].members.subjects[1]: no idp has namespace "other"',
    );
    only(
      (doc) => doc.roles[0].members.clients.push('flux'),
      'policy.yaml: roles[0].members.clients[1]: no client has id "flux"',
    );
    only(
      (doc) => doc.roles[0].members.apps.push('ghost'),
      'policy.yaml: roles[0].members.apps[1]: no app is named "ghost"',
    );
    only(
      (doc) => doc.roles[0].members.groups.push('platform'),
      'policy.yaml: roles[0].members.groups[1]: group "platform" must read <idp namespace>:<group>',
    );
    only(
      (doc) => doc.roles[0].members.subjects.push('corp:bob'),
      'policy.yaml: roles[0].members.subjects[1]: subject "corp:bob" must read idp:<idp namespace>:<sub>',
    );
  });

  it('refuses rules that contradict themselves or the limits', () => {
    only(
      (doc) => (doc.rules[0].scopes.staging = ['read:metrics']),
      `policy.yaml: rules[0].scopes.staging: environment "staging" is not one of the rule's environments`,
    );
    only(
      (doc) => doc.rules[0].environments.push('staging'),
      'policy.yaml: rules[0].scopes: environment staging has no scopes',
    );
    only(
      (doc) => (doc.rules[0].scopes.prod = []),
      'policy.yaml: rules[0].scopes.prod: environment prod has no scopes',
    );
    only(
      (doc) => (doc.rules[0].max_ttl = '2h'),
      'policy.yaml: rules[0].max_ttl: 7200s is longer than limits.max_token_ttl (3600s)',
    );
    only(
      (doc) => (doc.rules[0].max_ttl = '500ms'),
      'policy.yaml: rules[0].max_ttl: "500ms" is shorter than 1s',
    );
    only((doc) => (doc.rules[0].max_ttl = 0), 'policy.yaml: rules[0].max_ttl: "0" is shorter than 1s');
    only(
      (doc) => (doc.rules[0].may_delegate = false),
      'policy.yaml: rules[0].max_depth: is 2 but may_delegate is false: set may_delegate or max_depth 0',
    );
    only(
      (doc) => (doc.rules[0].max_depth = 0),
      'policy.yaml: rules[0].may_delegate: is true but max_depth is 0, so no token could ever sub-delegate',
    );
    only(
      (doc) => (doc.apps[1].audiences = []),
      'policy.yaml: apps[1].audiences: an app needs at least one audience',
    );
    only(
      (doc) => doc.rules[0].scopes.prod.push('a b'),
      'policy.yaml: rules[0].scopes.prod[1]: scope "a b" is not a valid RFC 6749 scope token',
    );
    only(
      (doc) => doc.rules[0].scopes.prod.push('say"hi"'),
      'policy.yaml: rules[0].scopes.prod[1]: scope "say\\"hi\\"" is not a valid RFC 6749 scope token',
    );
  });

  it('refuses IdPs that are not absolute https URLs or that allow none or HS*', () => {
    only(
      (doc) => (doc.idps[0].issuer = 'http://idp.example.com'),
      'policy.yaml: idps[0].issuer: "http://idp.example.com" must use https (http only for loopback hosts)',
    );
    only(
      (doc) => (doc.idps[0].issuer = 'idp.example.com'),
      'policy.yaml: idps[0].issuer: "idp.example.com" is not an absolute URL',
    );
    only(
      (doc) => (doc.idps[0].algorithms = ['RS256', 'none']),
      'policy.yaml: idps[0].algorithms[1]: algorithm "none" is refused: IdP tokens must be signed with an asymmetric key',
    );
    only(
      (doc) => (doc.idps[0].algorithms = ['HS256']),
      'policy.yaml: idps[0].algorithms[0]: algorithm "HS256" is refused: IdP tokens must be signed with an asymmetric key',
    );
    for (const issuer of ['http://localhost:8080', 'http://127.0.0.1:9000/realms/x', 'http://[::1]:4000']) {
      const doc = baseDocument();
      doc.idps[0].issuer = issuer;
      assert.equal(parsePolicy(stringify(doc), 'policy.yaml').idps[0]?.issuer, issuer);
    }
  });

  it('refuses private, symmetric, weak and malformed client keys', () => {
    only(
      (doc) => (doc.clients[0].jwks[0] = privateEd25519Jwk()),
      'policy.yaml: clients[0].jwks[0].d: private key member "d" is not allowed: register the public key only',
    );
    only(
      (doc) => (doc.clients[0].jwks[0] = { kty: 'oct', k: 'c2VjcmV0' }),
      'policy.yaml: clients[0].jwks[0].k: private key member "k" is not allowed: register the public key only',
      'policy.yaml: clients[0].jwks[0].kty: symmetric keys (kty oct) are not allowed: register a public key',
    );
    only(
      (doc) => (doc.clients[0].jwks[0] = publicJwk('rsa1024')),
      'policy.yaml: clients[0].jwks[0].n: RSA key has 1024 bits; at least 2048 are required',
    );
    only(
      (doc) => (doc.clients[0].jwks[0] = publicJwk('p384')),
      'policy.yaml: clients[0].jwks[0].crv: unsupported curve "P-384": EC keys must be P-256',
    );
    only(
      (doc) => (doc.clients[0].jwks[0].x = 'AAAA'),
      'policy.yaml: clients[0].jwks[0]: invalid OKP public key: Invalid JWK data',
    );
    only(
      (doc) => (doc.clients[0].jwks[0].alg = 'RS256'),
      'policy.yaml: clients[0].jwks[0].alg: "RS256" does not fit kty OKP: use EdDSA, Ed25519',
    );
    only(
      (doc) => (doc.clients[0].jwks = []),
      'policy.yaml: clients[0].jwks: a client needs at least one public key',
    );
  });

  it('reports every problem in one pass', () => {
    const problems = problemsAfter((doc) => {
      doc.apps[0].name = 'Dash';
      doc.rules[0].scopes.prod.push('a b');
      doc.rules[0].max_ttl = '2h';
      doc.clients[0].jwks[0].d = 'x';
    });
    assert.deepEqual(
      problems,
      [
        'policy.yaml: clients[0].jwks[0].d: private key member "d" is not allowed: register the public key only',
        'policy.yaml: roles[0].members.apps[0]: no app is named "dashboards"',
        'policy.yaml: apps[0].name: "Dash" is not a valid app name (lowercase letters, digits and inner dashes, 1 to 63)',
        'policy.yaml: rules[0].scopes.prod[1]: scope "a b" is not a valid RFC 6749 scope token',
        'policy.yaml: rules[0].children[0]: no app is named "dashboards"',
        'policy.yaml: rules[0].max_ttl: 7200s is longer than limits.max_token_ttl (3600s)',
      ].sort((a, b) => problems.indexOf(a) - problems.indexOf(b)),
    );
  });

  it('keeps problems short whatever the input', () => {
    const long = 'x'.repeat(10_000);
    const problems = problemsAfter((doc) => {
      doc.rules[0].scopes.prod.push(`${long} y`);
      doc.apps[0].audiences.push(long, long);
    });
    for (const problem of problems) assert.ok(problem.length < 200, problem);
    const error = (() => {
      try {
        parsePolicy(`version: 1\napps: [${'{ name: "A" }, '.repeat(500)}]\n`, 'policy.yaml');
      } catch (e) {
        return e as PolicyError;
      }
      throw new Error('expected a refusal');
    })();
    assert.ok(error.problems.length >= 1500);
    assert.ok(error.message.length < 4000);
    assert.match(error.message, /\.\.\. and \d+ more$/);
  });
});

describe('clients authenticated by a TLS client certificate (tls_client_auth_san_uri)', () => {
  const SPIFFE = 'spiffe://example.org/ns/argocd/sa/controller';

  it('registers a client by its certificate URI alone, or beside its keys, and finds it by that URI', () => {
    const doc = baseDocument();
    doc.clients[0].tls_client_auth_san_uri = SPIFFE;
    doc.clients.push({ id: 'ops', tls_client_auth_san_uri: 'spiffe://example.org/ns/ops/sa/admin' });
    const policy = parsePolicy(stringify(doc), 'policy.yaml');
    assert.deepEqual(
      policy.clients.map((c) => [c.id, c.tlsClientAuthSanUri, c.keys.length]),
      [
        ['argocd', SPIFFE, 1],
        ['ops', 'spiffe://example.org/ns/ops/sa/admin', 0],
      ],
    );
    assert.equal(findClientByCertificate(policy, ['spiffe://other', SPIFFE])?.id, 'argocd');
    assert.equal(findClientByCertificate(policy, ['spiffe://example.org/ns/argocd']), undefined);
    assert.equal(
      findClientByCertificate(policy, [SPIFFE, 'spiffe://example.org/ns/ops/sa/admin']),
      undefined,
      'a certificate naming two clients authenticates neither',
    );
  });

  it('refuses a URI taken twice, a value that is not an absolute URI, and a certificate beside federated', () => {
    only((doc) => {
      doc.clients[0].tls_client_auth_san_uri = SPIFFE;
      doc.clients.push({ id: 'ops', tls_client_auth_san_uri: SPIFFE });
    }, 'policy.yaml: clients[1].tls_client_auth_san_uri: this certificate already authenticates clients[0]');
    only(
      (doc) => (doc.clients[0].tls_client_auth_san_uri = 'argocd controller'),
      'policy.yaml: clients[0].tls_client_auth_san_uri: "argocd controller" is not an absolute URI (e.g. spiffe://example.org/ns/argocd/sa/controller)',
    );
    only((doc) => {
      delete doc.clients[0].jwks;
      doc.clients[0].tls_client_auth_san_uri = SPIFFE;
      doc.clients[0].federated = { idp: 'corp', when: 'true' };
    }, 'policy.yaml: clients[0]: a client authenticates with jwks (its own keys) and/or tls_client_auth_san_uri (its certificate), or with federated (a workload token) alone');
  });
});
