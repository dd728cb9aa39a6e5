import type { Logger } from '@aoa/core';
import type { AuditorConfig } from '../config.js';
import type { AuditorMetrics } from '../metrics.js';
import type { WriterLease } from '../nats/lease.js';
import type { WriterEpoch } from '../store/audit-store.js';
import type { IngestSession } from './session.js';

/** Keeps trying the lease; runs an ingest session while held, ends it the moment the lease is lost. */
export class WriterLoop {
  active = false;
  private session: IngestSession | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private ticking: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: AuditorConfig,
    private readonly lease: WriterLease,
    private readonly newSession: (writer: WriterEpoch) => IngestSession,
    private readonly metrics: AuditorMetrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.ticking = this.tick().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.config.leaseTtlMs / 3);
      });
    };
    tick();
  }

  private async tick(): Promise<void> {
    try {
      const held = await this.lease.tryAcquire();
      if (held && !this.session) {
        this.log.info({ epoch: this.lease.epoch }, 'writer lease taken');
        this.session = this.newSession({ epoch: this.lease.epoch, holder: this.lease.holder });
        this.active = true;
        this.metrics.writer.set(1);
        const session = this.session;
        void session.done.then(() => {
          if (this.session === session) {
            this.session = undefined;
            this.active = false;
            this.metrics.writer.set(0);
          }
        });
      } else if (!held && this.session) {
        this.log.warn('writer lease lost: standing by');
        await this.endSession();
      }
    } catch (error) {
      this.log.error({ err: error }, 'writer lease loop failed');
    }
  }

  private async endSession(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    this.active = false;
    this.metrics.writer.set(0);
    await session?.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    clearTimeout(this.timer);
    await this.endSession();
    await this.lease.release();
  }
}
