// Memory of the agent sidecar (#14 item 7: under 60 MB): `aoa agent` from its production bundle, as
// the image runs it (`node --max-semi-space-size=1 packages/cli/dist/main.js agent`), enrolled with a
// join token, writing its credential file while the rotator rotates it every few seconds. Resident set size at rest (its first credential
// held), then its curve over the soak. Peer in the same run: a bare Node process holding one NATS
// connection with a subscription, the floor any NATS-connected sidecar in Node starts from.
//
//   npx tsx bench/agent-memory.bench.ts [--soak-s 300] [--quick] [--node-flags=]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { decodeJwt } from 'jose';
import { createGrantAsAdmin, joinTokenAsAdmin, startRotator } from '../test/support/rotator.js';
import { startSystem } from '../test/support/system.js';
import { REPO_ROOT, rssMb } from './lib/procs.js';
import { slopePerMinute } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    'soak-s': { type: 'string' },
    quick: { type: 'boolean', default: false },
    // Node flags for the agent process: by default the image's (infra/docker/entrypoint.sh); "" for none.
    'node-flags': { type: 'string', default: '--max-semi-space-size=1' },
  },
});
const SOAK_S = Number(args['soak-s'] ?? (args.quick ? 40 : 300));
const NODE_FLAGS = (args['node-flags'] ?? '').split(' ').filter(Boolean);
const TOKEN_TTL_S = 4;
const LIMIT_MB = 60;
const SAMPLE_MS = 2000;
const log = (message: string) => console.error(`[bench] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const work = mkdtempSync(join(tmpdir(), 'aoa-bench-agent-'));
const children: ChildProcess[] = [];
const cleanup: Array<() => Promise<unknown>> = [];
let exitCode = 0;
try {
  log('building the CLI bundle');
  execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.mjs'), 'cli'], { cwd: REPO_ROOT });
  const sys = await startSystem();
  cleanup.push(() => sys.stop());
  const rot = await startRotator(sys);
  cleanup.push(() => rot.stop());
  const grant = await createGrantAsAdmin(sys, rot.client, { tokenTtlSeconds: TOKEN_TTL_S });
  const tokenFile = join(work, 'join-token');
  writeFileSync(tokenFile, await joinTokenAsAdmin(sys, rot.client, grant.id), { mode: 0o600 });
  const credential = join(work, 'credential');
  const agent = spawn(
    process.execPath,
    [
      ...NODE_FLAGS,
      join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js'),
      'agent',
      '--nats',
      sys.nats.url,
      '--issuer',
      sys.issuer.issuer,
      '--rotator',
      `127.0.0.1:${rot.rotator.grpcPort}`,
      '--join-token-file',
      tokenFile,
      '--agent-id',
      'bench-1',
      '--key-dir',
      join(work, 'keys'),
      '--out',
      credential,
    ],
    { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.push(agent);
  let agentOutput = '';
  agent.stderr?.on('data', (d: Buffer) => {
    agentOutput += d.toString();
  });
  const peer = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { connect } from '@nats-io/transport-node';
       const nc = await connect({ servers: ${JSON.stringify(sys.nats.url)} });
       nc.subscribe('aoa.creds.>', { callback: () => undefined });
       setInterval(() => undefined, 1 << 30);`,
    ],
    { cwd: REPO_ROOT, stdio: 'ignore' },
  );
  children.push(peer);
  const jtiNow = () => {
    try {
      return String(decodeJwt(readFileSync(credential, 'utf8')).jti);
    } catch {
      return undefined;
    }
  };
  for (let i = 0; i < 600 && jtiNow() === undefined; i++) await sleep(100);
  if (jtiNow() === undefined) throw new Error(`the agent wrote no credential:\n${agentOutput.slice(-2000)}`);
  await sleep(5000);
  const rest = { agent: rssMb(agent.pid as number), peer: rssMb(peer.pid as number) };
  log(`at rest: agent ${rest.agent.toFixed(1)} MB, peer ${rest.peer.toFixed(1)} MB; soak ${SOAK_S} s`);
  const jtis = new Set<string>();
  const samples: Array<{ s: number; agent: number; peer: number }> = [];
  const t0 = Date.now();
  while (Date.now() - t0 < SOAK_S * 1000) {
    await sleep(SAMPLE_MS);
    const jti = jtiNow();
    if (jti) jtis.add(jti);
    samples.push({
      s: (Date.now() - t0) / 1000,
      agent: rssMb(agent.pid as number),
      peer: rssMb(peer.pid as number),
    });
  }
  const secondHalf = samples.filter((p) => p.s >= SOAK_S / 2);
  const slope = slopePerMinute(secondHalf.map((p) => [p.s / 60, p.agent]));
  const max = Math.max(...samples.map((p) => p.agent));
  const end = samples.at(-1)?.agent ?? Number.NaN;
  const f = (n: number) => n.toFixed(1);
  const md = `# Memory of the agent sidecar (\`aoa agent\`, RSS)

${new Date().toISOString()}, Node ${process.version}. \`node ${NODE_FLAGS.length ? `${NODE_FLAGS.join(' ')} ` : ''}packages/cli/dist/main.js agent\`, enrolled with a join
token, its grant's token TTL ${TOKEN_TTL_S} s (a rotation every ~${TOKEN_TTL_S / 2} s: ${jtis.size} distinct credentials seen in its
file over the ${SOAK_S} s soak), sampled every ${SAMPLE_MS / 1000} s. Issuer, rotator and NATS run in the bench process.
\`npm run bench -- agent-memory\`.

| process | at rest (MB) | max (MB) | at the end (MB) | growth over the second half (MB/min) | at rest < ${LIMIT_MB} MB |
|---|--:|--:|--:|--:|---|
| aoa agent | ${f(rest.agent)} | ${f(max)} | ${f(end)} | ${slope.toFixed(2)} | ${rest.agent < LIMIT_MB ? 'pass' : 'MISSED'} |
| peer: bare Node + one NATS connection | ${f(rest.peer)} | ${f(Math.max(...samples.map((p) => p.peer)))} | ${f(samples.at(-1)?.peer ?? Number.NaN)} | ${slopePerMinute(secondHalf.map((p) => [p.s / 60, p.peer])).toFixed(2)} | |

The agent at rest is ${(rest.agent / rest.peer).toFixed(2)}× the peer; the limit is ${(rest.agent / LIMIT_MB).toFixed(2)}× used.
`;
  writeFileSync(join(REPO_ROOT, 'bench', 'results', 'agent-memory.md'), md);
  writeFileSync(
    join(REPO_ROOT, 'bench', 'results', 'agent-memory.json'),
    `${JSON.stringify({ date: new Date().toISOString(), soakS: SOAK_S, rest, max, end, slope, rotations: jtis.size, samples }, null, 2)}\n`,
  );
  process.stdout.write(md);
} catch (error) {
  console.error(error);
  exitCode = 1;
} finally {
  for (const child of children) child.kill('SIGTERM');
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);
