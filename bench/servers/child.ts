/**
 * The child side of the bench's process protocol: announce readiness as one marked JSON line on
 * stdout, and stop cleanly (so `--cpu-prof` can write its profile) on SIGTERM, SIGINT or when the
 * parent goes away (stdin closes).
 */
export const READY_MARKER = 'AOA_BENCH_READY ';

export function announce(info: Record<string, unknown>): void {
  process.stdout.write(`${READY_MARKER}${JSON.stringify(info)}\n`);
}

export function stopOn(stop: () => Promise<void> | void): void {
  let stopping = false;
  const run = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await stop();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void run());
  process.on('SIGINT', () => void run());
  process.stdin.on('end', () => void run());
  process.stdin.on('error', () => void run());
  process.stdin.resume();
}

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}
