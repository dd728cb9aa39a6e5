// What CEL `when` conditions cost a Delegate. The policy decision runs in-process twice in the same
// run, on the bench policy as it is (the peer) and with a condition on the role and on the rule the
// request meets (both hold, so every call evaluates both), alternating in rounds so drift hits both
// alike. The added microseconds are set against the issuer's server CPU per Delegate measured by
// bench/delegate.bench.ts (bench/results/delegate.json). Target: conditions add < 5% of a Delegate.
// Also reports what compiling the conditions adds to a policy load.
//
//   npx tsx bench/delegate-conditions.bench.ts [--quick]      (npm run bench -- delegate runs it too)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DelegationRequest, Policy } from '@aoa/policy';
import { decide, parsePolicy } from '@aoa/policy';
import { makeKey } from '../test/support/oauth.js';
import { testPolicy } from '../test/support/system.js';
import { pinSelf, REPO_ROOT } from './lib/procs.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' } } });
const ROUNDS = args.quick ? 5 : 25;
const CALLS_PER_ROUND = args.quick ? 5_000 : 20_000;
const LOADS = args.quick ? 10 : 40;
const LIMIT_SHARE = 0.05;
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

const log = (message: string) => console.error(`[bench] ${message}`);

/** The conditions real policies pin: subject and group on the role; environment, scopes, issuer on the rule. */
const ROLE_WHEN = `claims.sub == "argocd-sa" && "platform" in claims.groups`;
const RULE_WHEN = `request.env == "prod" && request.scopes.all(s, s.startsWith("read:") || s.startsWith("write:")) && claims.iss.startsWith("https://")`;

function withConditions(policy: string): string {
  const role = '  - name: deployers\n    members:\n      groups: ["corp:platform"]\n';
  const rule = '    may_delegate: true\n    max_depth: 2\n  - name: ci-jobs\n';
  if (!policy.includes(role) || !policy.includes(rule)) {
    throw new Error('bench policy: the deployers role or rule is not where this bench expects it');
  }
  return policy
    .replace(role, `${role}    when: '${ROLE_WHEN}'\n`)
    .replace(rule, `    may_delegate: true\n    max_depth: 2\n    when: '${RULE_WHEN}'\n  - name: ci-jobs\n`);
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

/** µs per decide() over one round; throws unless every call allows by the expected rule. */
function round(policy: Policy, request: DelegationRequest): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < CALLS_PER_ROUND; i++) {
    const decision = decide(policy, request);
    if (!decision.allow || decision.rule !== 'deployers-dashboards') {
      throw new Error(`bench request refused: ${JSON.stringify(decision)}`);
    }
  }
  return Number(process.hrtime.bigint() - start) / 1000 / CALLS_PER_ROUND;
}

function loadMs(text: string): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < LOADS; i++) parsePolicy(text, 'policy.yaml');
  return Number(process.hrtime.bigint() - start) / 1e6 / LOADS;
}

/** The issuer's lowest server CPU per Delegate over the concurrencies of the last delegate bench. */
function delegateCpuUs(): { us: number; from: string } {
  const path = join(RESULTS_DIR, 'delegate.json');
  const report = JSON.parse(readFileSync(path, 'utf8')) as {
    meta: { date: string; commit: string };
    summary: Array<{ targets: { delegate: { serverCpuUsPerCall: number } } }>;
  };
  const us = Math.min(...report.summary.map((s) => s.targets.delegate.serverCpuUsPerCall));
  return { us, from: `bench/results/delegate.json (${report.meta.commit}, ${report.meta.date})` };
}

