import { AppError } from '@aoa/core';
import type { ChainRow, RowPosition } from '../domain/chain.js';
import { compileQuery, type QueryFilter } from '../domain/query.js';
import type { AuditStore } from '../store/audit-store.js';

const START: RowPosition = { seq: 0, part: 0 };

/** Stored events matching the filter, in stream order, one page. */
export async function queryEvents(store: AuditStore, filter: QueryFilter): Promise<ChainRow[]> {
  const { afterId } = compileQuery(filter, START);
  let after = START;
  if (afterId) {
    const position = await store.positionOfEvent(afterId);
    if (position === undefined) throw new AppError('invalid_argument', 'page_token: no such event');
    after = position;
  }
  const { where, params, limit } = compileQuery(filter, after);
  return store.select(where, params, limit);
}
