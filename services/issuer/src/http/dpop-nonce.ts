import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '@aoa/core';
import { decodeJwt } from 'jose';
import { OAuthError } from './oauth-form.js';

/**
 * RFC 9449 section 8 server nonces without server state: a nonce is an HMAC of the current period
 * number under a secret, so every replica sharing the secret issues and accepts the same nonces.
 * Nonces change every `periodSeconds`; the current and the previous one are accepted, so a nonce
 * handed out just before a change stays good for at least one period. Without a configured secret
 * each process draws its own: correct, but a client bouncing between replicas meets more challenges.
 *
 * @example
 * const nonces = new DpopNonces(clock);
 * nonces.require(proof); // throws 400 use_dpop_nonce with a DPoP-Nonce header when stale or missing
 */
export class DpopNonces {
  constructor(
    private readonly clock: Clock,
    private readonly secret: Buffer = randomBytes(32),
    private readonly periodSeconds = 60,
  ) {
    if (secret.length < 16) throw new TypeError('DPoP nonce secret must be at least 16 bytes');
  }

  /** The nonce to hand out now. */
  current(): string {
    return this.nonceFor(this.period());
  }

  /** Whether `nonce` is the current or the previous period's nonce. */
  accepts(nonce: string): boolean {
    const given = Buffer.from(nonce);
    const period = this.period();
    return [period, period - 1].some((p) => {
      const expected = Buffer.from(this.nonceFor(p));
      return expected.length === given.length && timingSafeEqual(expected, given);
    });
  }

  /**
   * Reads the proof's `nonce` (before its signature is checked: a forged proof fails verification
   * later anyway) and throws `use_dpop_nonce` with a fresh nonce unless it is acceptable.
   */
  require(proof: string): void {
    let nonce: unknown;
    try {
      nonce = decodeJwt(proof).nonce;
    } catch {
      throw new OAuthError(400, 'invalid_dpop_proof', 'DPoP proof: malformed');
    }
    if (typeof nonce !== 'string' || !this.accepts(nonce)) {
      throw new OAuthError(400, 'use_dpop_nonce', 'Authorization server requires nonce in DPoP proof', {
        'dpop-nonce': this.current(),
      });
    }
  }

  private period(): number {
    return Math.floor(this.clock.nowMs() / 1000 / this.periodSeconds);
  }

  private nonceFor(period: number): string {
    return createHmac('sha256', this.secret).update(`aoa-dpop-nonce\n${period}`).digest('base64url');
  }
}
