import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { READY_MARKER } from '../servers/child.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const TAIL_LINES = 40;
const NEXT_TIMEOUT_MS = 120_000;

/** Pins every thread of this process to one core; children it spawns inherit the mask. */
export function pinSelf(core: number): void {
  execFileSync('taskset', ['-a', '-cp', String(core), String(process.pid)], { stdio: 'ignore' });
}

/** A server under test in its own process, pinned to one core. */
export interface PinnedChild<T> {
  readonly name: string;
  readonly pid: number;
  readonly info: T;
  /** SIGTERM, wait for a clean exit (profiles are written then), SIGKILL after a timeout. */
  stop(): Promise<number | string>;
}

/**
 * Runs `node [nodeArgs] --import tsx <script>` under `taskset -c <core>` (taskset execs node, so the
 * pid is node's) and resolves with the JSON the script announces. Its other output is kept, and
 * shown when it fails; lines that look like warnings or errors are passed on at once.
 */
export function startPinnedChild<T>(
  name: string,
  script: string,
  options: { core: number; env?: Record<string, string>; nodeArgs?: string[] },
): Promise<PinnedChild<T>> {
  const args = ['-c', String(options.core), process.execPath, ...(options.nodeArgs ?? []), '--import', 'tsx'];
  const child = spawn('taskset', [...args, script], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name}: not ready after ${READY_TIMEOUT_MS} ms\n${tail.join('\n')}`));
    }, READY_TIMEOUT_MS);
    const onLine = (line: string, stream: 'stdout' | 'stderr') => {
      if (stream === 'stdout' && line.startsWith(READY_MARKER)) {
        clearTimeout(timer);
        const info = JSON.parse(line.slice(READY_MARKER.length)) as T;
        resolve({ name, pid: child.pid ?? -1, info, stop: () => stopChild(child, exited) });
        return;
      }
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      if (/"level":(40|50|60)|error|fatal/i.test(line)) console.error(`[${name}] ${line}`);
    };
    lines(child, 'stdout', onLine);
    lines(child, 'stderr', onLine);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name}: exited (${code}) before it was ready\n${tail.join('\n')}`));
    });
  });
}

function lines(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  onLine: (line: string, s: typeof stream) => void,
) {
  let buffered = '';
  child[stream]?.setEncoding('utf8');
  child[stream]?.on('data', (chunk: string) => {
    buffered += chunk;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim() !== '') onLine(line, stream);
      newline = buffered.indexOf('\n');
    }
  });
}

async function stopChild(child: ChildProcess, exited: Promise<number | string>): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A forked child with an IPC channel; `next(type)` resolves the next message of that type. */
export interface ForkedChild {
  readonly child: ChildProcess;
  /** Resolves when the child exits. */
  readonly exited: Promise<void>;
  send(message: unknown): boolean;
  /** The oldest queued or next message of `type`; rejects after `timeoutMs` or if the child exits first. */
  next<T = Record<string, unknown>>(type: string, timeoutMs?: number): Promise<T>;
}

/**
 * Forks `node --import tsx <script>` (relative to the repo root) with an IPC channel and its stdout and
 * stderr inherited. Messages are matched on their `type`; with `logErrors`, `error` messages are also
 * printed as they arrive.
 */
export function forkChild(
  script: string,
  env: Record<string, string>,
  options: { logErrors?: boolean } = {},
): ForkedChild {
  const child: ChildProcess = fork(join(REPO_ROOT, script), [], {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<string, Array<(m: Record<string, unknown>) => void>>();
  const queued = new Map<string, Array<Record<string, unknown>>>();
  child.on('message', (m: Record<string, unknown>) => {
    const type = String(m.type);
    if (options.logErrors && type === 'error') console.error(`[${script}] ${String(m.error)}`);
    const w = waiting.get(type)?.shift();
    if (w) w(m);
    else queued.set(type, [...(queued.get(type) ?? []), m]);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    exited,
    send: (m: unknown) => child.send(m as object),
    next: <T = Record<string, unknown>>(type: string, timeoutMs = NEXT_TIMEOUT_MS): Promise<T> => {
      const q = queued.get(type)?.shift();
      if (q) return Promise.resolve(q as T);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${script}: no ${type} after ${timeoutMs} ms`)),
          timeoutMs,
        );
        void exited.then(() => reject(new Error(`${script}: exited while waiting for ${type}`)));
        waiting.set(type, [
          ...(waiting.get(type) ?? []),
          (m) => {
            clearTimeout(timer);
            resolve(m as T);
          },
        ]);
      });
    },
  };
}

const CLOCK_TICKS_PER_SECOND = 100;

/** User + system CPU time of a process so far, in microseconds (from /proc/<pid>/stat). */
export function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / CLOCK_TICKS_PER_SECOND;
}

/** Busy and total jiffies per core, from /proc/stat. */
export function coreTimes(): Array<{ busy: number; total: number }> {
  const cores: Array<{ busy: number; total: number }> = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const match = /^cpu(\d+) (.*)$/.exec(line);
    if (!match) continue;
    const v = (match[2] ?? '').trim().split(/\s+/).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    cores[Number(match[1])] = { busy: total - idle, total };
  }
  return cores;
}

/** Resident set size of a process, in MB (VmRSS of /proc/<pid>/status). */
export function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
  return line ? Number(line[1]) / 1024 : Number.NaN;
}
