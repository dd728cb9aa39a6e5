import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { rotator as pb } from '@aoa/proto';
import { status } from '@grpc/grpc-js';
import { exportJWK } from 'jose';
import { grantIdFor } from '../packages/cli/src/agent.js';
import type { ServiceCaller } from '../packages/cli/src/caller.js';
import { RpcError } from '../packages/cli/src/delegate.js';
import {
  type CreateGrantFlags,
  createGrant,
  formatGrants,
  grantAction,
  grantRequestOf,
  listGrants,
  parseDuration,
} from '../packages/cli/src/grants.js';
import { aoa } from './support/cli.js';
import { startRotator } from './support/rotator.js';
import { startSystem, type TestSystem } from './support/system.js';

const _ROOT = fileURLToPath(new URL('..', import.meta.url));
const NOW = 1_800_000_000;

const flags = (overrides: Partial<CreateGrantFlags> = {}): CreateGrantFlags => ({
  sub: 'idp:corp:grant-owner',
  app: 'dashboards',
  env: 'prod',
  scope: ['read:metrics'],
  audience: [],
  ttl: '300',
  ...overrides,
});
const usageOf = (result: ReturnType<typeof grantRequestOf>) => (result as { usage: string }).usage;

describe('aoa grants create: flag parsing', () => {
  it('builds the request, with the expiry from --expires-in or --expires-at (0 when neither)', () => {
    const request = grantRequestOf(
      flags({ audience: ['https://metrics.internal'] }),
      NOW,
    ) as pb.CreateGrantRequest;
    assert.equal(request.child, 'dashboards');
    assert.equal(request.environment, 'prod');
    assert.deepEqual(request.scopes, ['read:metrics']);
    assert.deepEqual(request.audience, ['https://metrics.internal']);
    assert.equal(request.tokenTtlSeconds, 300);
    assert.equal(request.expiresAt, 0);
    assert.equal(request.parentClient, '');
    assert.equal(
      (grantRequestOf(flags({ 'expires-in': '7d' }), NOW) as pb.CreateGrantRequest).expiresAt,
      NOW + 7 * 86400,
    );
    const at = grantRequestOf(flags({ 'expires-at': '2027-01-31T00:00:00Z' }), NOW) as pb.CreateGrantRequest;
    assert.equal(at.expiresAt, Date.parse('2027-01-31T00:00:00Z') / 1000);
    assert.equal(
      (grantRequestOf(flags({ 'expires-at': '1900000000' }), NOW) as pb.CreateGrantRequest).expiresAt,
      1_900_000_000,
    );
  });

  it('names every missing flag, and refuses malformed values before calling anything', () => {
    assert.equal(
      usageOf(grantRequestOf({ scope: [], audience: [] }, NOW)),
      'missing --sub, --app, --env, --ttl, --scope',
    );
    assert.match(usageOf(grantRequestOf(flags({ app: 'Dash.*' }), NOW)), /--app must be lowercase/);
    assert.match(usageOf(grantRequestOf(flags({ sub: 'alice' }), NOW)), /--sub must be a principal idp:/);
    assert.match(
      usageOf(grantRequestOf(flags({ ttl: '5m' }), NOW)),
      /--ttl must be a whole number of seconds/,
    );
    assert.match(
      usageOf(grantRequestOf(flags({ 'expires-in': 'soon' }), NOW)),
      /--expires-in must be a duration/,
    );
    assert.match(
      usageOf(grantRequestOf(flags({ 'expires-at': 'tomorrow' }), NOW)),
      /--expires-at must be an ISO 8601/,
    );
    assert.match(
      usageOf(grantRequestOf(flags({ 'expires-in': '1d', 'expires-at': '1900000000' }), NOW)),
      /not both/,
    );
    assert.equal(parseDuration('90s'), 90);
    assert.equal(parseDuration('15m'), 900);
    assert.equal(parseDuration('0s'), undefined);
    assert.equal(parseDuration('1w'), undefined);
  });
});

