import type { KV } from '@nats-io/kv';
import { AppError } from '../errors.js';
import { sha256Hex } from '../ids.js';

/**
 * Refuses the second use of a client assertion or DPoP proof `jti`, across every replica, through KV
 * `aoa_replay` (bucket max age = the replay window W). A key is claimed with create(), a compare-and-set
 * on "no previous value", so two replicas racing on one jti cannot both win.
 */
export class ReplayGuard {
  constructor(private readonly kv: KV) {}

  /** Claims `kind.<sha256(id)>`; throws `unauthenticated` if it was already used. */
  async claim(kind: 'ca' | 'dpop', issuer: string, jti: string): Promise<void> {
    try {
      await this.kv.create(`${kind}.${sha256Hex(`${issuer}\n${jti}`)}`, '1');
    } catch (error) {
      if (isWrongLastSequence(error)) {
        throw new AppError(
          'unauthenticated',
          `${kind === 'ca' ? 'client assertion' : 'DPoP proof'} jti was already used (replay)`,
          { reason: 'PROOF_REPLAYED' },
        );
      }
      throw new AppError('unavailable', 'replay store unavailable', { cause: error });
    }
  }
}

/** Whether a KV create or update failed its compare-and-set (the key exists, or moved on). */
export const isWrongLastSequence = (error: unknown): boolean =>
  (typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    (error as { code: unknown }).code === 10071) ||
  (error instanceof Error && /wrong last sequence/i.test(error.message));
