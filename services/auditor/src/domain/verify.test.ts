import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { canonicalJson } from './canonical.js';
import { type ChainRow, chainRows, GENESIS_HASH, type RowContent } from './chain.js';
import { CheckpointSigner, verifyCheckpoint } from './checkpoint.js';
import { ChainVerifier, type TrustedCheckpoint } from './verify.js';

const event = (seq: number): RowContent => ({
  seq,
  part: 0,
  parts: 1,
  id: `event-${String(seq).padStart(4, '0')}`,
  type: 'delegation.issued',
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
  source: 'issuer/test',
  subject: `jti-${seq}`,
  data: { jti: `jti-${seq}`, scopes_granted: ['read:metrics'] },
  marker: null,
});

const chain = (n: number): ChainRow[] =>
  chainRows(
    GENESIS_HASH,
    Array.from({ length: n }, (_, i) => event(i + 1)),
  );

function verify(rows: ChainRow[], checkpoints: TrustedCheckpoint[] = []) {
  const v = new ChainVerifier(new Set(checkpoints.map((c) => c.seq)));
  for (const row of rows) v.push(row);
  return v.finish(checkpoints);
}

const checkpointOf = (row: ChainRow): TrustedCheckpoint => ({
  seq: row.seq,
  hash: row.hash,
  time: row.time,
  publicKey: 'k'.repeat(43),
  signatureOk: true,
});

describe('hash chain', () => {
  it('hashes SHA-256 over the previous hash followed by the canonical event', () => {
    const [first] = chain(1);
    const { seq: _seq, part: _part, parts: _parts, marker: _marker, ...envelope } = event(1);
    const expected = createHash('sha256').update(GENESIS_HASH).update(canonicalJson(envelope)).digest('hex');
    assert.equal(first?.hash, expected);
    assert.equal(first?.prevHash, GENESIS_HASH);
  });

  it("hashes a one-event message's rows as before batch messages, and a batch's over its place too", () => {
    const hashOf = (content: unknown) =>
      createHash('sha256').update(GENESIS_HASH).update(canonicalJson(content)).digest('hex');
    const hashed = (row: RowContent) => chainRows(GENESIS_HASH, [row])[0]?.hash;
    const marker = {
      ...event(2),
      id: null,
      data: { duplicate_of: 'event-0001' },
      marker: 'duplicate' as const,
    };
    const { part: _part, parts: _parts, ...markerBefore } = marker;
    // The formulas rows were stored under: stored chains verify unchanged.
    assert.equal(hashed(marker), hashOf(markerBefore));
    const { seq: _seq, part: _p, parts: _n, marker: _m, ...envelope } = event(2);
    // A batch message's rows also cover where they sit: seq, part and how many parts.
    assert.equal(
      hashed({ ...event(2), part: 1, parts: 3 }),
      hashOf({ ...envelope, seq: 2, part: 1, parts: 3 }),
    );
    assert.equal(hashed({ ...marker, part: 3, parts: 4 }), hashOf({ ...markerBefore, part: 3, parts: 4 }));
  });

  it('links every row to the hash of the one before it', () => {
    const rows = chain(3);
    assert.equal(rows[1]?.prevHash, rows[0]?.hash);
    assert.equal(rows[2]?.prevHash, rows[1]?.hash);
  });
});

