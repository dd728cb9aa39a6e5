import type { Logger } from '@aoa/core';
import { type JetStreamClient, type JetStreamManager, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SignedCheckpoint } from '../domain/checkpoint.js';

export const CHECKPOINT_STREAM = 'AOA_AUDIT_CHECKPOINTS';

/** The checkpoint stream: the copy of each chain head that the audit database cannot alter. */
export class CheckpointStream {
  private readonly js: JetStreamClient;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    readonly subject: string,
    private readonly replicas: number,
    private readonly log: Logger,
  ) {
    this.js = jetstream(nc);
  }

  async ensure(): Promise<void> {
    try {
      await this.jsm.streams.info(CHECKPOINT_STREAM);
    } catch {
      await this.jsm.streams.add({
        name: CHECKPOINT_STREAM,
        subjects: [this.subject],
        retention: 'limits',
        storage: 'file',
        deny_delete: true,
        deny_purge: true,
        num_replicas: this.replicas,
      });
    }
  }

  async publish(cp: SignedCheckpoint): Promise<void> {
    await this.js.publish(this.subject, JSON.stringify(cp), { msgID: `${cp.seq}-${cp.public_key}` });
  }

  /** Every checkpoint in the stream, oldest first. */
  async readAll(): Promise<SignedCheckpoint[]> {
    const info = await this.jsm.streams.info(CHECKPOINT_STREAM);
    const out: SignedCheckpoint[] = [];
    if (info.state.messages === 0) return out;
    const consumer = await this.js.consumers.get(CHECKPOINT_STREAM);
    const messages = await consumer.consume();
    for await (const m of messages) {
      try {
        out.push(m.json<SignedCheckpoint>());
      } catch {
        this.log.warn({ seq: m.seq }, 'unreadable checkpoint message');
      }
      if (m.seq >= info.state.last_seq) break;
    }
    await messages.close();
    void this.nc;
    return out;
  }
}
