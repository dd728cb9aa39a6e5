import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { aoa } from './support/cli.js';

const _ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMMANDS = [
  'dev',
  'delegate',
  'revoke',
  'revocations',
  'grants',
  'agent',
  'audit',
  'policy',
  'keys',
  'status',
];

describe('aoa --help', () => {
  it('prints each command’s usage with the exit codes, and exits 0', async () => {
    for (const command of COMMANDS) {
      const { code, stdout } = await aoa(command, '--help');
      assert.equal(code, 0, command);
      assert.match(stdout, new RegExp(`^Usage:\\n  aoa ${command}`), command);
      assert.match(stdout, /Exit codes: 0 ok, 1 failure, 2 usage, 3 refused/, command);
    }
  });

  it('lists every command with no arguments (exit 2) and on help (exit 0)', async () => {
    const bare = await aoa();
    assert.equal(bare.code, 2);
    const help = await aoa('help');
    assert.equal(help.code, 0);
    for (const command of COMMANDS) assert.match(help.stdout, new RegExp(`\\n  aoa ${command}`), command);
    const unknown = await aoa('frobnicate');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /aoa: unknown command "frobnicate"/);
  });
});
