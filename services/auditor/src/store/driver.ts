/** The few SQL operations the store needs, implemented over `pg` and over PGlite with the same SQL. */
export interface SqlDriver {
  readonly kind: 'postgres' | 'pglite';
  query<R extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Several statements without parameters (migrations). */
  exec(text: string): Promise<void>;
  close(): Promise<void>;
}

export interface SqlExecutor {
  query<R extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
}

/** A JSON column's value as `T`: parsed when the driver returns it as text, else as returned. */
export const json = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;

/**
 * Rows per multi-row statement: PostgreSQL takes at most 65,535 parameters in one, and no table here
 * has more than 12 columns.
 */
export const STATEMENT_ROWS = 1000;

/** `items` in slices of `size`, in order. */
export function* chunksOf<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
