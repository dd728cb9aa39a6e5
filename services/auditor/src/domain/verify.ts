import { type ChainRow, GENESIS_HASH, linkHash, type RowPlace, type RowPosition } from './chain.js';

/** A signed chain head, as read back from the checkpoint stream (signature already checked). */
export interface TrustedCheckpoint {
  seq: number;
  hash: string;
  time: string;
  /** The signer's Ed25519 public key (base64url). */
  publicKey: string;
  /** False when the signature did not verify: reported, and not trusted. */
  signatureOk: boolean;
  /** The signing key, when keys are pinned and this one is not among them: reported, and not trusted. */
  unknownKey?: string;
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  problems: string[];
  /** The latest trusted checkpoint (signature good, key pinned or trusted on first use), if any. */
  lastCheckpoint: LastCheckpoint | undefined;
}

export interface LastCheckpoint {
  seq: number;
  hash: string;
  time: string;
  publicKey: string;
  /** Whether row `seq` of the store still has the signed hash. */
  matchesStore: boolean;
}

/**
 * Walks the chain in stream order, one row at a time (so a large store is verified in pages), and
 * finally compares it with the signed checkpoints, which the database cannot alter.
 *
 * @example
 * const v = new ChainVerifier();
 * for (const row of rows) v.push(row);
 * const { ok, problems } = v.finish(checkpoints);
 */
export class ChainVerifier {
  private readonly problems: string[] = [];
  private readonly hashes = new Map<number, string>();
  private previous: ChainRow | undefined;
  private checked = 0;

  constructor(private readonly wantedSeqs: ReadonlySet<number> = new Set()) {}

  push(row: ChainRow): void {
    this.checked += 1;
    const recomputed = linkHash(row.prevHash, row);
    if (recomputed !== row.hash) {
      this.problems.push(
        `row ${at(row)}${row.id ? ` (event ${row.id})` : ''} was edited: its content does not match its hash`,
      );
    }
    const before = this.previous;
    // A lost-range marker stands for its whole range: it follows the row before the range.
    const firstSeq = row.marker === 'lost' ? this.lostRange(row) : row.seq;
    if (before === undefined) {
      if (row.prevHash !== GENESIS_HASH) {
        this.problems.push(
          `rows before ${at({ seq: firstSeq, part: row.part })} are missing: the first stored row does not start the chain`,
        );
      }
    } else {
      const missing = gaps(before, row, firstSeq);
      if (missing.length > 0) this.problems.push(...missing);
      else if (row.prevHash !== before.hash) {
        this.problems.push(`row ${at(row)}: prev_hash does not match the hash of row ${at(before)}`);
      }
    }
    if (this.wantedSeqs.has(row.seq)) this.hashes.set(row.seq, row.hash);
    this.previous = row;
  }

  /**
   * Reports a lost-range marker (a loss is never clean) and returns the first sequence it covers.
   * Its range is part of its hash, so an edited range already shows as an edited row.
   */
  private lostRange(row: ChainRow): number {
    const from = row.data.from_seq;
    const first = typeof from === 'number' && Number.isSafeInteger(from) && from <= row.seq ? from : row.seq;
    const range = first === row.seq ? `seq ${row.seq}` : `seqs ${first}..${row.seq}`;
    this.problems.push(
      `${range} lost: the stream discarded ${row.seq - first + 1} event(s) before the auditor stored them (marker row seq ${row.seq}, recorded ${row.time})`,
    );
    return first;
  }

  finish(checkpoints: TrustedCheckpoint[]): VerifyResult {
    const lastSeq = this.previous?.seq ?? 0;
    const cut = this.previous && unfinished(this.previous);
    if (cut) this.problems.push(cut);
    const sorted = [...checkpoints].sort((a, b) => a.seq - b.seq);
    // The latest signed head past the end says how far the chain reached: one problem names it.
    const beyond = sorted.filter((cp) => cp.signatureOk && cp.seq > lastSeq).at(-1);
    if (beyond) {
      this.problems.push(
        `tail missing: checkpoint at seq ${beyond.seq} (${beyond.time}) but the chain ends at seq ${lastSeq}`,
      );
    }
    for (const cp of sorted) {
      if (cp.unknownKey !== undefined) {
        this.problems.push(
          `checkpoint at seq ${cp.seq} (${cp.time}) is signed by key ${cp.unknownKey.slice(0, 12)}…, which is not a pinned checkpoint key: not trusted`,
        );
        continue;
      }
      if (!cp.signatureOk) {
        this.problems.push(`checkpoint at seq ${cp.seq} (${cp.time}): signature does not verify`);
        continue;
      }
      if (cp.seq > lastSeq) continue;
      const stored = this.hashes.get(cp.seq);
      if (stored === undefined) {
        this.problems.push(`checkpoint at seq ${cp.seq} (${cp.time}): row seq ${cp.seq} is missing`);
      } else if (stored !== cp.hash) {
        this.problems.push(
          `checkpoint at seq ${cp.seq} (${cp.time}) signed hash ${cp.hash.slice(0, 16)}… but row seq ${cp.seq} has ${stored.slice(0, 16)}…: the chain was rewritten`,
        );
      }
    }
    const last = sorted.filter((cp) => cp.signatureOk && cp.unknownKey === undefined).at(-1);
    return {
      ok: this.problems.length === 0,
      checked: this.checked,
      problems: [...this.problems],
      lastCheckpoint: last && {
        seq: last.seq,
        hash: last.hash,
        time: last.time,
        publicKey: last.publicKey,
        matchesStore: this.hashes.get(last.seq) === last.hash,
      },
    };
  }
}

/** A row's place as problems name it: `seq 7`, or `seq 7 part 2` inside a batch message. */
const at = (row: RowPosition): string =>
  row.part === 0 ? `seq ${row.seq}` : `seq ${row.seq} part ${row.part}`;

/**
 * The rows missing between two consecutive stored rows: the rest of `before`'s message, whole
 * sequences (`firstSeq` is where `row`'s range starts), and the earlier parts of `row`'s own message.
 */
function gaps(before: RowPlace, row: RowPlace, firstSeq: number): string[] {
  const found: string[] = [];
  const sameMessage = row.part > 0 && before.seq === row.seq;
  if (sameMessage && before.parts !== row.parts) {
    found.push(`row ${at(row)}: its message has ${row.parts} parts, the row before says ${before.parts}`);
  }
  if (!sameMessage) {
    const rest = unfinished(before);
    if (rest) found.push(rest);
    if (firstSeq !== before.seq + 1) {
      const last = firstSeq - 1;
      const range = last === before.seq + 1 ? `seq ${last}` : `seqs ${before.seq + 1}..${last}`;
      found.push(`row ${range} deleted: gap in the stream sequence between ${before.seq} and ${row.seq}`);
    }
  }
  const from = sameMessage ? before.part + 1 : 0;
  if (row.part > from) found.push(partsDeleted(row.seq, from, row.part - 1));
  return found;
}

/** The problem when `row` is not the last part of its message and nothing of that message follows. */
function unfinished(row: RowPlace): string | undefined {
  return row.part < row.parts - 1 ? partsDeleted(row.seq, row.part + 1, row.parts - 1) : undefined;
}

function partsDeleted(seq: number, from: number, to: number): string {
  const parts = from === to ? `part ${from}` : `parts ${from}..${to}`;
  return `row seq ${seq} ${parts} deleted: gap in the events of message seq ${seq}`;
}
