import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { rotator as pb } from '@aoa/proto';
import { createAgent, generateAgentKeys } from '@aoa/sdk';
import { connect } from '@nats-io/transport-node';
import { decodeJwt, exportJWK } from 'jose';
import { createJoinToken } from '../packages/cli/src/agent.js';
import { enrolAgent } from '../packages/cli/src/agent-sidecar.js';
import type { ServiceCaller } from '../packages/cli/src/caller.js';
import { createGrant, grantAction } from '../packages/cli/src/grants.js';
import { type AoaProcess, spawnAoa } from './support/cli.js';
import { startRotator } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'packages/cli/src/main.ts');
const AUDIENCE = 'https://metrics.internal';

/** Polls until `probe` answers; a deadline for eventual success, never a latency assertion. */
const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

/** {@link waitFor}, with the sidecar's output (which never holds a token) in the failure. */
const waitForSidecar = <T>(s: Sidecar, what: string, probe: () => Promise<T | undefined>) =>
  waitFor(what, probe).catch((error: Error) => {
    throw new Error(`${error.message}; sidecar output:\n${s.output()}`);
  });

/** The token file's content, read as an app would: absent, or a whole JWT (never a partial write). */
const readToken = async (path: string): Promise<string | undefined> => {
  try {
    const token = await readFile(path, 'utf8');
    assert.match(token, /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/, 'the token file holds a whole JWT');
    return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
};

type Sidecar = AoaProcess;

const grantRequest: pb.CreateGrantRequest = {
  sub: 'idp:corp:grant-owner',
  child: 'dashboards',
  environment: 'prod',
  scopes: ['read:metrics'],
  audience: [AUDIENCE],
  tokenTtlSeconds: 3,
  expiresAt: 0,
  parentClient: '',
};

describe('aoa agent: the sidecar as a real process', () => {
  let sys: TestSystem;
  let rot: Awaited<ReturnType<typeof startRotator>>;
  let admin: ServiceCaller;
  let dir: string;
  let grant: pb.Grant;
  const tokensSeen = new Set<string>();
  const sidecars: Sidecar[] = [];

  before(async () => {
    sys = await startSystem();
    rot = await startRotator(sys);
    admin = {
      grpc: `127.0.0.1:${rot.rotator.grpcPort}`,
      issuer: sys.issuer.issuer,
      clientId: 'ops',
      clientJwk: { ...(await exportJWK(sys.keys.admin.privateKey)), kid: 'ops-1' },
    };
    dir = await mkdtemp(join(tmpdir(), 'aoa-cli-agent-'));
    grant = await createGrant(admin, grantRequest);
  });
  after(async () => {
    for (const s of sidecars) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await rot?.stop();
    await sys?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const start = (keyDir: string, extra: string[], agentId = 'web-1'): Sidecar => {
    const args = ['--out', join(dir, `${agentId}.token`), '--key-dir', keyDir, '--agent-id', agentId];
    const sidecar = spawnAoa(
      'agent',
      ...args,
      '--nats',
      sys.nats.url,
      '--issuer',
      sys.issuer.issuer,
      ...extra,
    );
    sidecars.push(sidecar);
    return sidecar;
  };
  const joinTokenFor = async (grantId: string) => (await createJoinToken(admin, grantId, 0)).joinToken;
  const joinToken = () => joinTokenFor(grant.id);
  const rotatorFlags = () => ['--rotator', admin.grpc, '--audience', AUDIENCE];
  const stopCleanly = async (s: Sidecar) => {
    s.child.kill('SIGTERM');
    assert.equal(await s.exited, 0, s.output());
    assert.throws(() => process.kill(s.child.pid as number, 0), /ESRCH/, 'no process left behind');
  };

  it('enrols with a join token, writes the credential (0600) and replaces it atomically on rotation', async () => {
    const keyDir = join(dir, 'keys');
    const tokenFile = join(dir, 'token-1');
    await writeFile(tokenFile, await joinToken(), { mode: 0o600 });
    const s = start(keyDir, ['--join-token-file', tokenFile, ...rotatorFlags()]);
    const first = await waitForSidecar(s, 'the first credential file', () =>
      readToken(join(dir, 'web-1.token')),
    );
    tokensSeen.add(first);
    assert.equal((await stat(join(dir, 'web-1.token'))).mode & 0o777, 0o600);
    const claims = decodeJwt(first);
    assert.equal(claims.aoa_grant, grant.id);
    assert.deepEqual(claims.aud, [AUDIENCE]);
    assert.equal((await stat(keyDir)).mode & 0o777, 0o700);
    for (const file of await readdir(keyDir)) {
      assert.equal((await stat(join(keyDir, file))).mode & 0o777, 0o600, file);
    }
    const next = await waitForSidecar(s, 'a rotated credential', async () => {
      const token = await readToken(join(dir, 'web-1.token'));
      if (token) tokensSeen.add(token);
      return token && decodeJwt(token).jti !== claims.jti ? token : undefined;
    });
    assert.ok((decodeJwt(next).exp ?? 0) > (claims.exp ?? 0));
    assert.deepEqual(
      (await readdir(dir)).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file is left behind',
    );
    await stopCleanly(s);
    assert.equal(
      await readToken(join(dir, 'web-1.token')),
      undefined,
      'a stopped sidecar leaves no credential',
    );
    assert.match(s.output(), /"msg":"credential written"/);
    assert.match(s.output(), new RegExp(`"jti":"${claims.jti}"`));
  });

  it('refuses a used join token with a clear message and exit 3', async () => {
    const used = await joinToken();
    const keyDir = join(dir, 'keys-used');
    const first = start(keyDir, ['--join-token', used, ...rotatorFlags()], 'web-2');
    await waitFor('the enrolment', () =>
      stat(join(keyDir, 'enrolment.json')).then(
        () => true,
        () => undefined,
      ),
    );
    await stopCleanly(first);
    const again = start(join(dir, 'keys-again'), ['--join-token', used, ...rotatorFlags()], 'web-3');
    assert.equal(await again.exited, 3);
    assert.match(again.output(), /aoa agent: enrolment: refused: UNAUTHENTICATED: join token: already used/);
    assert.ok(!again.output().includes(used), 'the join token is never echoed');
  });

  it('restarts from its key directory without a join token, rides out a NATS restart, and removes the file once the credential expires unreplaced', async () => {
    const s = start(join(dir, 'keys'), []);
    const token = await waitForSidecar(s, 'the credential after a restart', () =>
      readToken(join(dir, 'web-1.token')),
    );
    tokensSeen.add(token);
    assert.match(s.output(), /using the stored enrolment/);
    await sys.nats.restart();
    const back = Date.now();
    await waitForSidecar(s, 'a credential minted after NATS came back', async () => {
      const latest = await readToken(join(dir, 'web-1.token'));
      if (latest) tokensSeen.add(latest);
      return latest && Number(decodeJwt(latest).aoa_iat_ms) >= back ? latest : undefined;
    });
    await grantAction(admin, 'delete', grant.id);
    await waitForSidecar(s, 'the file to go', async () =>
      (await readToken(join(dir, 'web-1.token'))) ? undefined : true,
    );
    await waitFor('the log line', async () =>
      /"msg":"no valid credential"/.test(s.output()) ? true : undefined,
    );
    await stopCleanly(s);
    for (const seen of tokensSeen) assert.ok(!s.output().includes(seen), 'a token never reaches the log');
  });

  it('the SDK agent refuses a credential without an expected audience, and reports one that lapses unreplaced', async () => {
    const sdkGrant = await createGrant(admin, { ...grantRequest, tokenTtlSeconds: 2 });
    const keys = await generateAgentKeys();
    await enrolAgent(admin.grpc, { joinToken: await joinTokenFor(sdkGrant.id) }, 'sdk-1', keys);
    const nc = await connect({ servers: sys.nats.url });
    const options = { nats: nc, env: 'prod', app: 'dashboards', agentId: 'sdk-1', keys: keys.private };
    const signal = AbortSignal.timeout(30_000);
    const wrong = await createAgent({
      ...options,
      issuer: sys.issuer.issuer,
      audience: ['https://jobs.internal'],
    });
    const [rejected] = await once(wrong, 'rejected', { signal });
    assert.match(rejected.reason, /not for audience https:\/\/jobs\.internal/);
    assert.throws(() => wrong.token(), /no valid credential/);
    await wrong.stop();
    const right = await createAgent({ ...options, issuer: sys.issuer.issuer, audience: [AUDIENCE] });
    let held = '';
    right.on('rotated', (c) => {
      held = c.jti;
    });
    await once(right, 'rotated', { signal });
    await grantAction(admin, 'delete', sdkGrant.id);
    const [expired] = await once(right, 'expired', { signal });
    assert.equal(expired.jti, held);
    assert.throws(() => right.token(), /no valid credential/);
    await right.stop();
    await nc.close();
  });

  it('runs an agent registered in policy (aoa agent keys) with no join token', async () => {
    const keyDir = join(dir, 'keys-policy');
    const prepared = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          MAIN,
          'agent',
          'keys',
          '--key-dir',
          keyDir,
          '--agent-id',
          'pol-1',
          '--policy-grant',
          'dash-policy',
          '--app',
          'dashboards',
          '--env',
          'prod',
          '--json',
        ],
        { cwd: ROOT },
        (error, stdout, stderr) =>
          resolve({ code: Number((error as { code?: number } | null)?.code ?? 0), stdout, stderr }),
      ),
    );
    assert.equal(prepared.code, 0, prepared.stderr);
    const { grantId, policyEntry } = JSON.parse(prepared.stdout) as { grantId: string; policyEntry: object };
    const policy = await readFile(sys.policyPath, 'utf8');
    await writeFile(
      sys.policyPath,
      `${policy}\ngrants:\n  - name: dash-policy\n    sub: idp:corp:grant-owner\n    parent_client: argocd\n` +
        `    app: dashboards\n    env: prod\n    scopes: ["read:metrics"]\n    audience: ["${AUDIENCE}"]\n` +
        `    token_ttl: 1m\n    expires_in: none\n    agents: [${JSON.stringify(policyEntry)}]\n`,
    );
    const s = start(keyDir, ['--audience', AUDIENCE], 'pol-1');
    const token = await waitForSidecar(s, 'a credential for the policy agent', () =>
      readToken(join(dir, 'pol-1.token')),
    );
    assert.equal(decodeJwt(token).aoa_grant, grantId, 'the grant id derives from the policy grant name');
    await stopCleanly(s);
    await writeFile(sys.policyPath, policy);
  });

  it('exits 2 naming what is missing', async () => {
    const s = start(join(dir, 'keys-none'), [], 'web-4');
    assert.equal(await s.exited, 2);
    assert.match(
      s.output(),
      /aoa agent: not enrolled yet: give --join-token, --join-token-file or --attestation-file, and --rotator/,
    );
    const bare = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        ['--import', 'tsx', MAIN, 'agent', '--out', join(dir, 'x')],
        { cwd: ROOT },
        (error, _o, stderr) =>
          resolve({ code: Number((error as { code?: number } | null)?.code ?? 0), stderr }),
      ),
    );
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /aoa agent: missing --key-dir, --agent-id, --nats, --issuer/);
  });
});
