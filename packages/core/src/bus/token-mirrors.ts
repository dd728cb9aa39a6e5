import type { Kvm } from '@nats-io/kv';
import { KeySetMirror } from '../key-set.js';
import type { Logger } from '../logger.js';
import { RevocationMirror } from '../revocation.js';
import { BUCKETS } from '../subjects.js';

/** The published keys and the revocations in force, as a service that owns neither bucket sees them. */
export interface TokenMirrors {
  keys: KeySetMirror;
  /** Not `ready()` until both mirrors have synchronised: callers refuse (unavailable) until then. */
  revocations: RevocationMirror;
  stop(): void;
}

/**
 * Follows `aoa_keys` and `aoa_revocations` for a service that verifies aoa tokens but owns neither
 * bucket (the auditor, the rotator: operator tokens). The buckets are bound, never created (the issuer
 * and the revoker create them, with the settings only they know). When they exist, this resolves with
 * both mirrors synchronised; otherwise it resolves at once and the watches start in the background,
 * retried every `retryMs` until the buckets exist, so a service started first neither fails nor waits.
 * The key set starts first: once `revocations.ready()`, both are current.
 *
 * @example
 * const mirrors = await followTokenMirrors(new Kvm(nc), log);
 * cleanup.push(() => mirrors.stop());
 */
export async function followTokenMirrors(
  kvm: Kvm,
  log: Logger,
  options: { retryMs?: number } = {},
): Promise<TokenMirrors> {
  const retryMs = options.retryMs ?? 1000;
  const [keysKv, revocationsKv] = await Promise.all([kvm.open(BUCKETS.keys), kvm.open(BUCKETS.revocations)]);
  const keys = new KeySetMirror(keysKv, log);
  const revocations = new RevocationMirror(revocationsKv, log);
  let stopped = false;
  let keysStarted = false;
  let timer: NodeJS.Timeout | undefined;
  let warned = false;
  const attempt = async (): Promise<void> => {
    timer = undefined;
    try {
      if (!keysStarted) {
        await keys.start();
        keysStarted = true;
        if (stopped) return keys.stop();
      }
      await revocations.start();
      if (stopped) return revocations.stop();
      await revocations.whenSynced();
      log.info('token mirrors started (aoa_keys, aoa_revocations)');
    } catch (error) {
      if (stopped) return;
      // Logged once: a service started ahead of the issuer retries quietly until the buckets exist.
      if (!warned) log.warn({ err: (error as Error).message }, 'token mirrors not started yet; retrying');
      warned = true;
      timer = setTimeout(() => void attempt(), retryMs);
      timer.unref();
    }
  };
  await attempt();
  return {
    keys,
    revocations,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      keys.stop();
      revocations.stop();
    },
  };
}
