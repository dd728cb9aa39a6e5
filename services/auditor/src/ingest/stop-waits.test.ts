import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { StopWaits } from './stop-waits.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('StopWaits', () => {
  it('keeps nothing a finished wait resolved with', async () => {
    const waits = new StopWaits();
    const refs: Array<WeakRef<object>> = [];
    for (let i = 0; i < 2000; i++) {
      const message = { data: Buffer.alloc(1024) };
      refs.push(new WeakRef(message));
      assert.equal(await waits.within(Promise.resolve(message), 60_000), message);
    }
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    const alive = refs.filter((ref) => ref.deref() !== undefined).length;
    assert.ok(alive <= 1, `${alive} of 2000 resolved values still reachable`);
  });

  it('ends the wait in progress at stop, and every later one at once', async () => {
    const waits = new StopWaits();
    const never = new Promise<string>(() => undefined);
    const waiting = waits.within(never, 60_000);
    waits.stop();
    assert.equal(await waiting, undefined);
    assert.equal(await waits.within(Promise.resolve('late'), 60_000), undefined);
    assert.equal(waits.stopping, true);
  });

  it('gives up after its time', async (t) => {
    const waits = new StopWaits();
    // The wait's own timer does not hold the process open.
    const keepAlive = setTimeout(() => undefined, 1000);
    t.after(() => clearTimeout(keepAlive));
    assert.equal(await waits.within(new Promise<string>(() => undefined), 5), undefined);
  });
});
