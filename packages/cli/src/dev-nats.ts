import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { findNatsServerBinary, freePort, NATS_INSTALL_HINT } from '@aoa/testkit';

/** A nats-server child of `aoa dev`, with JetStream stored under `.aoa/nats`. */
export interface DevNats {
  url: string;
  stop(): Promise<void>;
}

export class MissingNatsServer extends Error {
  override readonly name = 'MissingNatsServer';
}

export async function startDevNats(storeDir: string): Promise<DevNats> {
  const binary = findNatsServerBinary();
  if (!binary) throw new MissingNatsServer(`nats-server not found: ${NATS_INSTALL_HINT}`);
  await mkdir(storeDir, { recursive: true });
  const port = await freePort();
  const child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  await waitForPort(child, port, () => stderr);
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function waitForPort(child: ChildProcess, port: number, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode}): ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('data', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('nats-server did not start within 15 s');
}
