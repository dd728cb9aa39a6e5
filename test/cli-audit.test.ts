import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { events } from '@aoa/proto';
import { status } from '@grpc/grpc-js';
import { exportJWK } from 'jose';
import {
  auditLineage,
  auditUnusedScopes,
  followAudit,
  queryAuditor,
  verifyAuditChain,
} from '../packages/cli/src/audit.js';
import { jtiOf, queryRequestOf } from '../packages/cli/src/audit-filters.js';
import { formatEvents, formatLineage, formatUnused, formatVerify } from '../packages/cli/src/audit-format.js';
import type { ServiceCaller } from '../packages/cli/src/caller.js';
import { RpcError } from '../packages/cli/src/delegate.js';
import { startAuditor, systemAccess, type TestAuditor, until } from './support/auditor.js';
import { clientAssertion, dpopProof, makeKey } from './support/oauth.js';
import { callDelegate, rootDelegateAsArgocd, startSystem, type TestSystem } from './support/system.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);

describe('aoa audit: filter flags', () => {
  it('reads durations back from now and ISO 8601 times, and passes the other filters through', () => {
    const request = queryRequestOf(
      { since: '90m', until: '2026-01-31T11:59:00Z', type: ['delegation.issued'], app: 'jobs', limit: '5' },
      NOW,
    );
    assert.equal(request.since?.toISOString(), '2026-01-31T10:30:00.000Z');
    assert.equal(request.until?.toISOString(), '2026-01-31T11:59:00.000Z');
    assert.deepEqual([request.types, request.app, request.limit], [['delegation.issued'], 'jobs', 5]);
    assert.equal(
      queryRequestOf({ since: '2026-01-30' }, NOW).since?.toISOString(),
      '2026-01-30T00:00:00.000Z',
    );
  });

  it('names the flag and what it expects for every malformed filter', () => {
    const cases: Array<[Parameters<typeof queryRequestOf>[0], RegExp]> = [
      [{ since: 'yesterday' }, /^--since: expected a duration back from now .* got "yesterday"$/],
      [{ until: '2026-13-45T99:00Z' }, /^--until: expected a duration/],
      [{ since: '1h', until: '2h' }, /^--since must be before --until$/],
      [{ type: ["x' or 1=1"] }, /^--type: expected an event type of dotted lowercase words/],
      [{ type: ['Delegation.Issued'] }, /^--type: /],
      [{ limit: '0' }, /^--limit: expected a whole number from 1 to 10000, got "0"$/],
      [{ limit: '10001' }, /^--limit: /],
      [{ limit: '5x' }, /^--limit: /],
      [{ app: 'Jobs' }, /^--app: expected an app id/],
      [{ env: 'prod.*' }, /^--env: /],
      [{ jti: 'a b' }, /^--jti: /],
      [{ outcome: 'Issued!' }, /^--outcome: /],
      [{ subject: '' }, /^--subject: expected 1 to 1024 characters$/],
    ];
    for (const [flags, message] of cases) assert.throws(() => queryRequestOf(flags, NOW), { message });
    assert.throws(() => jtiOf(undefined), { message: /aoa audit lineage JTI/ });
    assert.throws(() => jtiOf('no/slashes'), { message: /^JTI: expected a base64url jti/ });
  });
});

