import { AppError } from '@aoa/core';
import type { ChainRow } from '../domain/chain.js';
import { compileQuery, type QueryFilter } from '../domain/query.js';
import type { AuditStore } from '../store/audit-store.js';

/** Stored events matching the filter, in stream order, one page. */
export async function queryEvents(store: AuditStore, filter: QueryFilter): Promise<ChainRow[]> {
  let afterSeq = 0;
  const compiled = compileQuery(filter, afterSeq);
  if (compiled.afterId) {
    const seq = await store.seqOfEvent(compiled.afterId);
    if (seq === undefined) throw new AppError('invalid_argument', 'page_token: no such event');
    afterSeq = seq;
  }
  const { where, params, limit } = compileQuery(filter, afterSeq);
  return store.select(where, params, limit);
}
