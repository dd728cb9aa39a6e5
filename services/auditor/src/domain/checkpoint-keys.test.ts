import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { CheckpointSigner } from './checkpoint.js';
import { parseTrustedKeys } from './checkpoint-keys.js';

const ed25519 = () => generateKeyPairSync('ed25519');

describe('pinned checkpoint keys', () => {
  it('reads a public JWK, a JWK Set and PEM blocks as raw Ed25519 keys', () => {
    const a = ed25519();
    const b = ed25519();
    const signer = new CheckpointSigner(a.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
    const jwk = (k: typeof a) => k.publicKey.export({ format: 'jwk' });
    const pem = (k: typeof a) => k.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    assert.deepEqual([...parseTrustedKeys(JSON.stringify(jwk(a)))], [signer.publicKey]);
    assert.equal(parseTrustedKeys(JSON.stringify({ keys: [jwk(a), jwk(b)] })).size, 2);
    assert.deepEqual([...parseTrustedKeys(`${pem(a)}\n${pem(b)}`)], [signer.publicKey, String(jwk(b).x)]);
  });

  it('refuses anything else with the key number and the problem, never the material', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const priv = ed25519().privateKey;
    const cases: Array<[string, RegExp]> = [
      ['', /^the file is empty$/],
      ['{"keys": [', /^not valid JSON$/],
      ['hello', /^no keys found/],
      [JSON.stringify({ keys: [{ kty: 'OKP' }] }), /^key 1: not a usable public JWK$/],
      [JSON.stringify(priv.export({ format: 'jwk' })), /^key 1: holds private material/],
      [priv.export({ format: 'pem', type: 'pkcs8' }).toString(), /^holds a private key/],
      [
        rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
        /^key 1: is rsa, checkpoints are signed with Ed25519$/,
      ],
    ];
    for (const [text, problem] of cases) assert.throws(() => parseTrustedKeys(text), { message: problem });
  });
});
