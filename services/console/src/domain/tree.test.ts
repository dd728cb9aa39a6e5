import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { auditor } from '@aoa/proto';
import { descendantsOf, layoutLineage, MAX_DRAWN_NODES } from './tree.js';

const node = (jti: string, scopes: string[], children: auditor.LineageNode[] = []): auditor.LineageNode => ({
  jti,
  parentJti: '',
  sub: 'idp:dev:orchestrator',
  child: 'dashboards',
  env: 'prod',
  scopes,
  time: undefined,
  children,
});

describe('delegation tree layout', () => {
  it('places ancestors above the token and children below it, each hop naming the scopes it dropped', () => {
    const tree = layoutLineage(
      {
        ancestors: [node('root', ['read', 'write', 'admin'])],
        node: node('mid', ['read', 'write'], [node('leaf-a', ['read']), node('leaf-b', ['write'])]),
      },
      new Set(),
    );
    const at = new Map(tree.nodes.map((n) => [n.jti, n]));
    assert.deepEqual([...at.keys()].sort(), ['leaf-a', 'leaf-b', 'mid', 'root']);
    assert.ok((at.get('root')?.y ?? 0) < (at.get('mid')?.y ?? 0));
    assert.ok((at.get('mid')?.y ?? 0) < (at.get('leaf-a')?.y ?? 0));
    assert.equal(at.get('leaf-a')?.y, at.get('leaf-b')?.y);
    assert.notEqual(at.get('leaf-a')?.x, at.get('leaf-b')?.x);
    assert.deepEqual(at.get('mid')?.dropped, ['admin']);
    assert.deepEqual(at.get('leaf-a')?.dropped, ['write']);
    assert.equal(at.get('mid')?.selected, true);
    assert.equal(at.get('mid')?.descendants, 2);
    assert.equal(descendantsOf(node('a', [], [node('b', [], [node('c', [])]), node('d', [])])), 3);
    assert.equal(tree.edges.length, 3);
    assert.ok(tree.edges.every((e) => e.points.length >= 2));
  });

  it('a revoked token marks every descendant revoked through it, and leaves its ancestors live', () => {
    const tree = layoutLineage(
      {
        ancestors: [node('root', ['read'])],
        node: node('mid', ['read'], [node('leaf', ['read'], [node('deep', ['read'])])]),
      },
      new Set(['mid']),
    );
    const state = Object.fromEntries(tree.nodes.map((n) => [n.jti, n.revoked]));
    assert.deepEqual(state, { root: undefined, mid: 'self', leaf: 'ancestor', deep: 'ancestor' });
  });

  it('draws at most MAX_DRAWN_NODES and counts the rest', () => {
    const many = Array.from({ length: MAX_DRAWN_NODES + 5 }, (_, i) => node(`c${i}`, ['read']));
    const tree = layoutLineage({ ancestors: [], node: node('top', ['read'], many) }, new Set());
    assert.equal(tree.nodes.length, MAX_DRAWN_NODES);
    assert.equal(tree.cut, 6);
  });
});