pinSelf(1);
const keys = { argocd: await makeKey(), ci: await makeKey('ES256'), admin: await makeKey() };
const plainText = testPolicy('https://idp.example.com', keys);
const celText = withConditions(plainText);
const plain = parsePolicy(plainText, 'policy.yaml');
const cel = parsePolicy(celText, 'policy.yaml');
const nowSeconds = Math.floor(Date.now() / 1000);
const request: DelegationRequest = {
  principal: { kind: 'idp', idp: 'corp', sub: 'argocd-sa', groups: ['platform'] },
  child: 'dashboards',
  env: 'prod',
  scopes: ['read:metrics', 'write:dashboards'],
  audience: [],
  ttlSeconds: 600,
  holderJkt: 'bench-jkt',
  parent: undefined,
  nowSeconds,
  claims: {
    iss: 'https://idp.example.com',
    sub: 'argocd-sa',
    aud: 'https://aoa.test',
    groups: ['platform'],
    iat: nowSeconds,
    exp: nowSeconds + 300,
  },
};

log(`warming up; then ${ROUNDS} rounds × ${CALLS_PER_ROUND} decisions per policy`);
/** Measures both, `rounds` times, alternating which goes first so drift hits both alike. */
function interleaved<T>(rounds: number, plainRun: () => T, celRun: () => T): { plain: T[]; cel: T[] } {
  const out = { plain: [] as T[], cel: [] as T[] };
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      out.plain.push(plainRun());
      out.cel.push(celRun());
    } else {
      out.cel.push(celRun());
      out.plain.push(plainRun());
    }
  }
  return out;
}
interleaved(
  3,
  () => round(plain, request),
  () => round(cel, request),
);
const decisions = interleaved(
  ROUNDS,
  () => round(plain, request),
  () => round(cel, request),
);
const loads = interleaved(
  ROUNDS + 1,
  () => loadMs(plainText),
  () => loadMs(celText),
);
const plainLoad = median(loads.plain.slice(1));
const celLoad = median(loads.cel.slice(1));

const decidePlain = median(decisions.plain);
const decideCel = median(decisions.cel);
const addedUs = decideCel - decidePlain;
const delegate = delegateCpuUs();
const share = addedUs / delegate.us;
const pass = share < LIMIT_SHARE;
const results = {
  meta: {
    date: new Date().toISOString(),
    node: process.version,
    rounds: ROUNDS,
    callsPerRound: CALLS_PER_ROUND,
  },
  conditions: { role: ROLE_WHEN, rule: RULE_WHEN },
  decideUs: { plain: decidePlain, cel: decideCel, added: addedUs, ratio: decideCel / decidePlain },
  policyLoadMs: { plain: plainLoad, cel: celLoad, added: celLoad - plainLoad },
  delegateServerCpuUs: delegate,
  check: {
    name: `CEL conditions add < ${LIMIT_SHARE * 100}% of a Delegate's server CPU`,
    pass,
    detail: `${addedUs.toFixed(2)} µs of ${delegate.us.toFixed(0)} µs = ${(share * 100).toFixed(2)}%`,
  },
};
const fmt = (n: number) => n.toFixed(2);
const md = `# CEL claim conditions: cost per decision

${results.meta.date}, Node ${process.version}, pinned to core 1, ${ROUNDS} rounds × ${CALLS_PER_ROUND} decisions, medians.
\`npm run bench -- delegate-conditions\`

Role condition: \`${ROLE_WHEN}\`
Rule condition: \`${RULE_WHEN}\`

| | without conditions (peer) | with both conditions | added | ratio |
|---|---|---|---|---|
| decide(), µs per call | ${fmt(decidePlain)} | ${fmt(decideCel)} | ${fmt(addedUs)} | ${fmt(decideCel / decidePlain)}× |
| policy load (parse + compile), ms | ${fmt(plainLoad)} | ${fmt(celLoad)} | ${fmt(celLoad - plainLoad)} | ${fmt(celLoad / plainLoad)}× |

Against a Delegate: the issuer spends ${delegate.us.toFixed(0)} µs of server CPU per call at best
(${delegate.from}); the conditions add **${(share * 100).toFixed(2)}%** of that.

| check | result | detail |
|---|---|---|
| ${results.check.name} | ${pass ? 'pass' : 'FAIL'} | ${results.check.detail} |
`;
writeFileSync(join(RESULTS_DIR, 'delegate-conditions.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(RESULTS_DIR, 'delegate-conditions.md'), md);
process.stdout.write(md);
process.exit(pass ? 0 : 1);
