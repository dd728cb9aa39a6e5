import type { RowPosition } from '../domain/chain.js';
import { type SignedCheckpoint, verifyCheckpoint } from '../domain/checkpoint.js';
import type { TrustedKeys } from '../domain/checkpoint-keys.js';
import { ChainVerifier, type TrustedCheckpoint, type VerifyResult } from '../domain/verify.js';
import type { AuditStore } from '../store/audit-store.js';

const PAGE = 5000;

/**
 * Walks the whole store in pages against the checkpoints read from the checkpoint stream. With pinned
 * keys, a checkpoint signed by any other key is reported and not trusted; without, each checkpoint is
 * checked against the key it names (trust on first use).
 */
export async function verifyStoredChain(
  store: AuditStore,
  checkpoints: SignedCheckpoint[],
  trustedKeys: TrustedKeys | undefined,
): Promise<VerifyResult> {
  const trusted = checkpoints.map((cp): TrustedCheckpoint => {
    const pinned = trustedKeys === undefined || trustedKeys.has(String(cp.public_key));
    return {
      seq: Number(cp.seq),
      hash: String(cp.hash),
      time: String(cp.time),
      publicKey: String(cp.public_key),
      signatureOk: pinned && verifyCheckpoint(cp),
      ...(pinned ? {} : { unknownKey: String(cp.public_key) }),
    };
  });
  const verifier = new ChainVerifier(new Set(trusted.map((cp) => cp.seq)));
  let after: RowPosition = { seq: 0, part: 0 };
  for (;;) {
    const rows = await store.rowsAfter(after, PAGE);
    for (const row of rows) verifier.push(row);
    const last = rows.at(-1);
    if (!last || rows.length < PAGE) break;
    after = last;
  }
  return verifier.finish(trusted);
}
