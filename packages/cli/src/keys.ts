import { join } from 'node:path';
import { BUCKETS, type PublishedKeyRecord } from '@aoa/core';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { parseCommand, usage } from './args.js';
import { CALLER_OPTIONS, EXIT, refusal, resolveCaller } from './caller.js';
import { readDevFacts } from './delegate.js';
import { formatRotation, rotateKeysOnce } from './keys-rotate.js';

/** One published issuer key as `aoa keys list` shows it: the record without its JWK. */
export type KeySummary = Omit<PublishedKeyRecord, 'jwk'>;

const STATE_ORDER: Record<PublishedKeyRecord['state'], number> = { active: 0, standby: 1, retired: 2 };

/** No issuer has ever published keys on this NATS: there is nothing to list. */
export class NoKeysBucket extends Error {
  override readonly name = 'NoKeysBucket';
}

/** How long `aoa keys list` waits for NATS and for each JetStream answer. */
const NATS_TIMEOUT_MS = 5000;

/**
 * Reads every published key in KV `aoa_keys` (read-only), sorted active, standby, retired and, within a
 * state, newest first.
 *
 * @example
 * const keys = await listPublishedKeys('nats://127.0.0.1:4222');
 * keys[0]?.state; // 'active'
 * @throws NoKeysBucket when the bucket does not exist (no issuer has run against this NATS)
 */
export async function listPublishedKeys(natsUrl: string): Promise<KeySummary[]> {
  const nc = await connect({ servers: natsUrl, timeout: NATS_TIMEOUT_MS, reconnect: false });
  try {
    const kv = await new Kvm(nc).open(BUCKETS.keys, { timeout: NATS_TIMEOUT_MS });
    await kv.status().catch((error: unknown) => {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound))
        throw error;
      throw new NoKeysBucket(
        `no KV bucket ${BUCKETS.keys} on ${natsUrl}: has an issuer run against this NATS?`,
      );
    });
    const keys: KeySummary[] = [];
    for await (const kid of await kv.keys()) {
      const entry = await kv.get(kid);
      if (entry?.operation !== 'PUT') continue;
      const { jwk: _jwk, ...summary } = entry.json<PublishedKeyRecord>();
      keys.push(summary);
    }
    return keys.sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.created_ms - a.created_ms);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** The table `aoa keys list` prints: KID, ALG, STATE, CREATED, ACTIVATED, RETIRED (UTC, `-` if not yet). */
export function formatKeys(keys: readonly KeySummary[]): string {
  const at = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString());
  const table = [
    ['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATED', 'RETIRED'],
    ...keys.map((k) => [k.kid, k.alg, k.state, at(k.created_ms), at(k.activated_ms), at(k.retired_ms)]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  return table
    .map(
      (row) =>
        `${row
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** `aoa keys <subcommand>`. */
export async function keysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list':
      return list(rest);
    case 'rotate':
      return rotate(rest);
    default:
      return usage('keys', `unknown subcommand ${JSON.stringify(sub ?? '')} (try list or rotate)`);
  }
}

async function list(args: string[]): Promise<number> {
  const parsed = parseCommand('keys list', {
    args,
    options: {
      dev: { type: 'boolean', default: false },
      'data-dir': { type: 'string', default: '.aoa' },
      nats: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  if (values.dev === Boolean(values.nats)) return usage('keys list', 'give either --dev or --nats URL');
  let keys: KeySummary[];
  try {
    const natsUrl = values.nats ?? (await readDevFacts(join(values['data-dir'], 'dev.json'))).natsUrl;
    keys = await listPublishedKeys(natsUrl);
  } catch (error) {
    process.stderr.write(`aoa keys list: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof NoKeysBucket ? EXIT.failure : EXIT.unavailable;
  }
  process.stdout.write(values.json ? `${JSON.stringify(keys, null, 2)}\n` : formatKeys(keys));
  return EXIT.ok;
}

async function rotate(args: string[]): Promise<number> {
  const parsed = parseCommand('keys rotate', {
    args,
    options: {
      ...CALLER_OPTIONS,
      now: { type: 'boolean', default: false },
      reason: { type: 'string', default: '' },
    },
  });
  if (!parsed) return EXIT.usage;
  const { values } = parsed;
  const caller = await resolveCaller('keys rotate', values, (f) => f.issuer.grpc);
  if (!caller) return EXIT.usage;
  process.stderr.write(
    'rotating: switching keys, re-minting every standing grant, revoking the old key...\n',
  );
  try {
    const result = await rotateKeysOnce(caller, { now: values.now, reason: values.reason });
    process.stdout.write(
      values.json ? `${JSON.stringify(result, null, 2)}\n` : formatRotation(result, values.now),
    );
    return result.failedGrants.length === 0 && !result.remintError ? EXIT.ok : EXIT.failure;
  } catch (error) {
    return refusal('keys rotate', error);
  }
}
