import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestKey } from './oauth.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The CLI's entry point, run through tsx as `npx aoa` does. */
export const CLI_MAIN = join(ROOT, 'packages/cli/src/main.ts');

/** What one `aoa` run printed, and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `aoa` CLI as a child process (60 s at most) and resolves whatever it exits with. */
export function aoa(...args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI_MAIN, ...args],
      { cwd: ROOT, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A long-running `aoa` command (the agent sidecar): the process, all it printed so far, and its exit. */
export interface AoaProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the real `aoa` CLI as a child process that runs until it is signalled, its output collected. */
export function spawnAoa(...args: string[]): AoaProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Writes a test client's private JWK (what `--client-key` reads) to `dir/<clientId>.jwk`, mode 0600. */
export async function writeClientKey(
  dir: string,
  clientId: string,
  key: TestKey,
  kid: string,
): Promise<string> {
  const path = join(dir, `${clientId}.jwk`);
  const jwk = { ...key.privateKey.export({ format: 'jwk' }), kid, alg: key.alg };
  await writeFile(path, JSON.stringify(jwk), { mode: 0o600 });
  return path;
}
