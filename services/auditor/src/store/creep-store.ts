import type { RowContent } from '../domain/chain.js';
import {
  assessBatch,
  baselineKey,
  type CreepAlert,
  issuancesOf,
  type PrivilegeBaseline,
} from '../domain/creep.js';
import { chunksOf, json, type SqlDriver, type SqlExecutor, STATEMENT_ROWS } from './driver.js';

/** The privilege baselines and the outbox of creep alerts, over either driver. */
export class CreepStore {
  constructor(private readonly db: SqlDriver) {}

  /**
   * Inside the transaction that stores `rows`: widens the baselines of the apps they issued to and
   * queues an alert for each issuance that grew past its baseline. A batch without issuances costs
   * nothing.
   */
  async record(tx: SqlExecutor, rows: RowContent[]): Promise<number> {
    const issuances = issuancesOf(rows);
    if (issuances.length === 0) return 0;
    const pairs = new Map<string, [string, string]>();
    for (const { issuance } of issuances) {
      pairs.set(baselineKey(issuance.app, issuance.env), [issuance.app, issuance.env]);
    }
    const { changed, alerts } = assessBatch(await this.baselines(tx, [...pairs.values()]), issuances);
    const lastSeq = rows.at(-1)?.seq ?? 0;
    for (const chunk of chunksOf(changed, STATEMENT_ROWS)) {
      const values = chunk.map((_, i) => `(${[1, 2, 3, 4, 5, 6, 7].map((j) => `$${i * 7 + j}`).join(',')})`);
      await tx.query(
        `INSERT INTO privilege_baselines (app, env, scopes, audiences, max_ttl_seconds, max_depth, updated_seq)
         VALUES ${values.join(',')}
         ON CONFLICT (app, env) DO UPDATE SET scopes = EXCLUDED.scopes, audiences = EXCLUDED.audiences,
           max_ttl_seconds = EXCLUDED.max_ttl_seconds, max_depth = EXCLUDED.max_depth,
           updated_seq = EXCLUDED.updated_seq`,
        chunk.flatMap((b) => [
          b.app,
          b.env,
          JSON.stringify(b.scopes),
          JSON.stringify(b.audiences),
          b.maxTtlSeconds,
          b.maxDepth,
          lastSeq,
        ]),
      );
    }
    for (const alert of alerts) {
      await tx.query(
        'INSERT INTO creep_alerts (id, source_seq, subject, data) VALUES ($1,$2,$3,$4) ON CONFLICT (id) DO NOTHING',
        [alert.id, alert.sourceSeq, alert.subject, JSON.stringify(alert.data)],
      );
    }
    return alerts.length;
  }

  private async baselines(
    tx: SqlExecutor,
    pairs: Array<[string, string]>,
  ): Promise<Map<string, PrivilegeBaseline>> {
    const rows: Array<Record<string, unknown>> = [];
    for (const chunk of chunksOf(pairs, STATEMENT_ROWS)) {
      rows.push(
        ...(await tx.query<Record<string, unknown>>(
          `SELECT app, env, scopes, audiences, max_ttl_seconds, max_depth FROM privilege_baselines
           WHERE (app, env) IN (${chunk.map((_, i) => `($${i * 2 + 1},$${i * 2 + 2})`).join(',')})`,
          chunk.flat(),
        )),
      );
    }
    return new Map(
      rows.map((r) => {
        const baseline: PrivilegeBaseline = {
          app: String(r.app),
          env: String(r.env),
          scopes: json<string[]>(r.scopes),
          audiences: json<string[]>(r.audiences),
          maxTtlSeconds: Number(r.max_ttl_seconds),
          maxDepth: Number(r.max_depth),
        };
        return [baselineKey(baseline.app, baseline.env), baseline];
      }),
    );
  }

  /** Alerts not yet acknowledged by `AOA_AUDIT`, oldest first. */
  async unpublished(limit: number): Promise<CreepAlert[]> {
    const rows = await this.db.query<Record<string, unknown>>(
      'SELECT id, source_seq, subject, data FROM creep_alerts WHERE published_at IS NULL ORDER BY source_seq LIMIT $1',
      [limit],
    );
    return rows.map((r) => ({
      id: String(r.id),
      sourceSeq: Number(r.source_seq),
      subject: String(r.subject),
      data: json<Record<string, unknown>>(r.data),
    }));
  }

  async markPublished(id: string): Promise<void> {
    await this.db.query('UPDATE creep_alerts SET published_at = now() WHERE id = $1', [id]);
  }
}
