import type { ChainRow, MarkerKind, RowPosition } from '../domain/chain.js';
import { chunksOf, type SqlDriver, type SqlExecutor, STATEMENT_ROWS } from './driver.js';

export interface DeadLetter {
  seq: number;
  /** The event's part of a batch message; 0 for a whole message. */
  part: number;
  natsSubject: string;
  reason: string;
  raw: Uint8Array;
}

export interface StoredCheckpoint {
  seq: number;
  hash: string;
  time: string;
  publicKey: string;
  signature: string;
}

/** The chain changed under this writer (another writer committed): reload the head and retry. */
export class ChainConflictError extends Error {
  override readonly name = 'ChainConflictError';
}

/** Another writer took the lease since this one did: it must not commit (its batch is returned). */
export class FencedError extends Error {
  override readonly name = 'FencedError';
}

/** A writer's claim on the chain: the lease epoch it took, checked by every commit. */
export interface WriterEpoch {
  epoch: number;
  holder: string;
}

const COLUMNS = 12;
const ROW_SELECT = `seq, part, parts, id, type, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time,
  source, subject, data, prev_hash, hash, marker`;

/**
 * The audit tables over either driver, with the same SQL. `stallMs` bounds what a writer's
 * transaction may hold: a writer stopped in the middle of one (paused, partitioned) has its session
 * ended by the database after that long idle, so its locks never hold up the writer taking over.
 */
export class AuditStore {
  private readonly stallMs: number;

  constructor(
    readonly db: SqlDriver,
    options: { stallMs?: number } = {},
  ) {
    this.stallMs = Math.max(100, Math.trunc(options.stallMs ?? 10_000));
  }

  /** Bounds this transaction's waits for locks and its idle time (PostgreSQL settings, also PGlite). */
  private async bounded(tx: SqlExecutor): Promise<void> {
    await tx.query(`SET LOCAL lock_timeout = ${this.stallMs}`);
    await tx.query(`SET LOCAL idle_in_transaction_session_timeout = ${this.stallMs}`);
  }

  /** The last row of the chain, or undefined when the store is empty. */
  async head(executor: SqlExecutor = this.db): Promise<{ seq: number; hash: string } | undefined> {
    const rows = await executor.query<{ seq: unknown; hash: string }>(
      'SELECT seq, hash FROM audit_events ORDER BY seq DESC, part DESC LIMIT 1',
    );
    const row = rows[0];
    return row ? { seq: Number(row.seq), hash: row.hash } : undefined;
  }

