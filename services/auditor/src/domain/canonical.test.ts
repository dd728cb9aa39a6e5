import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson } from './canonical.js';

describe('canonical JSON', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } }),
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('is the same for objects that differ only in key order', () => {
    assert.equal(canonicalJson({ x: 1, y: [true, null] }), canonicalJson({ y: [true, null], x: 1 }));
  });

  it('drops undefined members and encodes strings as JSON does', () => {
    assert.equal(canonicalJson({ a: undefined, b: 'é"\n' }), '{"b":"é\\"\\n"}');
  });

  it('refuses values JSON cannot carry', () => {
    assert.throws(() => canonicalJson({ n: Number.NaN }), TypeError);
    assert.throws(() => canonicalJson({ n: 1n }), TypeError);
  });
});