describe('chain verification', () => {
  it('accepts an intact chain with matching checkpoints', () => {
    const rows = chain(10);
    const result = verify(rows, [checkpointOf(rows[4]!), checkpointOf(rows[9]!)]);
    assert.deepEqual(
      { ...result, lastCheckpoint: result.lastCheckpoint?.seq },
      {
        ok: true,
        checked: 10,
        problems: [],
        lastCheckpoint: 10,
      },
    );
  });

  it('names an edited row', () => {
    const rows = chain(5);
    rows[2] = { ...rows[2]!, data: { jti: 'jti-3', scopes_granted: ['admin'] } };
    const result = verify(rows);
    assert.equal(result.ok, false);
    assert.deepEqual(result.problems, [
      'row seq 3 (event event-0003) was edited: its content does not match its hash',
    ]);
  });

  it('names a deleted row as a gap in the stream sequence', () => {
    const rows = chain(5).filter((r) => r.seq !== 3);
    assert.deepEqual(verify(rows).problems, [
      'row seq 3 deleted: gap in the stream sequence between 2 and 4',
    ]);
  });

  it("walks a batch message's events as parts of one sequence, and names a deleted part", () => {
    const partOf = (seq: number, part: number, parts: number): RowContent => ({
      ...event(seq),
      part,
      parts,
      id: `event-${String(seq).padStart(4, '0')}-${part}`,
    });
    // seq 1, then a message of three events at seq 2, then seq 3.
    const content = [event(1), partOf(2, 0, 3), partOf(2, 1, 3), partOf(2, 2, 3), event(3)];
    const rows = chainRows(GENESIS_HASH, content);
    const without = (gone: (r: ChainRow) => boolean, from = rows) =>
      verify(from.filter((r) => !gone(r))).problems;
    const intact = verify(rows, [checkpointOf(rows[3]!)]);
    assert.deepEqual([intact.ok, intact.checked, intact.problems], [true, 5, []]);
    assert.deepEqual(
      without((r) => r.seq === 2 && r.part === 1),
      ['row seq 2 part 1 deleted: gap in the events of message seq 2'],
    );
    assert.deepEqual(
      without((r) => r.seq === 2 && r.part < 2),
      ['row seq 2 parts 0..1 deleted: gap in the events of message seq 2'],
    );
    // The last part leaves no gap in the numbering, but its message says it had three.
    assert.deepEqual(
      without((r) => r.seq === 2 && r.part === 2),
      ['row seq 2 part 2 deleted: gap in the events of message seq 2'],
    );
    // Also when it is the last row of the chain, with no row after it to break a link.
    assert.deepEqual(verify(rows.slice(0, 3)).problems, [
      'row seq 2 part 2 deleted: gap in the events of message seq 2',
    ]);
    // A message's bounds are hashed: moving an event across them shows, however it is relabelled.
    const moved = rows.map((r) =>
      r.seq === 1
        ? { ...r, seq: 2, part: 0, parts: 4 }
        : r.seq === 2
          ? { ...r, part: r.part + 1, parts: 4 }
          : r,
    );
    assert.deepEqual(
      verify(moved).problems.filter((p) => p.includes('was edited')),
      [
        'row seq 2 (event event-0001) was edited: its content does not match its hash',
        'row seq 2 part 1 (event event-0002-0) was edited: its content does not match its hash',
        'row seq 2 part 2 (event event-0002-1) was edited: its content does not match its hash',
        'row seq 2 part 3 (event event-0002-2) was edited: its content does not match its hash',
      ],
    );
    // Whole sequences and the first parts of the next message, gone together: both are named.
    const longer = chainRows(GENESIS_HASH, [...content, partOf(4, 0, 2), partOf(4, 1, 2)]);
    assert.deepEqual(
      without((r) => r.seq === 3 || (r.seq === 4 && r.part === 0), longer),
      [
        'row seq 3 deleted: gap in the stream sequence between 2 and 4',
        'row seq 4 part 0 deleted: gap in the events of message seq 4',
      ],
    );
    const edited = rows.map((r) => (r.part === 1 ? { ...r, data: { jti: 'forged' } } : r));
    assert.deepEqual(verify(edited).problems, [
      'row seq 2 part 1 (event event-0002-1) was edited: its content does not match its hash',
    ]);
  });

  it('names deleted rows at the start of the chain', () => {
    const rows = chain(5).slice(2);
    assert.match(verify(rows).problems[0] ?? '', /rows before seq 3 are missing/);
  });

  it('catches a chain recomputed after an edit through the checkpoints', () => {
    const original = chain(6);
    const checkpoints = [checkpointOf(original[2]!), checkpointOf(original[5]!)];
    const edited = original.map((r) => ({ ...r }) as RowContent);
    edited[1] = { ...edited[1]!, data: { jti: 'jti-2', scopes_granted: ['admin'] } };
    const recomputed = chainRows(GENESIS_HASH, edited);
    const result = verify(recomputed, checkpoints);
    assert.equal(result.ok, false);
    assert.equal(result.problems.length, 2);
    assert.match(result.problems[0]!, /^checkpoint at seq 3 .* the chain was rewritten$/);
  });

  it('catches a truncated tail through the checkpoints', () => {
    const rows = chain(8);
    const result = verify(rows.slice(0, 5), [checkpointOf(rows[7]!)]);
    assert.deepEqual(result.problems, [
      `tail missing: checkpoint at seq 8 (${rows[7]!.time}) but the chain ends at seq 5`,
    ]);
  });

  it('names the latest trusted checkpoint, and whether the store still holds its hash', () => {
    const rows = chain(6);
    const bad = { ...checkpointOf(rows[5]!), signatureOk: false };
    const intact = verify(rows, [checkpointOf(rows[1]!), checkpointOf(rows[3]!), bad]);
    assert.deepEqual(intact.lastCheckpoint, {
      seq: 4,
      hash: rows[3]!.hash,
      time: rows[3]!.time,
      publicKey: 'k'.repeat(43),
      matchesStore: true,
    });
    const rewritten = verify(rows, [{ ...checkpointOf(rows[3]!), hash: 'f'.repeat(64) }]);
    assert.equal(rewritten.lastCheckpoint?.matchesStore, false);
    assert.equal(verify(rows, []).lastCheckpoint, undefined);
  });

  it('reports a checkpoint whose signature does not verify', () => {
    const rows = chain(2);
    const result = verify(rows, [{ ...checkpointOf(rows[1]!), signatureOk: false }]);
    assert.match(result.problems[0]!, /^checkpoint at seq 2 .*signature does not verify$/);
  });

  it('reports a checkpoint signed by a key that is not pinned, and does not trust it for the tail', () => {
    const rows = chain(4);
    const forged = { ...checkpointOf(rows[3]!), seq: 9, signatureOk: false, unknownKey: 'x'.repeat(43) };
    assert.deepEqual(verify(rows, [forged]).problems, [
      `checkpoint at seq 9 (${rows[3]!.time}) is signed by key xxxxxxxxxxxx…, which is not a pinned checkpoint key: not trusted`,
    ]);
  });

  it('chains marker rows like events, covering their sequence', () => {
    const marker: RowContent = {
      ...event(2),
      id: null,
      data: { reason: 'invalid JSON' },
      marker: 'dead_letter',
    };
    const rows = chainRows(GENESIS_HASH, [event(1), marker, event(3)]);
    assert.equal(verify(rows).ok, true);
    const moved = chainRows(GENESIS_HASH, [event(1), { ...marker, seq: 7 }, event(3)]);
    assert.notEqual(moved[1]?.hash, rows[1]?.hash);
  });

  it('reports a lost-range marker as lost events, never as clean, and chains on after it', () => {
    const lost: RowContent = {
      ...event(5),
      id: null,
      type: 'marker.lost',
      data: { from_seq: 3, to_seq: 5, count: 3 },
      marker: 'lost',
    };
    const rows = chainRows(GENESIS_HASH, [event(1), event(2), lost, event(6)]);
    const result = verify(rows, [checkpointOf(rows[3]!)]);
    assert.equal(result.ok, false);
    assert.deepEqual(result.problems, [
      `seqs 3..5 lost: the stream discarded 3 event(s) before the auditor stored them (marker row seq 5, recorded ${lost.time})`,
    ]);
    const widened = rows.map((r) => (r.seq === 5 ? { ...r, data: { ...r.data, from_seq: 2 } } : r));
    assert.ok(verify(widened).problems.includes('row seq 5 was edited: its content does not match its hash'));
    const misplaced = chainRows(GENESIS_HASH, [event(1), lost, event(6)]);
    assert.ok(
      verify(misplaced).problems.includes('row seq 2 deleted: gap in the stream sequence between 1 and 5'),
    );
  });
});

describe('checkpoint signatures', () => {
  it('verifies its own signature and refuses an altered head or an untrusted key', () => {
    const signer = new CheckpointSigner();
    const cp = signer.sign({ seq: 9, hash: 'ab'.repeat(32), time: '2026-01-01T00:00:00.000Z' });
    assert.equal(verifyCheckpoint(cp), true);
    assert.equal(verifyCheckpoint({ ...cp, seq: 8 }), false);
    assert.equal(verifyCheckpoint({ ...cp, hash: 'cd'.repeat(32) }), false);
    assert.equal(verifyCheckpoint(cp, new Set(['someone-else'])), false);
    assert.equal(verifyCheckpoint({ ...cp, public_key: 'garbage' }), false);
  });
});
