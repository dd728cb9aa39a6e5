import { type ChildProcess, spawn } from 'node:child_process';

/**
 * A POSIX sh wrapper that starts the real program in the background, then watches its own stdin, a
 * pipe from this process. A line on stdin is a planned stop: kill the program, leave files alone.
 * End of file without a line means this process died (the kernel closed the pipe): kill the program
 * and remove `AOA_GUARD_CLEANUP_DIR`. The watcher reads a dup of stdin on fd 3 because sh gives a
 * background job /dev/null as its stdin.
 */
const GUARD_SCRIPT = `
"$0" "$@" </dev/null &
p=$!
trap 'kill $p 2>/dev/null' TERM INT HUP
exec 3<&0
(
  if read _ <&3; then kill $p 2>/dev/null; exit 0; fi
  kill $p 2>/dev/null
  while kill -0 $p 2>/dev/null; do sleep 0.1; done
  if [ -n "$AOA_GUARD_CLEANUP_DIR" ]; then rm -rf "$AOA_GUARD_CLEANUP_DIR"; fi
) </dev/null >/dev/null 2>&1 &
wait $p
`;

const OUTPUT_LINES_KEPT = 60;
const STOP_TIMEOUT_MS = 10_000;

/** Options of {@link spawnGuarded}. */
export interface GuardedProcessOptions {
  /** Removed by the wrapper if this process dies without stopping the child; never on `stop()`. */
  cleanupDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** A child process that cannot outlive this one; see {@link spawnGuarded}. */
export interface GuardedProcess {
  /** The wrapper's pid, also the id of the process group holding the program. */
  readonly pid: number;
  /** Settles with the exit code (or signal name) once the program, and so the wrapper, has exited. */
  readonly exited: Promise<number | string>;
  /** Whether the wrapper has exited. */
  hasExited(): boolean;
  /** The last lines the program wrote to stdout and stderr, for error messages. */
  outputTail(): string;
  /** Stops the program (SIGTERM, then SIGKILL to the group after 10 s) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Spawns `command` so that it dies with this process, even on SIGKILL, when no `finally` runs.
 *
 * @example
 * const proc = spawnGuarded('/usr/sbin/nats-server', ['-p', '4333']);
 * await proc.stop();
 */
export function spawnGuarded(
  command: string,
  args: readonly string[],
  options: GuardedProcessOptions = {},
): GuardedProcess {
  const env = { ...(options.env ?? process.env) };
  if (options.cleanupDir !== undefined) env.AOA_GUARD_CLEANUP_DIR = options.cleanupDir;
  // detached: the wrapper leads its own process group, so the last-resort SIGKILL reaches the program.
  const child = spawn('sh', ['-c', GUARD_SCRIPT, command, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
    env,
  });
  if (child.pid === undefined) throw new Error(`could not spawn sh to run ${command}`);
  const pid = child.pid;
  const tail = collectOutput(child);
  // The watcher may already be gone when we write; a broken pipe then is expected, not a failure.
  child.stdin?.on('error', () => {});

  let exitedFlag = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const releaseWatcher = (): void => {
    if (child.stdin?.writable) child.stdin.end('stop\n');
  };
  void exited.then(releaseWatcher);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      releaseWatcher();
      if (await settlesWithin(exited, STOP_TIMEOUT_MS)) return;
      killGroup(pid);
      await exited;
    })();
    return stopping;
  };

  return { pid, exited, hasExited: () => exitedFlag, outputTail: tail, stop };
}

function collectOutput(child: ChildProcess): () => string {
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > OUTPUT_LINES_KEPT) lines.splice(0, lines.length - OUTPUT_LINES_KEPT);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => lines.join('\n');
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is already gone.
  }
}
