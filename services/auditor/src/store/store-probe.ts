import type { Logger } from '@aoa/core';
import type { SqlDriver } from './driver.js';

/**
 * Asks the store `SELECT 1` every `intervalMs` and keeps the answer, so `/readyz` (synchronous) can
 * say whether the store is reachable. A probe still running when the next is due is not doubled.
 *
 * @example
 * const probe = new StoreProbe(db, 1000, log);
 * probe.start();
 * probe.problems(); // [] or ['audit store unreachable']
 */
export class StoreProbe {
  private problem: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    private readonly db: SqlDriver,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.probe();
    this.timer = setInterval(() => void this.probe(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  problems(): string[] {
    return this.problem === undefined ? [] : [this.problem];
  }

  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await this.db.query('SELECT 1');
      if (this.problem !== undefined) this.log.info('audit store reachable again');
      this.problem = undefined;
    } catch (error) {
      if (this.problem === undefined) {
        this.log.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'audit store unreachable',
        );
      }
      this.problem = 'audit store unreachable';
    } finally {
      this.probing = false;
    }
  }
}
