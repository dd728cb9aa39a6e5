import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { REFUSAL_REASONS } from './refusals.js';

describe('refusal reasons', () => {
  it('are UPPER_SNAKE_CASE and each is documented in docs/errors.md with its OAuth error', async () => {
    const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    for (const [reason, { oauth }] of Object.entries(REFUSAL_REASONS)) {
      assert.match(reason, /^[A-Z][A-Z0-9_]*[A-Z0-9]$/);
      assert.ok(doc.includes(`| \`${reason}\` | \`${oauth}\` |`), `docs/errors.md lacks ${reason}`);
    }
  });
});