describe('aoa audit against an issuer and an auditor', () => {
  let sys: TestSystem;
  let auditor: TestAuditor;
  let admin: ServiceCaller;
  let dir: string;
  let root: { jti: string; accessToken: string };
  let child: { jti: string };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aoa-cli-audit-'));
    sys = await startSystem();
    auditor = await startAuditor(sys.nats.url, join(dir, 'store'), {}, systemAccess(sys));
    admin = {
      grpc: `127.0.0.1:${auditor.grpcPort}`,
      issuer: sys.issuer.issuer,
      clientId: 'ops',
      clientJwk: { ...(await exportJWK(sys.keys.admin.privateKey)), kid: 'ops-1' },
    };
    const holder = await makeKey();
    root = await rootDelegateAsArgocd(sys, { scopes: ['read:metrics'], holderJkt: holder.jkt });
    child = await callDelegate(
      sys.client,
      {
        subjectToken: root.accessToken,
        child: 'jobs',
        environment: 'prod',
        scopes: ['read:metrics'],
        holderJkt: (await makeKey()).jkt,
      },
      {
        dpop: await dpopProof(
          holder,
          'POST',
          `${sys.issuer.grpcUrl}/aoa.v1.Issuer/Delegate`,
          root.accessToken,
        ),
      },
    );
    await until('two issuances stored', async () => {
      const found = await queryAuditor(admin, queryRequestOf({ type: ['delegation.issued'] }, Date.now()));
      return found.length === 2;
    });
  });
  after(async () => {
    await auditor?.stop();
    await sys?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('queries, draws the lineage tree, verifies, and is refused to a non-admin client', async () => {
    const issued = await queryAuditor(
      admin,
      queryRequestOf({ type: ['delegation.issued'], app: 'jobs' }, Date.now()),
    );
    assert.deepEqual(
      issued.map((e) => e.data?.jti),
      [child.jti],
    );
    assert.match(
      formatEvents(issued),
      new RegExp(`delegation\\.issued  ${child.jti}  .*child=jobs  env=prod`),
    );
    const tree = formatLineage(await auditLineage(admin, child.jti));
    const [first, second] = tree.split('\n');
    assert.match(
      first ?? '',
      new RegExp(`^${root.jti}  dashboards/prod  \\[read:metrics\\]  idp:corp:argocd-sa  `),
    );
    assert.match(second ?? '', new RegExp(`^  └─ \\* ${child.jti}  jobs/prod  `));
    const verdict = await verifyAuditChain(admin);
    assert.equal(verdict.ok, true);
    assert.match(
      formatVerify(verdict),
      /^audit chain intact: \d+ rows checked.*\n(last signed checkpoint: seq \d+ at \S+ by key \S{12}…|no signed checkpoint yet)\n$/,
    );
    // No verifier has reported usage: every scope issued to both apps is unused.
    assert.equal(
      formatUnused(await auditUnusedScopes(admin, { env: 'prod', app: '' })),
      'dashboards/prod  unused read:metrics  (0 of 1 in use)\njobs/prod  unused read:metrics  (0 of 1 in use)\n',
    );
    const argocd = {
      ...admin,
      clientId: 'argocd',
      clientJwk: { ...(await exportJWK(sys.keys.argocd.privateKey)), kid: 'argocd-1' },
    };
    await assert.rejects(
      verifyAuditChain(argocd),
      (e: unknown) => e instanceof RpcError && e.code === status.PERMISSION_DENIED,
    );
  });

  it('tail follows events published after it started, once each', async () => {
    const seen: events.AuditEvent[] = [];
    const stop = new AbortController();
    const following = followAudit(
      admin,
      queryRequestOf({ type: ['delegation.denied'], since: '1m' }, Date.now()),
      (e) => seen.push(e),
      stop.signal,
    );
    await assert.rejects(
      callDelegate(
        sys.client,
        {
          subjectToken: await sys.idpToken('argocd-sa'),
          child: 'jobs',
          environment: 'prod',
          scopes: ['admin'],
        },
        { 'client-assertion': await clientAssertion('argocd', sys.keys.argocd, sys.issuer.issuer) },
      ),
    );
    await until('the denial to be followed', async () => seen.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    stop.abort();
    await following;
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.type, 'delegation.denied');
  });

  const aoa = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'packages/cli/src/main.ts'), 'audit', ...args],
        { cwd: ROOT, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('runs as a command: verify --json and query --json exit 0, a bad filter exits 2, a tampered chain exits 1', async () => {
    const keyFile = join(dir, 'ops.jwk');
    await writeFile(keyFile, JSON.stringify(admin.clientJwk), { mode: 0o600 });
    const as = [
      '--grpc',
      admin.grpc,
      '--issuer',
      admin.issuer,
      '--client-id',
      'ops',
      '--client-key',
      keyFile,
    ];
    const verified = await aoa('verify', '--json', ...as);
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);
    const queried = await aoa('query', '--json', '--type', 'delegation.issued', '--env', 'prod', ...as);
    assert.equal(queried.code, 0, queried.stderr);
    const list = JSON.parse(queried.stdout) as Array<{ type: string; data: { jti: string } }>;
    assert.deepEqual(
      list.map((e) => e.data.jti),
      [root.jti, child.jti],
    );
    const bad = await aoa('query', '--since', 'yesterday', ...as);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^aoa audit query: --since: expected a duration/);
    await auditor.store.db.query(`UPDATE audit_events SET subject = 'forged' WHERE seq = 1`);
    const tampered = await aoa('verify', ...as);
    assert.equal(tampered.code, 1, tampered.stderr);
    assert.match(tampered.stdout, /^audit chain NOT intact: .*\n {2}- row seq 1 .*was edited/);
  });
});
