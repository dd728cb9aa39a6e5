import { type Clock, type Logger, STREAMS } from '@aoa/core';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { chainRows, GENESIS_HASH } from '../domain/chain.js';
import type { CheckpointSigner } from '../domain/checkpoint.js';
import type { AuditorMetrics } from '../metrics.js';
import type { CheckpointStream } from '../nats/checkpoint-stream.js';
import { type AuditStore, ChainConflictError, FencedError, type WriterEpoch } from '../store/audit-store.js';
import type { CreepStore } from '../store/creep-store.js';
import { eventIds, type ParsedBatch, parseBatch, planBatch } from './batch.js';
import type { CreepAlertOutbox } from './creep-alerts.js';
import { StopWaits } from './stop-waits.js';

/** The most message bytes one write batch takes (about 6,000 events of a DelegateBatch). */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024;

export interface IngestOptions {
  /** The lease this session writes under; every commit is fenced by it. */
  writer: WriterEpoch;
  consumer: string;
  prefix: string;
  batchSize: number;
  flushMs: number;
  maxEventBytes: number;
  gapRetryMs: number;
  checkpointEvery: number;
  checkpointIntervalMs: number;
}

export interface IngestDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  store: AuditStore;
  signer: CheckpointSigner;
  checkpoints: CheckpointStream;
  /** Privilege baselines, updated with each batch; alerts published after the commit. */
  creep: { store: CreepStore; outbox: CreepAlertOutbox };
  metrics: AuditorMetrics;
  clock: Clock;
  log: Logger;
}

/** Unreferenced: a pending wait never holds the process open. */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * One writer's tenure: pulls from the durable consumer in bounded batches (size or time, whichever
 * first), links each batch onto the chain, commits it in one transaction and only then acknowledges.
 * While the database refuses writes the batch is held (marked in progress) and retried, so nothing
 * more is pulled and the backlog stays in JetStream. Every commit is fenced by the writer's lease
 * epoch: once a newer writer has taken over, this one's commit fails, its batch goes back to
 * JetStream and the session ends.
 */
export class IngestSession {
  private readonly waits = new StopWaits();
  private readonly stopped: Promise<void>;
  private messages: ConsumerMessages | undefined;
  private expected = 1;
  private headHash = GENESIS_HASH;
  private checkpointed = { seq: 0, atMs: 0 };
  /** Rows committed since the last checkpoint: a batch message's events are rows of one sequence. */
  private uncheckpointedRows = 0;

  constructor(
    private readonly options: IngestOptions,
    private readonly deps: IngestDeps,
  ) {
    this.stopped = this.run().catch((error: unknown) => {
      deps.log.error({ err: error }, 'ingest session ended by an error');
    });
  }

  /** Stops pulling, returns unprocessed messages to JetStream, and writes a last checkpoint. */
  async stop(): Promise<void> {
    this.waits.stop();
    this.messages?.stop();
    await this.stopped;
  }

  get done(): Promise<void> {
    return this.stopped;
  }

  private async run(): Promise<void> {
    const { log } = this.deps;
    if (!(await this.deps.store.raiseFence(this.options.writer))) {
      log.warn({ epoch: this.options.writer.epoch }, 'a newer writer holds the fence: not writing');
      return;
    }
    await this.loadHead();
    const consumer = await this.deps.js.consumers.get(STREAMS.audit, this.options.consumer);
    const messages = await consumer.consume({ max_messages: this.options.batchSize });
    this.messages = messages;
    const iterator = messages[Symbol.asyncIterator]();
    log.info({ nextSeq: this.expected }, 'writing the audit chain');
    let next = iterator.next();
    while (!this.waits.stopping) {
      const first = await this.waits.within(next, this.options.checkpointIntervalMs);
      if (this.waits.stopping || first?.done) break;
      if (!first) {
        await this.maybeCheckpoint(true);
        continue;
      }
      const batch: JsMsg[] = [first.value];
      let bytes = first.value.data.byteLength;
      next = iterator.next();
      const deadline = this.deps.clock.nowMs() + this.options.flushMs;
      // Batch messages hold up to 1,024 events: bytes bound what one transaction writes, as count does.
      while (batch.length < this.options.batchSize && bytes < WRITE_BATCH_BYTES && !this.waits.stopping) {
        const wait = deadline - this.deps.clock.nowMs();
        if (wait <= 0) break;
        const more = await this.waits.within(next, wait);
        if (!more || more.done) break;
        batch.push(more.value);
        bytes += more.value.data.byteLength;
        next = iterator.next();
      }
      await this.writeBatch(batch);
      await this.maybeCheckpoint(false);
    }
    messages.stop();
    // Messages already delivered to this client go straight back to JetStream for the next writer.
    for (;;) {
      const rest = await Promise.race([next, sleep(50)]);
      if (!rest || rest.done) break;
      rest.value.nak();
      next = iterator.next();
    }
    await messages.closed();
    await this.maybeCheckpoint(true);
  }

