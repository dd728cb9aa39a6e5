import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomId } from './ids.js';

describe('randomId', () => {
  it('is base64url of the requested size and never starts with "-", which a command line reads as an option', () => {
    // One id in 64 would start with "-" if nothing prevented it: over 20,000 ids, several would.
    const ids = Array.from({ length: 20_000 }, () => randomId());
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
    assert.ok(ids.some((id) => id.startsWith('_')));
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(randomId(32).length, 43);
  });
});
