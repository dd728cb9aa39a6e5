// What the issuer's signing algorithm costs per token: signing an aoa access token as the issuer does
// (`signCompact`) and verifying it as every verifier does (`verifyCompactJws`), Ed25519 (EdDSA, the
// default) beside P-256 (ES256, `AOA_ISSUER_SIGNING_ALG=ES256`), in the same process on one pinned
// core. The ways alternate window by window, medians kept. Writes bench/results/signing-alg.md + .json.
//
//   npx tsx bench/signing-alg.bench.ts [--quick]
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomId, type SigningKey, signCompact, verifyCompactJws } from '@aoa/core';
import { median } from './lib/load.js';
import { pinSelf, REPO_ROOT } from './lib/procs.js';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const WINDOW_MS = args.quick ? 200 : 1000;
const WINDOWS = args.quick ? 2 : 5;
const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

type Alg = SigningKey['alg'];
const ALGS: Alg[] = ['EdDSA', 'ES256'];

function keyOf(alg: Alg): { signing: SigningKey; publicKey: KeyObject } {
  const { privateKey, publicKey } =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return { signing: { kid: `bench-${alg}`, alg, privateKey }, publicKey };
}

/** Claims shaped like a root delegation's (contract section 3), about 600 bytes signed. */
const claims = () => {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: 'https://aoa.example.internal',
    sub: 'idp:okta:00u1abcd2EFGH3ijk4l5',
    aud: ['https://dashboards.internal', 'https://metrics.internal'],
    client_id: 'client:argocd',
    env: 'prod',
    scope: 'read:metrics read:dashboards',
    iat,
    nbf: iat,
    exp: iat + 600,
    jti: randomId(),
    act: { sub: 'app:dashboards' },
    aoa_lineage: [],
    aoa_iat_ms: Date.now(),
    aoa_max_depth: 2,
    aoa_rule: 'argocd-children',
    cnf: { jkt: randomId(32) },
  };
};

/** Operations per second of `op` over one window. */
function window(op: () => void): number {
  let n = 0;
  const start = performance.now();
  const end = start + WINDOW_MS;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 50; i++) op();
    n += 50;
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

pinSelf(1);
mkdirSync(RESULTS_DIR, { recursive: true });
const keys = Object.fromEntries(ALGS.map((alg) => [alg, keyOf(alg)])) as Record<
  Alg,
  ReturnType<typeof keyOf>
>;
const tokens = Object.fromEntries(
  ALGS.map((alg) => [
    alg,
    Array.from({ length: 256 }, () => signCompact({ typ: 'at+jwt' }, claims(), keys[alg].signing)),
  ]),
) as Record<Alg, string[]>;
const payloads = Array.from({ length: 256 }, claims);

const ops = {
  sign: (alg: Alg) => {
    let i = 0;
    return () => signCompact({ typ: 'at+jwt' }, payloads[i++ & 255] as object, keys[alg].signing);
  },
  verify: (alg: Alg) => {
    let i = 0;
    return () => verifyCompactJws(tokens[alg][i++ & 255] as string, keys[alg].publicKey, [alg]);
  },
};
type Op = keyof typeof ops;
const rates: Record<Op, Record<Alg, number[]>> = {
  sign: { EdDSA: [], ES256: [] },
  verify: { EdDSA: [], ES256: [] },
};
for (const op of Object.keys(ops) as Op[]) {
  for (const alg of ALGS) window(ops[op](alg)); // warm-up, not kept
  for (let w = 0; w < WINDOWS; w++) for (const alg of ALGS) rates[op][alg].push(window(ops[op](alg)));
}

const rows = (Object.keys(ops) as Op[]).map((op) => {
  const ed = median(rates[op].EdDSA);
  const es = median(rates[op].ES256);
  return { op, eddsaPerS: ed, es256PerS: es, eddsaUs: 1e6 / ed, es256Us: 1e6 / es, es256OverEddsa: es / ed };
});
const md = `# Signing algorithm: Ed25519 (EdDSA) beside P-256 (ES256)

${new Date().toISOString()}, Node ${process.version} (OpenSSL ${process.versions.openssl}), one process pinned to core 1.
An aoa access token (${tokens.EdDSA[0]?.length ?? 0} characters with EdDSA) signed as the issuer signs it (\`signCompact\`) and verified
as every verifier does (\`verifyCompactJws\`, node:crypto); ${WINDOWS} alternating windows of ${WINDOW_MS} ms per way, medians.
\`npm run bench -- signing-alg\`

| operation | EdDSA ops/s | EdDSA µs/op | ES256 ops/s | ES256 µs/op | ES256 / EdDSA throughput |
|---|---:|---:|---:|---:|---:|
${rows.map((r) => `| ${r.op} | ${Math.round(r.eddsaPerS)} | ${r.eddsaUs.toFixed(1)} | ${Math.round(r.es256PerS)} | ${r.es256Us.toFixed(1)} | ${r.es256OverEddsa.toFixed(2)}× |`).join('\n')}
`;
writeFileSync(join(RESULTS_DIR, 'signing-alg.md'), md);
writeFileSync(
  join(RESULTS_DIR, 'signing-alg.json'),
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, openssl: process.versions.openssl, rows }, null, 2)}\n`,
);
process.stdout.write(md);