  private async loadHead(): Promise<void> {
    const head = await this.deps.store.head();
    if (head) {
      this.expected = head.seq + 1;
      this.headHash = head.hash;
    } else {
      const info = await this.deps.jsm.streams.info(STREAMS.audit);
      this.expected = Math.max(1, info.state.first_seq);
      this.headHash = GENESIS_HASH;
    }
  }

  private async writeBatch(batch: JsMsg[]): Promise<void> {
    const { store, metrics, log, clock } = this.deps;
    let backoffMs = 100;
    const parsed = parseBatch(batch, {
      prefix: this.options.prefix,
      maxEventBytes: this.options.maxEventBytes,
    });
    // Stored duplicates are rare (JetStream drops repeats within its 2-minute window): look them up
    // only after an insert was refused.
    let lookUpIds = false;
    for (;;) {
      try {
        const storedIds = lookUpIds ? await store.existingIds(eventIds(parsed)) : new Set<string>();
        const streamFirstSeq = await this.lostBefore(parsed);
        const plan = planBatch(parsed, this.expected, {
          prefix: this.options.prefix,
          nowIso: new Date(clock.nowMs()).toISOString(),
          storedIds,
          stream: STREAMS.audit,
          ...(streamFirstSeq === undefined ? {} : { streamFirstSeq }),
        });
        if (plan.rows.length === 0 && plan.deferred.length > 0 && (await this.caughtUpFromStore())) continue;
        const rows = chainRows(this.headHash, plan.rows);
        let alerts = 0;
        await store.append(this.options.writer, rows, plan.deadLetters, async (tx) => {
          alerts = await this.deps.creep.store.record(tx, rows);
        });
        if (alerts > 0) void this.deps.creep.outbox.flush();
        for (const m of plan.alreadyStored) m.ack();
        for (const m of plan.toStore) m.ack();
        for (const m of plan.deferred) m.nak(this.options.gapRetryMs);
        const last = rows.at(-1);
        if (last) {
          this.headHash = last.hash;
          this.expected = plan.nextSeq;
          this.uncheckpointedRows += rows.length;
        }
        const now = clock.nowMs();
        for (const m of plan.toStore)
          metrics.lag.observe(Math.max(0, now - m.info.timestampNanos / 1e6) / 1000);
        metrics.stored.inc(rows.filter((r) => r.marker === null).length);
        metrics.backlog.set(batch.at(-1)?.info.pending ?? 0);
        metrics.markers.inc({ kind: 'duplicate' }, rows.filter((r) => r.marker === 'duplicate').length);
        metrics.markers.inc({ kind: 'dead_letter' }, plan.deadLetters.length);
        const lost = rows.filter((r) => r.marker === 'lost');
        metrics.markers.inc({ kind: 'lost' }, lost.length);
        metrics.headSeq.set(this.expected - 1);
        for (const row of lost) {
          log.error(
            { fromSeq: row.data.from_seq, toSeq: row.data.to_seq },
            'audit events lost: the stream discarded them before they were stored',
          );
        }
        if (plan.deadLetters.length > 0) {
          log.warn({ seqs: plan.deadLetters.map((d) => d.seq) }, 'audit messages dead-lettered');
        }
        if (plan.deferred.length > 0) {
          log.debug(
            { expected: this.expected, deferred: plan.deferred.length },
            'waiting for an earlier sequence',
          );
        }
        return;
      } catch (error) {
        if (error instanceof FencedError) {
          log.warn({ err: error.message }, 'fenced: a newer writer took over, returning the batch');
          for (const m of batch) m.nak();
          this.waits.stop();
          return;
        }
        metrics.writeFailures.inc();
        if (this.waits.stopping) {
          for (const m of batch) m.nak();
          return;
        }
        log.warn(
          {
            err: error instanceof Error ? error.message : String(error),
            retryMs: backoffMs,
            size: batch.length,
          },
          error instanceof ChainConflictError
            ? 'audit chain moved under this writer'
            : 'audit store refused a batch',
        );
        for (const m of batch) m.working();
        lookUpIds = true;
        await sleep(backoffMs);
        backoffMs = Math.min(5000, backoffMs * 2);
        const committed = this.expected;
        await this.loadHead().catch(() => undefined);
        if (this.expected < committed) {
          // Only a hand on the database removes committed rows: go on from what is there, and say so.
          log.error(
            { from: committed - 1, to: this.expected - 1 },
            'the audit chain head moved back: rows this writer committed are gone (VerifyChain names them)',
          );
        }
      }
    }
  }

