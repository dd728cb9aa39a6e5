import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Builds the named services (all of them and the CLI without names) into their `dist/main.js`. */
export function buildServices(...names: string[]): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), ...names], { cwd: ROOT });
}

/** A service started from its build, `node services/<name>/dist/main.js`. */
export interface ServiceProcess {
  child: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  output: () => string;
  exited: Promise<number | null>;
}

/** `node services/<name>/dist/main.js` with `env`, its JSON log lines collected. */
export function startBuilt(name: string, env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, [join(ROOT, 'services', name, 'dist', 'main.js')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, lines, output: () => out, exited };
}

export async function waitForLog(
  p: ServiceProcess,
  msg: string | string[],
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 60_000;
  const wanted = Array.isArray(msg) ? msg : [msg];
  for (;;) {
    const line = p.lines().find((l) => wanted.includes(String(l.msg)));
    if (line) return line;
    if (p.child.exitCode !== null) throw new Error(`exited ${p.child.exitCode} before logging "${msg}"`);
    if (Date.now() > deadline) throw new Error(`no "${msg}" log line`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
