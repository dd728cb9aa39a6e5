import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { PolicyError } from './errors.js';
import { PolicyStore, type PolicyStoreEvents } from './store.js';
import { exampleText } from './test-helpers.js';
import type { Policy } from './types.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function eventually(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the policy store', () => {
  let dir: string;
  let path: string;
  let loaded: Policy[];
  let rejected: { problems: string[]; hash: string }[];
  let store: PolicyStore | undefined;
  const events = (extra: Partial<PolicyStoreEvents> = {}): PolicyStoreEvents => ({
    onLoaded: (policy) => loaded.push(policy),
    onRejected: (problems, hash) => rejected.push({ problems, hash }),
    ...extra,
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'aoa-policy-store-'));
    path = join(dir, 'policy.yaml');
    await writeFile(path, exampleText());
    loaded = [];
    rejected = [];
    store = undefined;
  });
  afterEach(async () => {
    store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reloads a valid change and keeps the old policy when a change is invalid', async () => {
    store = await PolicyStore.open(path, events());
    assert.equal(loaded.length, 1);
    assert.equal(store.current().hash, sha256(exampleText()));
    store.watch();

    const shorter = exampleText().replace('max_ttl: 15m', 'max_ttl: 5m');
    await writeFile(path, shorter);
    await eventually(() => loaded.length === 2, 'the valid change to load');
    assert.equal(store.current().hash, sha256(shorter));
    assert.equal(store.current().rules[0]?.maxTtlSeconds, 300);
    assert.equal(loaded[1], store.current());

    const broken = `${shorter}bogus: 1\n`;
    await writeFile(path, broken);
    await eventually(() => rejected.length === 1, 'the invalid change to be rejected');
    assert.deepEqual(rejected, [{ problems: ['policy.yaml: bogus: unknown key'], hash: sha256(broken) }]);
    assert.equal(store.current().hash, sha256(shorter));
    assert.equal(loaded.length, 2);
  });

  it('follows a file replaced by rename, as editors and config maps do', async () => {
    store = await PolicyStore.open(path, events());
    store.watch();
    const replaced = exampleText().replace('max_ttl: 10m', 'max_ttl: 2m');
    await writeFile(join(dir, '.policy.yaml.tmp'), replaced);
    await rename(join(dir, '.policy.yaml.tmp'), path);
    await eventually(() => loaded.length === 2, 'the replaced file to load');
    assert.equal(store.current().rules[2]?.maxTtlSeconds, 120);
  });

  it('reloads on demand, ignores unchanged content and reports an invalid file once', async () => {
    store = await PolicyStore.open(path, events());
    await store.reload();
    assert.equal(loaded.length, 1);
    await writeFile(path, 'version: 2\n');
    await store.reload();
    await store.reload();
    assert.deepEqual(rejected, [
      {
        problems: ['policy.yaml: version: unsupported version "2": expected 1'],
        hash: sha256('version: 2\n'),
      },
    ]);
    await rm(path);
    await store.reload();
    assert.deepEqual(rejected[1], { problems: ['policy.yaml: (file): cannot read (ENOENT)'], hash: '' });
    assert.equal(store.current().hash, sha256(exampleText()));
  });

  it('refuses to open an invalid file', async () => {
    await writeFile(path, 'version: 1\nrules: {}\n');
    await assert.rejects(PolicyStore.open(path, events()), (error: unknown) => {
      assert.ok(error instanceof PolicyError);
      assert.deepEqual(error.problems, ['policy.yaml: rules: must be a list']);
      return true;
    });
    assert.equal(loaded.length, 0);
  });

  it('lets the caller refuse a valid policy, at open and on reload', async () => {
    let limit = 3600;
    const validate = (policy: Policy) =>
      policy.limits.maxTokenTtlSeconds > limit ? [`limits.max_token_ttl: over ${limit}s`] : [];
    store = await PolicyStore.open(path, events({ validate }));
    limit = 60;
    await writeFile(path, `${exampleText()}\n`);
    await store.reload();
    assert.deepEqual(rejected[0]?.problems, ['policy.yaml: limits.max_token_ttl: over 60s']);
    store.close();
    store = undefined;
    await assert.rejects(PolicyStore.open(path, events({ validate })), PolicyError);
  });

  it('survives a callback that throws', async () => {
    const errors: unknown[] = [];
    store = await PolicyStore.open(
      path,
      events({
        onRejected: () => {
          throw new Error('audit down');
        },
        onError: (error) => errors.push(error),
      }),
    );
    await writeFile(path, 'nonsense: [');
    await store.reload();
    await writeFile(path, exampleText().replace('max_ttl: 15m', 'max_ttl: 1m'));
    await store.reload();
    assert.equal((errors[0] as Error).message, 'audit down');
    assert.equal(store.current().rules[0]?.maxTtlSeconds, 60);
  });
});
