import { type SignedCheckpoint, verifyCheckpoint } from '../domain/checkpoint.js';
import { ChainVerifier, type VerifyResult } from '../domain/verify.js';
import type { AuditStore } from '../store/audit-store.js';

const PAGE = 5000;

/** Walks the whole store in pages against the checkpoints read from the checkpoint stream. */
export async function verifyStoredChain(
  store: AuditStore,
  checkpoints: SignedCheckpoint[],
  trustedKeys?: ReadonlySet<string>,
): Promise<VerifyResult> {
  const trusted = checkpoints.map((cp) => ({
    seq: Number(cp.seq),
    hash: String(cp.hash),
    time: String(cp.time),
    signatureOk: verifyCheckpoint(cp, trustedKeys),
  }));
  const verifier = new ChainVerifier(new Set(trusted.map((cp) => cp.seq)));
  let after = 0;
  for (;;) {
    const rows = await store.rowsAfter(after, PAGE);
    for (const row of rows) verifier.push(row);
    const last = rows.at(-1);
    if (!last || rows.length < PAGE) break;
    after = last.seq;
  }
  return verifier.finish(trusted);
}
