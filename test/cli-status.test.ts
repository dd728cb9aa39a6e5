import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger } from '@aoa/core';
import { buildRevoker, loadRevokerConfig } from '@aoa/revoker';
import { freePort, type NatsServer, startNats } from '@aoa/testkit';
import { startDev } from '../packages/cli/src/dev.js';
import {
  formatStatus,
  probeNats,
  probeService,
  type ServiceState,
  serviceTargetsOf,
} from '../packages/cli/src/status.js';
import { aoa } from './support/cli.js';

const _ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('aoa status: flags and output', () => {
  it('takes --service NAME=URL and says precisely what is wrong with a bad one', () => {
    assert.deepEqual(serviceTargetsOf(['issuer=http://127.0.0.1:7402/', 'edge=https://edge.internal']), [
      { name: 'issuer', url: 'http://127.0.0.1:7402' },
      { name: 'edge', url: 'https://edge.internal' },
    ]);
    const usage = (...flags: string[]) => (serviceTargetsOf(flags) as { usage: string }).usage;
    assert.match(
      usage('http://127.0.0.1:7402'),
      /^--service "http:\/\/127\.0\.0\.1:7402": expected NAME=URL/,
    );
    assert.match(usage('Issuer=http://x'), /expected NAME=URL with a lowercase name/);
    assert.match(
      usage('issuer=127.0.0.1:7402'),
      /^--service issuer: "127\.0\.0\.1:7402" is not an http\(s\) URL/,
    );
    assert.match(usage('issuer=http://a', 'issuer=http://b'), /^--service issuer: given twice$/);
  });

  it('prints one aligned row per service with the problems or the reason', () => {
    const rows: ServiceState[] = [
      { service: 'issuer', url: 'http://a:1', state: 'ready' },
      { service: 'rotator', url: 'http://b:22', state: 'not ready', problems: ['nats', 'grants'] },
      { service: 'nats', url: 'nats://c:4222', state: 'down', reason: 'ECONNREFUSED' },
    ];
    assert.equal(
      formatStatus(rows),
      'SERVICE  URL            STATE\n' +
        'issuer   http://a:1     ready\n' +
        'rotator  http://b:22    not ready: nats; grants\n' +
        'nats     nats://c:4222  down: ECONNREFUSED\n',
    );
  });
});

describe('aoa status: probes', () => {
  let plain: NatsServer;
  before(async () => {
    plain = await startNats({ jetstream: false });
  });
  after(async () => {
    await plain?.stop();
  });

  it('NATS without JetStream is not ready; nothing listening is down', async () => {
    const noJs = await probeNats(plain.url);
    assert.equal(noJs.state, 'not ready');
    assert.match(noJs.problems?.[0] ?? '', /^JetStream: /);
    const closed = `127.0.0.1:${await freePort()}`;
    assert.equal((await probeNats(`nats://${closed}`)).state, 'down');
    assert.deepEqual(await probeService({ name: 'issuer', url: `http://${closed}` }), {
      service: 'issuer',
      url: `http://${closed}`,
      state: 'down',
      reason: 'ECONNREFUSED',
    });
  });
});

describe('aoa status against aoa dev', () => {
  let dir: string;
  let dev: Awaited<ReturnType<typeof startDev>>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aoa-cli-status-'));
    dev = await startDev({ dataDir: dir, logLevel: 'warn' });
  });
  after(async () => {
    await dev?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('everything ready: exit 0, and --json lists every service and NATS', async () => {
    const result = await aoa('status', '--dev', '--data-dir', dir, '--json');
    assert.equal(result.code, 0, result.stderr);
    const { facts } = dev;
    assert.deepEqual(JSON.parse(result.stdout), {
      ready: true,
      services: [
        { service: 'issuer', url: facts.issuer.http, state: 'ready' },
        { service: 'revoker', url: facts.revoker.http, state: 'ready' },
        { service: 'rotator', url: facts.rotator.http, state: 'ready' },
        { service: 'auditor', url: facts.auditor.http, state: 'ready' },
        { service: 'nats', url: facts.natsUrl, state: 'ready' },
      ],
    });
    const table = await aoa('status', '--dev', '--data-dir', dir);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^SERVICE\s+URL\s+STATE\n/);
    assert.equal(table.stdout.match(/ ready$/gm)?.length, 5);
  });

  it('a stopped service or no aoa dev: exit 4, naming it; bad --service syntax: exit 2', async () => {
    const revoker = await buildRevoker(
      loadRevokerConfig({
        NATS_URL: dev.facts.natsUrl,
        AOA_POLICY_FILE: dev.facts.policyFile,
        AOA_ISSUER_URL: dev.facts.issuer.issuer,
        AOA_REVOKER_GRPC_LISTEN: '127.0.0.1:0',
        AOA_REVOKER_HTTP_LISTEN: '127.0.0.1:0',
      }),
      { logger: createLogger({ service: 'revoker', level: 'silent' }) },
    ).start();
    const url = `http://127.0.0.1:${revoker.httpPort}`;
    const running = await aoa('status', '--dev', '--data-dir', dir, '--service', `revoker=${url}`);
    assert.equal(running.code, 0, running.stdout);
    await revoker.stop();
    const stopped = await aoa('status', '--dev', '--data-dir', dir, '--service', `revoker=${url}`);
    assert.equal(stopped.code, 4);
    assert.match(stopped.stdout, new RegExp(`^revoker\\s+${url}\\s+down: ECONNREFUSED$`, 'm'));
    assert.equal(stopped.stdout.match(/ ready$/gm)?.length, 4);
    const noDev = await aoa('status', '--dev', '--data-dir', join(dir, 'nowhere'));
    assert.equal(noDev.code, 4);
    assert.match(noDev.stderr, /is `aoa dev` \(npm start\) running\?/);
    const usage = await aoa('status', '--service', 'revoker');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^aoa status: --service "revoker": expected NAME=URL/);
  });
});
