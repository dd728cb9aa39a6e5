import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dockerLooksAvailable, findNatsServerBinary } from './nats-binary.js';

describe('findNatsServerBinary', () => {
  it('prefers NATS_SERVER_BIN and says how to install when it names no executable', () => {
    assert.throws(
      () => findNatsServerBinary({ NATS_SERVER_BIN: '/nonexistent/nats-server' }),
      /NATS_SERVER_BIN=\/nonexistent\/nats-server .*apt-get install -y nats-server/,
    );
  });

  it('finds the binary on PATH, or in /usr/sbin when PATH lacks it', () => {
    const onPath = findNatsServerBinary({ PATH: '/usr/local/bin:/usr/sbin:/usr/bin' });
    assert.ok(onPath?.endsWith('/nats-server'));
    assert.equal(findNatsServerBinary({ PATH: '/nonexistent' }), '/usr/sbin/nats-server');
  });

  it('treats DOCKER_HOST as a reachable engine', () => {
    assert.equal(dockerLooksAvailable({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }), true);
  });
});
