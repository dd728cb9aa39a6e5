import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.js';

/** How often the server is asked for a PONG, and how long one may take before the bus counts as down. */
export const NATS_PROBE = { intervalMs: 1000, timeoutMs: 1000 } as const;

/**
 * Whether a service's NATS connection works right now, for `/readyz` (synchronous) and gRPC health.
 * A dropped socket shows at once (the client's `disconnect` status); a server that holds the socket but
 * stops answering shows within `intervalMs + timeoutMs`, because every `intervalMs` the server must
 * answer a PING within `timeoutMs`. The client's own ping (every 10 s, two missed) would take 20 s.
 *
 * @example
 * const probe = new NatsProbe(nc, log);
 * probe.start();
 * probe.problems(); // [] or ['nats disconnected from 127.0.0.1:4222 (reconnecting)']
 */
export class NatsProbe {
  private disconnected: string | undefined;
  private unanswered = false;
  private probing = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly timing: { intervalMs: number; timeoutMs: number } = NATS_PROBE,
  ) {}

  start(): void {
    void this.watch();
    this.timer = setInterval(() => void this.probe(), this.timing.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  problems(): string[] {
    if (this.nc.isClosed()) return ['nats connection closed'];
    if (this.disconnected !== undefined) return [this.disconnected];
    if (this.unanswered) return [`nats server not answering (no PONG within ${this.timing.timeoutMs} ms)`];
    return [];
  }

  private async watch(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.disconnected = `nats disconnected from ${status.server} (reconnecting)`;
      } else if (status.type === 'staleConnection') {
        this.disconnected = 'nats connection stale (reconnecting)';
      } else if (status.type === 'reconnect') {
        this.disconnected = undefined;
        void this.probe();
      }
    }
  }

  /** One PING at a time, and none while disconnected (a queued PING would only wait for the reconnect). */
  private async probe(): Promise<void> {
    if (this.probing || this.disconnected !== undefined || this.nc.isClosed()) return;
    this.probing = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answered = await Promise.race([
        this.nc.flush().then(
          () => true,
          () => false,
        ),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), this.timing.timeoutMs);
        }),
      ]);
      if (answered && this.unanswered) this.log.info('nats server answering again');
      if (!answered && !this.unanswered) {
        this.log.warn({ timeoutMs: this.timing.timeoutMs }, 'nats server not answering');
      }
      this.unanswered = !answered;
    } finally {
      clearTimeout(timer);
      this.probing = false;
    }
  }
}
