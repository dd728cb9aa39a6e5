import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type NatsServer, startNats } from '@aoa/testkit';
import { formatKeys, type KeySummary, listPublishedKeys, NoKeysBucket } from '../packages/cli/src/keys.js';
import { aoa, writeClientKey } from './support/cli.js';
import { startSystem, type TestSystem } from './support/system.js';

const _ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('aoa keys list: formatting', () => {
  it('prints one row per key with ISO times and - for what has not happened', () => {
    const keys: KeySummary[] = [
      { kid: 'k2', alg: 'EdDSA', state: 'active', created_ms: 0, activated_ms: 60_000 },
      { kid: 'k1', alg: 'ES256', state: 'retired', created_ms: 0, activated_ms: 0, retired_ms: 60_000 },
    ];
    assert.equal(
      formatKeys(keys),
      'KID  ALG    STATE    CREATED                   ACTIVATED                 RETIRED\n' +
        'k2   EdDSA  active   1970-01-01T00:00:00.000Z  1970-01-01T00:01:00.000Z  -\n' +
        'k1   ES256  retired  1970-01-01T00:00:00.000Z  1970-01-01T00:00:00.000Z  1970-01-01T00:01:00.000Z\n',
    );
  });
});

describe('aoa keys list against an issuer', () => {
  let sys: TestSystem;
  let bare: NatsServer;
  before(async () => {
    sys = await startSystem();
    bare = await startNats();
  });
  after(async () => {
    await bare?.stop();
    await sys?.stop();
  });

  it('lists the active key first, then the standby, without any key material', async () => {
    const keys = await listPublishedKeys(sys.nats.url);
    assert.deepEqual(
      keys.map((k) => [k.kid, k.state]),
      [
        [sys.issuer.keys.active().kid, 'active'],
        [sys.issuer.keys.standbyKid(), 'standby'],
      ],
    );
    assert.ok(keys.every((k) => !('jwk' in k) && k.created_ms > 0));
  });

  it('says so when no issuer ever published keys on that NATS', async () => {
    await assert.rejects(listPublishedKeys(bare.url), (error: unknown) => {
      assert.ok(error instanceof NoKeysBucket);
      assert.match(error.message, /no KV bucket aoa_keys/);
      return true;
    });
  });

  it('runs as a child process: --json, --dev reads dev.json, exit 2 without a target, 4 when NATS is unreachable', async () => {
    const listed = await aoa('keys', 'list', '--nats', sys.nats.url, '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const keys = JSON.parse(listed.stdout) as KeySummary[];
    assert.deepEqual(
      keys.map((k) => k.state),
      ['active', 'standby'],
    );
    assert.equal(keys[0]?.kid, sys.issuer.keys.active().kid);
    const table = await aoa('keys', 'list', '--nats', sys.nats.url);
    assert.match(table.stdout, new RegExp(`^${keys[0]?.kid}\\s+EdDSA\\s+active\\s`, 'm'));
    const devDir = join(sys.dir, 'dev');
    await mkdir(devDir);
    await writeFile(join(devDir, 'dev.json'), JSON.stringify({ natsUrl: sys.nats.url }));
    const dev = await aoa('keys', 'list', '--dev', '--data-dir', devDir, '--json');
    assert.deepEqual(JSON.parse(dev.stdout), keys);
    const usage = await aoa('keys', 'list');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /aoa keys list: give either --dev or --nats URL/);
    const down = await aoa('keys', 'list', '--nats', 'nats://127.0.0.1:1');
    assert.equal(down.code, 4);
  });

  it('rotate: an administrator switches to the standby at once (no rotator: no grants to re-mint); others are refused', async () => {
    const keyFile = await writeClientKey(sys.dir, 'ops', sys.keys.admin, 'ops-1');
    const target = [
      '--grpc',
      `127.0.0.1:${sys.issuer.grpcPort}`,
      '--issuer',
      sys.issuer.issuer,
      '--client-key',
      keyFile,
    ];
    const old = sys.issuer.keys.active().kid;
    const standby = sys.issuer.keys.standbyKid();
    const rotated = await aoa(
      'keys',
      'rotate',
      ...target,
      '--client-id',
      'ops',
      '--reason',
      'drill',
      '--json',
    );
    assert.equal(rotated.code, 0, rotated.stderr);
    const result = JSON.parse(rotated.stdout) as {
      retiredKid: string;
      activeKid: string;
      revocationId: string;
    };
    assert.equal(result.retiredKid, old);
    assert.equal(result.activeKid, standby);
    assert.ok(result.revocationId);
    assert.equal(sys.issuer.keys.active().kid, standby);
    const argocdKey = await writeClientKey(sys.dir, 'argocd', sys.keys.argocd, 'argocd-1');
    const refused = await aoa(
      'keys',
      'rotate',
      ...target.slice(0, 4),
      '--client-key',
      argocdKey,
      '--client-id',
      'argocd',
    );
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /aoa keys rotate: refused: PERMISSION_DENIED: administrators only/);
  });
});
