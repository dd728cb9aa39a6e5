import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JWK } from 'jose';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { delegateOnce } from '../packages/cli/src/delegate.js';
import type { DevFacts } from '../packages/cli/src/dev.js';
import { aoa, CLI_MAIN as MAIN, ROOT } from './support/cli.js';

/** Eventual success with a generous deadline; never a latency assertion. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Resolves with the exit code once the child has exited. */
const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });

/** Every live process whose command line mentions `needle` (Linux /proc). */
async function processesMentioning(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) found.push(Number(entry));
  }
  return found;
}

interface AuditJson {
  type: string;
  subject: string;
}

describe('aoa dev, end to end as a newcomer drives it', () => {
  let dataDir: string;
  let dev: ChildProcess;
  let agent: ChildProcess | undefined;
  let facts: DevFacts;
  let devOutput = '';
  const flags = () => ['--dev', '--data-dir', dataDir];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'aoa-dev-system-'));
    dev = spawn(process.execPath, ['--import', 'tsx', MAIN, 'dev', '--data-dir', dataDir], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    dev.stdout?.on('data', (chunk: Buffer) => {
      devOutput += chunk.toString();
    });
    dev.stderr?.on('data', (chunk: Buffer) => {
      devOutput += chunk.toString();
    });
    facts = await waitFor('aoa dev to write dev.json', async () =>
      devOutput.includes('Press Ctrl-C')
        ? (JSON.parse(await readFile(join(dataDir, 'dev.json'), 'utf8')) as DevFacts)
        : undefined,
    );
  });

  after(async () => {
    if (agent && agent.exitCode === null) agent.kill('SIGKILL');
    if (dev && dev.exitCode === null) dev.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('delegates, runs an agent through a rotation, revokes, audits every step, and stops cleanly', async () => {
    // A parent token from the dev IdP, with an independent OAuth client.
    const idp = await oidc.discovery(
      new URL(facts.idp.issuer),
      facts.orchestrator.idpClientId,
      facts.orchestrator.idpClientSecret,
      undefined,
      { execute: [oidc.allowInsecureRequests] },
    );
    const parent = await oidc.clientCredentialsGrant(idp, { resource: facts.idp.audience });

    const delegated = await delegateOnce({
      grpc: facts.issuer.grpc,
      issuer: facts.issuer.issuer,
      clientId: facts.orchestrator.clientId,
      clientJwk: facts.orchestrator.privateJwk as JWK,
      subjectToken: parent.access_token,
      child: 'dashboards',
      env: 'prod',
      scopes: ['read:metrics'],
      audience: [],
      ttlSeconds: 0,
      holderJkt: undefined,
    });
    const jti = delegated.response.jti;
    assert.ok(jti);

    // An agent beside dashboards, enrolled with the demo join token from dev.json.
    const tokenFile = join(dataDir, 'dashboards.token');
    agent = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        'agent',
        ...flags(),
        '--agent-id',
        'web-1',
        '--key-dir',
        join(dataDir, 'agent-web-1'),
        '--out',
        tokenFile,
      ],
      { cwd: ROOT, stdio: 'ignore' },
    );
    const firstJti = await waitFor(
      'the agent to write its first credential',
      async () => decodeJwt((await readFile(tokenFile, 'utf8')).trim()).jti,
    );
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);

    const rotated = await aoa('grants', 'rotate', ...flags(), facts.demoAgent.grantId);
    assert.equal(rotated.code, 0, rotated.stderr);
    const secondJti = await waitFor('a rotated credential in the file', async () => {
      const current = decodeJwt((await readFile(tokenFile, 'utf8')).trim()).jti;
      return current !== firstJti ? current : undefined;
    });

    const revoked = await aoa('revoke', ...flags(), '--jti', jti, '--reason', 'system test');
    assert.equal(revoked.code, 0, revoked.stderr);

    const wanted: Array<[string, string]> = [
      ['delegation.issued', jti],
      ['grant.created', facts.demoAgent.grantId],
      ['join_token.created', facts.demoAgent.grantId],
      ['agent.enrolled', facts.demoAgent.grantId],
      ['grant.minted', facts.demoAgent.grantId],
      ['credential.delivered', String(firstJti)],
      ['credential.delivered', String(secondJti)],
      ['revocation.issued', `jti.${jti}`],
    ];
    const found = await waitFor('every step in aoa audit query', async () => {
      const query = await aoa('audit', 'query', ...flags(), '--since', '10m', '--limit', '1000', '--json');
      if (query.code !== 0) return undefined;
      const events = JSON.parse(query.stdout) as AuditJson[];
      const missing = wanted.filter(
        ([type, subject]) => !events.some((e) => e.type === type && e.subject === subject),
      );
      return missing.length === 0 ? events : undefined;
    });
    assert.ok(found.length >= wanted.length);
    assert.ok(secondJti);

    const verified = await aoa('audit', 'verify', ...flags(), '--json');
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);

    // Stop: the agent removes its file; aoa dev stops every service and its nats-server.
    agent.kill('SIGTERM');
    assert.equal(await exited(agent), 0);
    await assert.rejects(stat(tokenFile), 'the agent removes the credential file when it stops');
    dev.kill('SIGINT');
    assert.equal(await exited(dev), 0);
    assert.deepEqual(await processesMentioning(dataDir), [], 'nothing started by aoa dev is left running');
  });
});