describe('aoa grants against a rotator', () => {
  let sys: TestSystem;
  let rot: Awaited<ReturnType<typeof startRotator>>;
  let admin: ServiceCaller;
  let argocd: ServiceCaller;
  let adminKeyFile: string;
  let argocdKeyFile: string;
  before(async () => {
    sys = await startSystem();
    rot = await startRotator(sys);
    const grpc = `127.0.0.1:${rot.rotator.grpcPort}`;
    const adminJwk = { ...(await exportJWK(sys.keys.admin.privateKey)), kid: 'ops-1' };
    const argocdJwk = { ...(await exportJWK(sys.keys.argocd.privateKey)), kid: 'argocd-1' };
    admin = { grpc, issuer: sys.issuer.issuer, clientId: 'ops', clientJwk: adminJwk };
    argocd = { grpc, issuer: sys.issuer.issuer, clientId: 'argocd', clientJwk: argocdJwk };
    adminKeyFile = join(sys.dir, 'ops.jwk');
    argocdKeyFile = join(sys.dir, 'argocd.jwk');
    await writeFile(adminKeyFile, JSON.stringify(adminJwk), { mode: 0o600 });
    await writeFile(argocdKeyFile, JSON.stringify(argocdJwk), { mode: 0o600 });
  });
  after(async () => {
    await rot?.stop();
    await sys?.stop();
  });

  const as = (keyFile: string, clientId: string) => [
    '--grpc',
    admin.grpc,
    '--issuer',
    sys.issuer.issuer,
    '--client-id',
    clientId,
    '--client-key',
    keyFile,
  ];

  it('creates, lists, rotates, restores and deletes a grant as the admin', async () => {
    const grant = await createGrant(
      admin,
      grantRequestOf(flags({ 'expires-in': '1d' }), Math.floor(Date.now() / 1000)) as pb.CreateGrantRequest,
    );
    assert.equal(grant.state, 'active');
    assert.equal(grant.parentClient, 'ops');
    const listed = await listGrants(admin, { environment: 'prod', child: 'dashboards' });
    assert.ok(listed.some((g) => g.id === grant.id));
    assert.match(
      formatGrants(listed),
      new RegExp(
        `^ID\\s+APP\\s+ENV\\s+STATE\\s+TTL\\s+EXPIRES\\s+SCOPES\\s+AGENTS\\n(.*\\n)*${grant.id}\\s+dashboards\\s+prod\\s+active\\s+300s`,
        'm',
      ),
    );
    assert.equal(await grantIdFor(admin, 'dashboards', 'prod'), grant.id);
    assert.equal(await grantAction(admin, 'rotate', grant.id), undefined);
    assert.equal((await grantAction(admin, 'restore', grant.id))?.state, 'active');
    await grantAction(admin, 'delete', grant.id);
    assert.ok(!(await listGrants(admin, {})).some((g) => g.id === grant.id));
    await assert.rejects(
      grantAction(admin, 'rotate', grant.id),
      (e: unknown) => e instanceof RpcError && e.code === status.NOT_FOUND,
    );
  });

  it('refuses a grant the policy does not allow, and a parent client without proof, with typed errors', async () => {
    await assert.rejects(
      createGrant(admin, grantRequestOf(flags({ scope: ['admin'] }), 0) as pb.CreateGrantRequest),
      (e: unknown) => e instanceof RpcError && e.code === status.PERMISSION_DENIED,
    );
    await assert.rejects(
      createGrant(argocd, grantRequestOf(flags(), 0) as pb.CreateGrantRequest),
      // Without proof of the principal it grants for, a parent client is refused (not an admin).
      (e: unknown) =>
        e instanceof RpcError && [status.PERMISSION_DENIED, status.UNAUTHENTICATED].includes(e.code),
    );
  });

  it('the aoa process: create and list with --json (explicit flags), exit 2 on bad usage, 3 when refused', async () => {
    const created = await aoa(
      'grants',
      'create',
      ...as(adminKeyFile, 'ops'),
      '--sub',
      'idp:corp:grant-owner',
      '--app',
      'dashboards',
      '--env',
      'prod',
      '--scope',
      'read:metrics',
      '--ttl',
      '120',
      '--expires-in',
      '2h',
      '--json',
    );
    assert.equal(created.code, 0, created.stderr);
    const { id } = JSON.parse(created.stdout) as pb.Grant;
    const listed = await aoa('grants', 'list', ...as(adminKeyFile, 'ops'), '--env', 'prod', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const grants = JSON.parse(listed.stdout) as pb.Grant[];
    assert.equal(grants.find((g) => g.id === id)?.tokenTtlSeconds, 120);

    const missing = await aoa('grants', 'list', '--grpc', admin.grpc, '--json');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /without --dev, also give --issuer, --client-id, --client-key/);
    const noId = await aoa('grants', 'rotate', ...as(adminKeyFile, 'ops'));
    assert.equal(noId.code, 2);
    assert.match(noId.stderr, /give exactly one grant id/);
    const unknown = await aoa('grants', 'list', '--bogus');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /aoa grants list: Unknown option '--bogus'/);

    const other = await createGrant(admin, grantRequestOf(flags(), 0) as pb.CreateGrantRequest);
    assert.deepEqual(await grantIdFor(admin, 'dashboards', 'prod'), {
      problem: `2 grants of dashboards in prod: ${id}, ${other.id}; choose one with --grant`,
    });
    assert.match(JSON.stringify(await grantIdFor(admin, 'jobs', 'prod')), /no grant of jobs in prod/);

    const refused = await aoa('grants', 'delete', id, ...as(argocdKeyFile, 'argocd'));
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /aoa grants delete: refused: .*admin/);
  });
});
