import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { canonicalJson } from './canonical.js';

/** A signed chain head as published on `aoa.audit_checkpoints` (and kept in `checkpoints`). */
export interface SignedCheckpoint {
  seq: number;
  hash: string;
  time: string;
  /** Ed25519 public key, base64url of its raw 32 bytes. */
  public_key: string;
  /** Ed25519 signature over canonical JSON of `{hash, seq, time}`, base64url. */
  signature: string;
}

/** Signs chain heads with an Ed25519 key: generated per auditor, or read from a PKCS#8 PEM file. */
export class CheckpointSigner {
  private readonly privateKey: KeyObject;
  readonly publicKey: string;

  constructor(pem?: string) {
    this.privateKey = pem ? createPrivateKey(pem) : generateKeyPairSync('ed25519').privateKey;
    if (this.privateKey.asymmetricKeyType !== 'ed25519')
      throw new TypeError('checkpoint key must be Ed25519');
    const jwk = createPublicKey(this.privateKey).export({ format: 'jwk' });
    this.publicKey = String(jwk.x);
  }

  sign(head: { seq: number; hash: string; time: string }): SignedCheckpoint {
    const payload = Buffer.from(canonicalJson({ hash: head.hash, seq: head.seq, time: head.time }));
    return {
      ...head,
      public_key: this.publicKey,
      signature: sign(null, payload, this.privateKey).toString('base64url'),
    };
  }
}

/**
 * Checks a checkpoint's signature with the key it names; `trustedKeys`, when given, must contain it.
 * Never throws: malformed input is simply not verified.
 */
export function verifyCheckpoint(cp: SignedCheckpoint, trustedKeys?: ReadonlySet<string>): boolean {
  try {
    if (trustedKeys && !trustedKeys.has(cp.public_key)) return false;
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: cp.public_key }, format: 'jwk' });
    const payload = Buffer.from(canonicalJson({ hash: cp.hash, seq: cp.seq, time: cp.time }));
    return verify(null, payload, key, Buffer.from(cp.signature, 'base64url'));
  } catch {
    return false;
  }
}
