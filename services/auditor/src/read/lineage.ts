import { AppError } from '@aoa/core';
import type { ChainRow } from '../domain/chain.js';
import { ancestorsOf, type LineageNode, toGrantNode, toLineageNode } from '../domain/lineage.js';
import type { AuditStore } from '../store/audit-store.js';

const MAX_NODES = 1000;
const ISSUED = "type = 'delegation.issued' AND marker IS NULL";

/** The chain above a token (root first) and the tree of tokens delegated from it. */
export async function lineageOf(
  store: AuditStore,
  jti: string,
): Promise<{ ancestors: LineageNode[]; node: LineageNode }> {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(jti)) throw new AppError('invalid_argument', 'jti: malformed');
  const issued = async (jtis: string[], column: 'jti' | 'parent_jti'): Promise<ChainRow[]> =>
    jtis.length === 0
      ? []
      : store.select(
          `${ISSUED} AND data->>'${column}' IN (${jtis.map((_, i) => `$${i + 1}`).join(',')})`,
          jtis,
          MAX_NODES,
        );
  // A token a grant minted has no issuance of its own: it is a root, found in its grant.minted event.
  const mintedRow = async (token: string): Promise<ChainRow | undefined> =>
    (
      await store.select(
        `type = 'grant.minted' AND marker IS NULL AND data->'deliveries' @> $1::jsonb`,
        [JSON.stringify([{ jti: token }])],
        1,
      )
    )[0];
  const [own] = await issued([jti], 'jti');
  const minted = own ? undefined : await mintedRow(jti);
  if (!own && !minted)
    throw new AppError('not_found', `no delegation.issued or grant.minted event for jti ${jti}`);
  const above = own ? ancestorsOf(own) : [];
  const aboveRows = new Map((await issued(above, 'jti')).map((r) => [String(r.data.jti), r]));
  const ancestors = await Promise.all(
    above.map(async (j, i) => {
      const row = aboveRows.get(j);
      const grantRoot = !row && i === 0 ? await mintedRow(j) : undefined;
      return grantRoot ? toGrantNode(j, grantRoot) : toLineageNode(j, row);
    }),
  );

  const root = own ? toLineageNode(jti, own) : toGrantNode(jti, minted as ChainRow);
  let frontier = [root];
  let count = 1;
  while (frontier.length > 0 && count < MAX_NODES) {
    const byJti = new Map(frontier.map((n) => [n.jti, n]));
    const rows = await issued([...byJti.keys()], 'parent_jti');
    const next: LineageNode[] = [];
    for (const row of rows) {
      const child = toLineageNode(String(row.data.jti), row);
      byJti.get(child.parentJti)?.children.push(child);
      next.push(child);
      count += 1;
    }
    frontier = next;
  }
  return { ancestors, node: root };
}
