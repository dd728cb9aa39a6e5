import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mayTick, retryDelayMs, rotationDelayMs } from './schedule.js';

describe('rotationDelayMs', () => {
  it('is half the token TTL within +-10% jitter', () => {
    for (let i = 0; i < 1000; i++) {
      const delay = rotationDelayMs(600);
      assert.ok(delay >= 270_000 && delay <= 330_000, `${delay} outside [270s, 330s]`);
    }
  });

  it('reaches both jitter bounds and the midpoint', () => {
    assert.equal(
      rotationDelayMs(600, () => 0),
      270_000,
    );
    assert.equal(
      rotationDelayMs(600, () => 0.5),
      300_000,
    );
    assert.equal(
      rotationDelayMs(600, () => 1),
      330_000,
    );
  });

  it('spreads replicas: not every delay is the same', () => {
    const delays = new Set(Array.from({ length: 50 }, () => rotationDelayMs(600)));
    assert.ok(delays.size > 10);
  });
});

describe('retryDelayMs', () => {
  it('doubles from 500 ms and stops at the cap', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => retryDelayMs(n, 10_000)),
      [500, 1000, 2000, 4000],
    );
    assert.equal(retryDelayMs(50, 10_000), 10_000);
  });
});

describe('mayTick', () => {
  const now = 1_000_000;
  it('ticks a grant with no lease', () => assert.ok(mayTick(undefined, 'a', now)));
  it('waits until the grant is due', () =>
    assert.ok(!mayTick({ holder: 'a', until_ms: now + 5000, next_due_ms: now + 1 }, 'a', now)));
  it('leaves a due grant to the replica holding a live lease', () => {
    const lease = { holder: 'a', until_ms: now + 5000, next_due_ms: 0 };
    assert.ok(mayTick(lease, 'a', now));
    assert.ok(!mayTick(lease, 'b', now));
  });
  it('takes over the grants of a replica whose lease ran out', () =>
    assert.ok(mayTick({ holder: 'a', until_ms: now, next_due_ms: 0 }, 'b', now)));
});