  /**
   * Whether the store's head has moved past where this session believed it was (another writer, since
   * fenced, committed first): then the position is re-read and the batch planned again, rather than
   * waiting for sequences that are already stored.
   */
  private async caughtUpFromStore(): Promise<boolean> {
    const before = this.expected;
    await this.loadHead();
    if (this.expected === before) return false;
    this.deps.log.info(
      { from: before, to: this.expected },
      'the store is ahead of this writer: position re-read',
    );
    return true;
  }

  /**
   * When the batch skips past the expected sequence and the stream no longer holds it (its age or
   * size limit discarded it unstored), the first sequence still to be had; otherwise undefined, and
   * the messages past the gap wait for a redelivery.
   */
  private async lostBefore(batch: ParsedBatch): Promise<number | undefined> {
    const next = batch.find(({ m }) => m.seq >= this.expected);
    if (next === undefined || next.m.seq === this.expected) return undefined;
    try {
      const { first_seq } = (await this.deps.jsm.streams.info(STREAMS.audit)).state;
      return first_seq > this.expected ? Math.min(first_seq, next.m.seq) : undefined;
    } catch (error) {
      this.deps.log.debug(
        { err: error instanceof Error ? error.message : String(error) },
        'stream info failed',
      );
      return undefined;
    }
  }

  private async maybeCheckpoint(force: boolean): Promise<void> {
    const seq = this.expected - 1;
    if (force) await this.deps.creep.outbox.flush();
    if (seq <= this.checkpointed.seq || this.headHash === GENESIS_HASH) return;
    const now = this.deps.clock.nowMs();
    const due =
      force ||
      this.uncheckpointedRows >= this.options.checkpointEvery ||
      now - this.checkpointed.atMs >= this.options.checkpointIntervalMs;
    if (!due) return;
    const cp = this.deps.signer.sign({ seq, hash: this.headHash, time: new Date(now).toISOString() });
    try {
      await this.deps.checkpoints.publish(cp);
      await this.deps.store.saveCheckpoint({
        seq: cp.seq,
        hash: cp.hash,
        time: cp.time,
        publicKey: cp.public_key,
        signature: cp.signature,
      });
      this.checkpointed = { seq, atMs: now };
      this.uncheckpointedRows = 0;
      this.deps.metrics.checkpoints.inc();
    } catch (error) {
      this.deps.metrics.checkpointFailures.inc();
      this.deps.log.warn(
        { err: error instanceof Error ? error.message : String(error), seq },
        'checkpoint not published',
      );
    }
  }
}