  /** Which of these event ids are already stored (one array parameter, however many ids). */
  async existingIds(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.query<{ id: string }>(
      'SELECT id FROM audit_events WHERE id = ANY($1::text[])',
      [ids],
    );
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Raises the writer fence to `writer.epoch`; false when the fence already holds a later epoch (a
   * newer writer took over since this one's lease), and this writer must not write.
   */
  async raiseFence(writer: WriterEpoch): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      await this.bounded(tx);
      const rows = await tx.query<{ epoch: unknown }>(
        `INSERT INTO writer_fence (id, epoch, holder) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, holder = EXCLUDED.holder, taken_at = now()
         WHERE writer_fence.epoch <= EXCLUDED.epoch RETURNING epoch`,
        [writer.epoch, writer.holder],
      );
      return rows.length === 1;
    });
  }

  /**
   * Appends linked rows and their dead letters in one transaction with multi-row INSERTs, after
   * checking, in that transaction, that the writer fence still holds `writer`'s epoch (else
   * {@link FencedError}) and that the chain head is still the one the rows were linked to (else
   * {@link ChainConflictError}). `alongside` runs in the same transaction (derived tables such as the
   * privilege baselines).
   */
  async append(
    writer: WriterEpoch,
    rows: ChainRow[],
    deadLetters: DeadLetter[],
    alongside?: (tx: SqlExecutor) => Promise<unknown>,
  ): Promise<void> {
    const first = rows[0];
    if (!first) return;
    await this.db.transaction(async (tx) => {
      await this.bounded(tx);
      const fence = await tx.query<{ epoch: unknown; holder: string }>(
        'SELECT epoch, holder FROM writer_fence WHERE id = 1 FOR UPDATE',
      );
      const current = fence[0];
      if (!current || Number(current.epoch) !== writer.epoch) {
        throw new FencedError(
          `writer fence is at epoch ${current ? `${current.epoch} (${current.holder})` : 'none'}, not ${writer.epoch}`,
        );
      }
      const head = await this.head(tx);
      if ((head?.hash ?? first.prevHash) !== first.prevHash || (head && head.seq >= first.seq)) {
        throw new ChainConflictError(`chain head moved to seq ${head?.seq}`);
      }
      for (const chunk of chunksOf(rows, STATEMENT_ROWS)) await insertRows(tx, chunk);
      for (const chunk of chunksOf(deadLetters, STATEMENT_ROWS)) {
        const values = chunk.map((_, j) => `(${[1, 2, 3, 4, 5].map((k) => `$${j * 5 + k}`).join(',')})`);
        await tx.query(
          `INSERT INTO dead_letters (seq, part, nats_subject, reason, raw) VALUES ${values.join(',')}`,
          chunk.flatMap((d) => [d.seq, d.part, d.natsSubject, d.reason, d.raw]),
        );
      }
      await alongside?.(tx);
    });
  }

  async saveCheckpoint(cp: StoredCheckpoint): Promise<void> {
    await this.db.query(
      'INSERT INTO checkpoints (seq, hash, time, public_key, signature) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (seq) DO NOTHING',
      [cp.seq, cp.hash, cp.time, cp.publicKey, cp.signature],
    );
  }

  /** Up to `limit` rows after `after`, in chain order. */
  async rowsAfter(after: RowPosition, limit: number): Promise<ChainRow[]> {
    const rows = await this.db.query(
      `SELECT ${ROW_SELECT} FROM audit_events WHERE (seq, part) > ($1, $2) ORDER BY seq, part LIMIT $3`,
      [after.seq, after.part, limit],
    );
    return rows.map(toChainRow);
  }

  /** Rows matching a WHERE clause built by the caller from fixed fragments and `$n` parameters. */
  async select(where: string, params: unknown[], limit: number): Promise<ChainRow[]> {
    const rows = await this.db.query(
      `SELECT ${ROW_SELECT} FROM audit_events WHERE ${where} ORDER BY seq, part LIMIT ${Math.trunc(limit)}`,
      params,
    );
    return rows.map(toChainRow);
  }

  async positionOfEvent(id: string): Promise<RowPosition | undefined> {
    const rows = await this.db.query<{ seq: unknown; part: unknown }>(
      'SELECT seq, part FROM audit_events WHERE id = $1',
      [id],
    );
    const row = rows[0];
    return row ? { seq: Number(row.seq), part: Number(row.part) } : undefined;
  }

  async deadLetters(): Promise<Array<{ seq: number; part: number; reason: string; natsSubject: string }>> {
    const rows = await this.db.query<{ seq: unknown; part: unknown; reason: string; nats_subject: string }>(
      'SELECT seq, part, reason, nats_subject FROM dead_letters ORDER BY seq, part',
    );
    return rows.map((r) => ({
      seq: Number(r.seq),
      part: Number(r.part),
      reason: r.reason,
      natsSubject: r.nats_subject,
    }));
  }
}

async function insertRows(tx: SqlExecutor, rows: ChainRow[]): Promise<void> {
  const values = rows.map((_, i) => {
    const b = i * COLUMNS;
    return `(${Array.from({ length: COLUMNS }, (_, j) => `$${b + j + 1}`).join(',')})`;
  });
  await tx.query(
    `INSERT INTO audit_events (seq, part, parts, id, type, time, source, subject, data, prev_hash, hash, marker) VALUES ${values.join(',')}`,
    rows.flatMap((r) => [
      r.seq,
      r.part,
      r.parts,
      r.id,
      r.type,
      r.time,
      r.source,
      r.subject,
      JSON.stringify(r.data),
      r.prevHash,
      r.hash,
      r.marker,
    ]),
  );
}

function toChainRow(r: Record<string, unknown>): ChainRow {
  const data = typeof r.data === 'string' ? (JSON.parse(r.data) as unknown) : r.data;
  return {
    seq: Number(r.seq),
    part: Number(r.part),
    parts: Number(r.parts),
    id: (r.id as string | null) ?? null,
    type: String(r.type),
    time: String(r.time),
    source: String(r.source),
    subject: String(r.subject),
    data: (data ?? {}) as Record<string, unknown>,
    marker: (r.marker as MarkerKind | null) ?? null,
    prevHash: String(r.prev_hash),
    hash: String(r.hash),
  };
}
