import { type ScopeReport, scopeReport, type UsageReport } from '../domain/usage.js';
import { json, type SqlDriver } from './driver.js';

/** Which apps and grants a report covers; empty fields match all. */
export interface ScopeReportFilter {
  env: string;
  app: string;
}

/** The scopes verifiers report in use, and the unused-scope report over the baselines and grants. */
export class UsageStore {
  constructor(private readonly db: SqlDriver) {}

  /** Records a report: each scope's first and last window, per app, environment and grant. */
  async record(report: UsageReport): Promise<void> {
    const values = report.scopes.map((_, i) => `($1,$2,$3,$${i + 6},$4,$5)`);
    await this.db.query(
      `INSERT INTO scope_usage (env, app, grant_id, scope, first_ms, last_ms) VALUES ${values.join(',')}
       ON CONFLICT (env, app, grant_id, scope) DO UPDATE SET
         first_ms = LEAST(scope_usage.first_ms, EXCLUDED.first_ms),
         last_ms = GREATEST(scope_usage.last_ms, EXCLUDED.last_ms)`,
      [report.env, report.app, report.grant_id ?? '', report.from_ms, report.to_ms, ...report.scopes],
    );
  }

  /**
   * For each app and environment issued to (its privilege baseline) and each live grant (its latest
   * `grant.created` / `grant.updated` event, unless `grant.deleted` followed), the scopes no verifier
   * has reported a request needing.
   */
  async report(filter: ScopeReportFilter): Promise<{ apps: ScopeReport[]; grants: ScopeReport[] }> {
    const matches = (env: string, app: string) =>
      (filter.env === '' || filter.env === env) && (filter.app === '' || filter.app === app);
    const used = new Map<string, Set<string>>();
    const add = (key: string, scope: string) => {
      const set = used.get(key) ?? new Set<string>();
      set.add(scope);
      used.set(key, set);
    };
    for (const r of await this.db.query<Record<string, unknown>>(
      'SELECT env, app, grant_id, scope FROM scope_usage',
    )) {
      add(`${r.env}\n${r.app}`, String(r.scope));
      if (r.grant_id) add(`grant\n${r.grant_id}`, String(r.scope));
    }
    const apps = (
      await this.db.query<Record<string, unknown>>(
        'SELECT app, env, scopes FROM privilege_baselines ORDER BY env, app',
      )
    )
      .filter((r) => matches(String(r.env), String(r.app)))
      .map((r) => {
        const key = { env: String(r.env), app: String(r.app), grantId: '' };
        return scopeReport(key, json<string[]>(r.scopes), used.get(`${key.env}\n${key.app}`) ?? new Set());
      });
    const live = new Map<string, { env: string; app: string; scopes: string[] }>();
    for (const r of await this.db.query<Record<string, unknown>>(
      `SELECT type, subject, data FROM audit_events
       WHERE type IN ('grant.created', 'grant.updated', 'grant.deleted') AND marker IS NULL ORDER BY seq, part`,
    )) {
      const id = String(r.subject);
      if (r.type === 'grant.deleted') {
        live.delete(id);
        continue;
      }
      const data = json<{ env?: unknown; app?: unknown; scopes?: unknown }>(r.data);
      if (typeof data.env !== 'string' || typeof data.app !== 'string' || !Array.isArray(data.scopes))
        continue;
      live.set(id, { env: data.env, app: data.app, scopes: data.scopes.map(String) });
    }
    const grants = [...live]
      .filter(([, g]) => matches(g.env, g.app))
      .sort(
        ([a, ga], [b, gb]) =>
          ga.env.localeCompare(gb.env) || ga.app.localeCompare(gb.app) || a.localeCompare(b),
      )
      .map(([id, g]) =>
        scopeReport({ env: g.env, app: g.app, grantId: id }, g.scopes, used.get(`grant\n${id}`) ?? new Set()),
      );
    return { apps, grants };
  }
}
