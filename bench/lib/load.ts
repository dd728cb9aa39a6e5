import { performance } from 'node:perf_hooks';
import { coreTimes, processCpuUs } from './procs.js';
import { quantile } from './stats.js';

/** Thrown by a call when its pre-signed inputs are used up; the worker stops instead of erroring. */
export class PoolExhausted extends Error {}

export interface LoadOptions {
  concurrency: number;
  warmupMs: number;
  measureMs: number;
  /** The server process whose CPU time is sampled over the measurement window. */
  serverPid: number;
  /** Also sampled, so that time it takes on core 0 is not mistaken for noise. */
  natsPid?: number | undefined;
}

export interface LoadResult {
  concurrency: number;
  /** Successful calls completed inside the measurement window. */
  count: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** Failed calls during warm-up and measurement; any makes the run invalid. */
  errors: number;
  firstError: string | undefined;
  exhausted: boolean;
  windowMs: number;
  /** The window on the monotonic clock (µs), the time base of V8 CPU profiles. */
  windowStartUs: number;
  windowEndUs: number;
  /** Server process CPU over the window as a share of one core, and per successful call. */
  serverCpuPct: number;
  serverCpuUsPerCall: number;
  /** Busy share of each core over the window (core 0: load generator + NATS; core 1: server). */
  corePct: number[];
  /** This (load generator) process's CPU over the window, as a share of one core. */
  loadgenCpuPct: number;
  natsCpuPct: number;
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * A closed loop: `concurrency` workers each issue a call, wait for it, and issue the next. Calls
 * completing inside the measurement window (after the warm-up) are counted and their latency kept.
 */
export async function closedLoop(call: () => Promise<void>, options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let measuring = false;
  let stopped = false;
  let errors = 0;
  let firstError: string | undefined;
  let exhausted = false;
  const probe = () => ({
    at: performance.now(),
    us: monotonicUs(),
    cpu: processCpuUs(options.serverPid),
    self: process.cpuUsage(),
    nats: options.natsPid === undefined ? 0 : processCpuUs(options.natsPid),
    cores: coreTimes(),
  });
  let start = probe();
  let end = start;

  const worker = async () => {
    while (!stopped) {
      const t0 = performance.now();
      try {
        await call();
      } catch (error) {
        if (error instanceof PoolExhausted) {
          exhausted = true;
          return;
        }
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        // A call that fails at once must not starve the timers that end the run.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (measuring) latencies.push(performance.now() - t0);
    }
  };
  const windowDone = new Promise<void>((resolve) => {
    setTimeout(() => {
      start = probe();
      measuring = true;
      setTimeout(() => {
        measuring = false;
        stopped = true;
        end = probe();
        resolve();
      }, options.measureMs);
    }, options.warmupMs);
  });
  await Promise.all([windowDone, ...Array.from({ length: options.concurrency }, worker)]);

  const sorted = Float64Array.from(latencies).sort();
  const windowMs = end.at - start.at;
  const cpuUs = end.cpu - start.cpu;
  return {
    concurrency: options.concurrency,
    count: sorted.length,
    rps: sorted.length / (windowMs / 1000),
    p50Ms: quantile(sorted, 0.5),
    p90Ms: quantile(sorted, 0.9),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted.at(-1) ?? Number.NaN,
    meanMs: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    errors,
    firstError,
    exhausted,
    windowMs,
    windowStartUs: start.us,
    windowEndUs: end.us,
    serverCpuPct: (cpuUs / (windowMs * 1000)) * 100,
    serverCpuUsPerCall: cpuUs / Math.max(1, sorted.length),
    loadgenCpuPct:
      ((end.self.user + end.self.system - start.self.user - start.self.system) / (windowMs * 1000)) * 100,
    natsCpuPct: ((end.nats - start.nats) / (windowMs * 1000)) * 100,
    corePct: end.cores.map((core, i) => {
      const before = start.cores[i] ?? { busy: 0, total: 0 };
      return ((core.busy - before.busy) / Math.max(1, core.total - before.total)) * 100;
    }),
  };
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}
