import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

const CLOSE_DEADLINE_MS = 10_000;

/** A child node process that starts a server, prints its address, then waits to be killed. */
const HOLDER = `
const { startNats } = await import(${JSON.stringify(new URL('./index.ts', import.meta.url).href)});
const nats = await startNats();
process.stdout.write(JSON.stringify({ port: nats.port, storeDir: nats.storeDir }) + '\\n');
setInterval(() => {}, 1_000);
`;

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('a server started by a process that is SIGKILLed', () => {
  it('stops accepting connections and loses its store directory', async () => {
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', HOLDER], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [line] = (await once(holder.stdout, 'data')) as [Buffer];
      const { port, storeDir } = JSON.parse(line.toString('utf8')) as { port: number; storeDir: string };
      assert.equal(await accepts(port), true);

      holder.kill('SIGKILL');
      await once(holder, 'exit');

      const deadline = Date.now() + CLOSE_DEADLINE_MS;
      while ((await accepts(port)) || existsSync(storeDir)) {
        assert.ok(Date.now() < deadline, `port ${port} still open or ${storeDir} still there`);
        await sleep(50);
      }
    } finally {
      holder.kill('SIGKILL');
    }
  });
});
