import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { CONDITION_LIMITS, type ConditionInput, compileCondition } from './conditions.js';
import { parsePolicy } from './load.js';
import { baseDocument, problemsAfter } from './test-helpers.js';

const request = { child: 'dashboards', env: 'prod', scopes: ['read:metrics'], audience: [] };
const github = {
  repository: 'octo-org/octo-repo',
  repository_owner_id: '1234567',
  repository_id: '7654321',
  ref: 'refs/heads/main',
  run_attempt: 1,
};

function evaluate(source: string, claims: Record<string, unknown>, req: ConditionInput['request'] = request) {
  const compiled = compileCondition(source);
  assert.ok(
    'condition' in compiled,
    `expected ${source} to compile: ${'problem' in compiled ? compiled.problem : ''}`,
  );
  return compiled.condition.evaluate({ claims, request: req });
}

const problemOf = (source: string) => {
  const compiled = compileCondition(source);
  assert.ok('problem' in compiled, `expected ${source} to be refused`);
  return compiled.problem;
};

describe('a claim condition', () => {
  it('pins a GitHub repository by its owner and repository ids and its ref', () => {
    const pin =
      'claims.repository_owner_id == "1234567" && claims.repository_id == "7654321" && claims.ref == "refs/heads/main"';
    assert.deepEqual(evaluate(pin, github), { holds: true });
    assert.deepEqual(evaluate(pin, { ...github, repository_id: '1' }), { holds: false });
    assert.deepEqual(evaluate(pin, { ...github, ref: 'refs/heads/dev' }), { holds: false });
  });

  it('reads nested Kubernetes claims, Entra role lists, numbers and the request', () => {
    const pod = {
      'kubernetes.io': { namespace: 'argocd', serviceaccount: { name: 'argocd-application-controller' } },
    };
    assert.equal(
      evaluate('claims["kubernetes.io"].serviceaccount.name == "argocd-application-controller"', pod).holds,
      true,
    );
    assert.equal(
      evaluate('claims.roles.exists(r, r == "Deployer")', { roles: ['Reader', 'Deployer'] }).holds,
      true,
    );
    assert.equal(evaluate('claims.roles.exists(r, r == "Deployer")', { roles: ['Reader'] }).holds, false);
    assert.equal(evaluate('claims.run_attempt == 1', github).holds, true);
    assert.equal(evaluate('request.env == "prod" && "read:metrics" in request.scopes', {}).holds, true);
    assert.equal(evaluate('request.env == "prod"', {}, { ...request, env: 'staging' }).holds, false);
  });

  it('does not hold when it reads a claim the token lacks, and says so without claim values', () => {
    const outcome = evaluate('claims.environment == "prod"', github);
    assert.equal(outcome.holds, false);
    assert.match(outcome.error ?? '', /environment/);
    assert.ok(!(outcome.error ?? '').includes('octo'));
    assert.deepEqual(evaluate('has(claims.environment) && claims.environment == "prod"', github), {
      holds: false,
    });
  });

  it('does not hold when a dyn expression turns out not to be a bool', () => {
    assert.deepEqual(evaluate('claims.ref', github), {
      holds: false,
      error: 'evaluated to string, not a bool',
    });
  });
});

describe('a condition refused at load', () => {
  it('names the column of a typo, a syntax error and a non-bool expression', () => {
    assert.match(problemOf('claim.ref == "x"'), /^column 1: Unknown variable: claim$/);
    assert.match(problemOf('claims.ref == '), /^column 15: /);
    assert.match(problemOf('request.envx == "prod"'), /^column 9: No such key: envx$/);
    assert.equal(problemOf('"refs/heads/main"'), 'must be a bool expression, is string');
  });

  it('refuses what could cost too much: regular expressions, nested comprehensions, huge expressions', () => {
    assert.match(problemOf('claims.ref.matches("^refs/(a+)+$")'), /matches\(\) is refused/);
    assert.match(
      problemOf('claims.a.exists(x, claims.b.exists(y, x == y))'),
      /^column \d+: exists\(\) inside another comprehension/,
    );
    assert.match(problemOf(Array.from({ length: 90 }, () => 'claims.c == "v"').join(' && ')), /maxAstNodes/);
    assert.equal(
      problemOf(`claims.x == "${'a'.repeat(CONDITION_LIMITS.maxSourceLength)}"`),
      `longer than ${CONDITION_LIMITS.maxSourceLength} characters`,
    );
  });

  it('is reported against the policy entry that holds it', () => {
    assert.deepEqual(
      problemsAfter((doc) => {
        doc.roles[0].when = 'claim.ref == "x"';
      }),
      ['policy.yaml: roles[0].when: role deployers: column 1: Unknown variable: claim'],
    );
    assert.deepEqual(
      problemsAfter((doc) => {
        doc.rules[0].when = '1 + 1';
      }),
      ['policy.yaml: rules[0].when: rule deployers-dashboards: must be a bool expression, is int'],
    );
    const doc = baseDocument();
    doc.rules[0].when = 'claims.ref == "refs/heads/main"';
    assert.equal(
      parsePolicy(stringify(doc), 'policy.yaml').rules[0]?.when?.source,
      'claims.ref == "refs/heads/main"',
    );
  });
});
