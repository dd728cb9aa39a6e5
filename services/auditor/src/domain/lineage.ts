import type { ChainRow } from './chain.js';

/** One token in a lineage answer. */
export interface LineageNode {
  jti: string;
  parentJti: string;
  sub: string;
  child: string;
  env: string;
  scopes: string[];
  time: Date | undefined;
  /** Who requested the token (`client:<id>` at a root, `app:<parent>` below); empty when unknown. */
  clientId: string;
  children: LineageNode[];
}

const text = (v: unknown) => (typeof v === 'string' ? v : '');

/** A `delegation.issued` row as a lineage node; a jti with no stored issuance gets a bare node. */
export function toLineageNode(jti: string, row: ChainRow | undefined): LineageNode {
  const d = row?.data ?? {};
  return {
    jti,
    parentJti: text(d.parent_jti),
    sub: text(d.sub),
    child: text(d.child),
    env: text(d.env),
    scopes: Array.isArray(d.scopes_granted)
      ? d.scopes_granted.filter((s): s is string => typeof s === 'string')
      : [],
    time: row ? new Date(row.time) : undefined,
    clientId: text(d.client_id),
    children: [],
  };
}

/**
 * A token a standing grant minted (it has no `delegation.issued` event), from its `grant.minted` row:
 * a root, requested by the grant's parent client.
 */
export function toGrantNode(jti: string, row: ChainRow): LineageNode {
  const d = row.data;
  return {
    jti,
    parentJti: '',
    sub: text(d.sub),
    child: text(d.child),
    env: text(d.env),
    scopes: Array.isArray(d.scopes) ? d.scopes.filter((s): s is string => typeof s === 'string') : [],
    time: new Date(row.time),
    clientId: d.parent_client ? `client:${text(d.parent_client)}` : '',
    children: [],
  };
}

/** The jtis above a token, root first, from its issuance event (`lineage`, else `parent_jti`). */
export function ancestorsOf(row: ChainRow): string[] {
  const lineage = row.data.lineage;
  if (Array.isArray(lineage) && lineage.length > 0)
    return lineage.filter((j): j is string => typeof j === 'string');
  const parent = row.data.parent_jti;
  return typeof parent === 'string' && parent !== '' ? [parent] : [];
}
