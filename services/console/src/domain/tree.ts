import type { auditor } from '@aoa/proto';
import { type EdgeLabel, Graph, type GraphLabel, layout, type NodeLabel } from '@dagrejs/dagre';

const NODE_WIDTH = 220;
const NODE_HEIGHT = 64;
/** More nodes than this are not drawn (the tree is cut, and says so). */
export const MAX_DRAWN_NODES = 300;

/** How many tokens were delegated from `node`, at any depth. */
export const descendantsOf = (node: auditor.LineageNode): number =>
  node.children.reduce((total, child) => total + 1 + descendantsOf(child), 0);

/** One token drawn in a delegation tree, with where the layout put it (its centre). */
export interface TreeNode {
  jti: string;
  child: string;
  env: string;
  sub: string;
  scopes: string[];
  /** Scopes the parent held that this token does not: how the chain narrows at this hop. */
  dropped: string[];
  time: Date | undefined;
  /** Revoked itself (`self`), through an ancestor (`ancestor`), or live. */
  revoked: 'self' | 'ancestor' | undefined;
  /** The token the tree was asked for. */
  selected: boolean;
  /** Tokens delegated from this one, at any depth. */
  descendants: number;
  x: number;
  y: number;
}

export interface TreeEdge {
  from: string;
  to: string;
  points: Array<{ x: number; y: number }>;
}

export interface DelegationTree {
  nodes: TreeNode[];
  edges: TreeEdge[];
  width: number;
  height: number;
  nodeWidth: number;
  nodeHeight: number;
  /** Nodes left out past {@link MAX_DRAWN_NODES}. */
  cut: number;
}

/**
 * Lays out a token's lineage (its ancestors, itself, and everything delegated from it) top-down with
 * dagre, marking each token revoked when its jti, or an ancestor's, is in `revokedJtis`.
 */
export function layoutLineage(
  lineage: auditor.LineageResponse,
  revokedJtis: ReadonlySet<string>,
): DelegationTree {
  const graph = new Graph<GraphLabel, NodeLabel, EdgeLabel>();
  graph.setGraph({ rankdir: 'TB', nodesep: 28, ranksep: 56, marginx: 12, marginy: 12 });
  graph.setDefaultEdgeLabel(() => ({}));
  const nodes = new Map<string, Omit<TreeNode, 'x' | 'y'>>();
  let cut = 0;

  const add = (
    node: auditor.LineageNode,
    parent: Omit<TreeNode, 'x' | 'y'> | undefined,
    selected: boolean,
  ): Omit<TreeNode, 'x' | 'y'> | undefined => {
    if (nodes.size >= MAX_DRAWN_NODES) {
      cut += 1;
      return undefined;
    }
    const revoked: TreeNode['revoked'] = revokedJtis.has(node.jti)
      ? 'self'
      : parent?.revoked
        ? 'ancestor'
        : undefined;
    const entry = {
      jti: node.jti,
      child: node.child,
      env: node.env,
      sub: node.sub,
      scopes: node.scopes,
      dropped: parent ? parent.scopes.filter((scope) => !node.scopes.includes(scope)) : [],
      time: node.time,
      revoked,
      selected,
      descendants: 0,
    };
    nodes.set(node.jti, entry);
    graph.setNode(node.jti, { width: NODE_WIDTH, height: NODE_HEIGHT });
    if (parent) graph.setEdge(parent.jti, node.jti);
    return entry;
  };

  let above: Omit<TreeNode, 'x' | 'y'> | undefined;
  for (const ancestor of lineage.ancestors) above = add({ ...ancestor, children: [] }, above, false);
  const count = (
    node: auditor.LineageNode,
    parent: Omit<TreeNode, 'x' | 'y'> | undefined,
    selected: boolean,
  ): number => {
    const entry = add(node, parent, selected);
    if (!entry) return 0;
    let total = 0;
    for (const child of node.children) total += 1 + count(child, entry, false);
    entry.descendants = total;
    return total;
  };
  if (lineage.node) count(lineage.node, above, true);

  layout(graph);
  const laid = graph.graph();
  return {
    nodes: [...nodes.values()].map((node) => {
      const { x, y } = graph.node(node.jti);
      return { ...node, x, y };
    }),
    edges: graph.edges().map((edge: { v: string; w: string }) => ({
      from: edge.v,
      to: edge.w,
      points: graph.edge(edge).points ?? [],
    })),
    width: Math.ceil(laid.width ?? NODE_WIDTH),
    height: Math.ceil(laid.height ?? NODE_HEIGHT),
    nodeWidth: NODE_WIDTH,
    nodeHeight: NODE_HEIGHT,
    cut,
  };
}
