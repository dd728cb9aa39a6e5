import type { Kvm } from '@nats-io/kv';
import { AppError } from '../errors.js';
import { sha256Hex } from '../ids.js';
import { BUCKETS } from '../subjects.js';
import { openBucket } from './bucket.js';
import type { StreamPublish } from './stream-publisher.js';

/**
 * Refuses the second use of a client assertion or DPoP proof `jti`, across every replica, through KV
 * `aoa_replay` (bucket max age = the replay window W). A key is claimed as KV create() does it, by a
 * publish that expects its subject to be empty, so two replicas racing on one jti cannot both win.
 */
export class ReplayGuard {
  private readonly keyPrefix: string;

  /** `publisher` should be a {@link StreamPublisher}: a claim is on every authenticated call's path. */
  constructor(
    private readonly publisher: StreamPublish,
    bucket: string = BUCKETS.replay,
  ) {
    this.keyPrefix = `$KV.${bucket}.`;
  }

  /**
   * Opens `aoa_replay` (creating it with the replay window as its max age) and guards through it.
   *
   * @example
   * const replay = await ReplayGuard.open(kvm, publisher, { replicas: 1, windowSeconds: 300 });
   */
  static async open(
    kvm: Kvm,
    publisher: StreamPublish,
    options: { replicas: number; windowSeconds: number },
  ): Promise<ReplayGuard> {
    await openBucket(kvm, BUCKETS.replay, {
      replicas: options.replicas,
      maxAgeMs: options.windowSeconds * 1000,
    });
    return new ReplayGuard(publisher);
  }

  /** Claims `kind.<sha256(id)>`; throws `unauthenticated` if it was already used. */
  async claim(kind: 'ca' | 'dpop', issuer: string, jti: string): Promise<void> {
    try {
      await this.publisher.publish(`${this.keyPrefix}${kind}.${sha256Hex(`${issuer}\n${jti}`)}`, '1', {
        expect: { lastSubjectSequence: 0 },
      });
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
