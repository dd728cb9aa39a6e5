import { createPrivateKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  type AoaClaims,
  AppError,
  BUCKETS,
  type Clock,
  createLogger,
  ENROLL_DPOP_HTU,
  jwkThumbprint,
  KeySetMirror,
  type Logger,
  RevocationMirror,
  STREAMS,
  Subjects,
  systemClock,
  verifyAoaToken,
} from '@aoa/core';
import { DeliverPolicy, type JsMsg, jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { compactDecrypt, decodeProtectedHeader, type JWK } from 'jose';
import { signDpopProof } from './caller-proofs.js';

/** An agent's two private keys, as JWKs: one for ECDH-ES+A256KW decryption, one for DPoP signing. */
export interface AgentKeys {
  encryption: JWK;
  dpop: JWK;
}

export interface AgentOptions {
  /** A connection allowed to read `aoa.creds.<env>.<app>.<agent>`, `aoa_keys` and `aoa_revocations`. */
  nats: NatsConnection;
  env: string;
  app: string;
  agentId: string;
  keys: AgentKeys;
  /** The issuer identifier: `iss` of every credential. */
  issuer: string;
  /** Audiences every accepted credential's `aud` must include (none: `aud` is not checked). */
  audience?: string[];
  subjectPrefix?: string;
  clock?: Clock;
  logger?: Logger;
}

/** The credential an agent holds. */
export interface AgentCredential {
  token: string;
  jti: string;
  /** Unix seconds. */
  exp: number;
  grantId: string;
  claims: AoaClaims;
}

/** Why a delivery was refused; emitted as `rejected`. */
export interface RejectedDelivery {
  reason: string;
  subject: string;
}

interface AgentEvents {
  rotated: [AgentCredential];
  rejected: [RejectedDelivery];
  revoked: [{ jti: string; key: string }];
  /** The credential held reached its `exp` and no newer one had arrived. */
  expired: [{ jti: string; exp: number }];
}

/** Holds one agent's credential: receives, decrypts, verifies and serves it. Built by {@link createAgent}. */
export class Agent extends EventEmitter<AgentEvents> {
  private current: AgentCredential | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private stopConsumer: (() => void) | undefined;
  private stopRevocationWatch: (() => void) | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;

  /** @internal Use {@link createAgent}. */
  constructor(
    private readonly options: AgentOptions,
    private readonly encryptionKey: KeyObject,
    private readonly dpopKey: KeyObject,
    private readonly dpopPublic: JWK,
    readonly dpopJkt: string,
    readonly subject: string,
    private readonly keySet: KeySetMirror,
    private readonly revocations: RevocationMirror,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    super();
  }

  /** The current access token; throws `no valid credential` when none is held, it expired or was revoked. */
  token(): string {
    return this.credential().token;
  }

  /** The current credential with its claims; same refusals as {@link token}. */
  credential(): AgentCredential {
    const current = this.current;
    if (!current || current.exp * 1000 <= this.clock.nowMs() || this.revokedKey(current)) {
      throw new AppError('unavailable', 'no valid credential');
    }
    return current;
  }

  /** A DPoP proof (RFC 9449) by this agent's key for `htm htu`, bound to the current token by `ath`. */
  async dpopProof(htm: string, htu: string): Promise<string> {
    const key = { privateKey: this.dpopKey, publicJwk: this.dpopPublic, alg: 'ES256' } as const;
    return signDpopProof(key, htm, htu, this.token(), this.clock.nowMs());
  }

  /** @internal */
  async start(): Promise<void> {
    await Promise.all([this.keySet.start(), this.revocations.start()]);
    this.stopRevocationWatch = this.revocations.onChange(() => {
      const current = this.current;
      const key = current && this.revokedKey(current);
      if (current && key) {
        this.current = undefined;
        clearTimeout(this.expiryTimer);
        this.log.warn({ jti: current.jti, key }, 'credential revoked; dropped');
        this.emit('revoked', { jti: current.jti, key });
      }
    });
    this.running = this.consumeLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopConsumer?.();
    this.stopRevocationWatch?.();
    clearTimeout(this.expiryTimer);
    await this.running;
    this.keySet.stop();
    this.revocations.stop();
  }

  /** Reads its own subject from `AOA_CREDS` (last message first), recreating the consumer on failure. */
  private async consumeLoop(): Promise<void> {
    const js = jetstream(this.options.nats);
    while (!this.stopped) {
      try {
        const consumer = await js.consumers.get(STREAMS.creds, {
          filter_subjects: this.subject,
          deliver_policy: DeliverPolicy.LastPerSubject,
        });
        const messages = await consumer.consume();
        this.stopConsumer = () => void messages.stop();
        if (this.stopped) messages.stop();
        for await (const msg of messages) await this.receive(msg);
      } catch (error) {
        if (this.stopped) break;
        this.log.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'credential consumer failed; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  private async receive(msg: JsMsg): Promise<void> {
    try {
      const credential = await this.accept(msg.data);
      this.current = credential;
      this.armExpiry(credential);
      this.log.info(
        { jti: credential.jti, exp: credential.exp, grant: credential.grantId },
        'credential rotated',
      );
      this.emit('rotated', credential);
    } catch (error) {
      const reason = error instanceof AppError ? error.message : 'invalid delivery';
      this.log.warn({ reason, seq: msg.seq }, 'delivery refused');
      this.emit('rejected', { reason, subject: msg.subject });
    }
  }

  /** Emits `expired` when `credential` reaches its `exp` while still the one held. */
  private armExpiry(credential: AgentCredential): void {
    clearTimeout(this.expiryTimer);
    // setTimeout takes at most a signed 32-bit count of milliseconds; a longer wait re-arms.
    const delay = Math.min(Math.max(credential.exp * 1000 - this.clock.nowMs(), 0), 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => {
      if (this.current !== credential || this.stopped) return;
      if (credential.exp * 1000 > this.clock.nowMs()) return this.armExpiry(credential);
      this.log.warn({ jti: credential.jti, exp: credential.exp }, 'credential expired without a replacement');
      this.emit('expired', { jti: credential.jti, exp: credential.exp });
    }, delay);
  }

  /** Decrypts and verifies one delivery; refuses anything not for this agent, or not newer. */
  private async accept(data: Uint8Array): Promise<AgentCredential> {
    const fail = (reason: string): never => {
      throw new AppError('unauthenticated', `delivery: ${reason}`);
    };
    let body: { grant_id?: unknown; agent?: unknown; jti?: unknown; jwe?: unknown };
    try {
      body = JSON.parse(new TextDecoder().decode(data));
    } catch {
      return fail('not JSON');
    }
    if (typeof body !== 'object' || body === null) return fail('not an object');
    if (body.agent !== this.options.agentId) fail('for another agent');
    if (typeof body.grant_id !== 'string' || typeof body.jwe !== 'string') return fail('not the schema');
    let token: string;
    try {
      const { plaintext } = await compactDecrypt(body.jwe, this.encryptionKey, {
        keyManagementAlgorithms: ['ECDH-ES+A256KW'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      token = new TextDecoder().decode(plaintext);
    } catch {
      return fail('cannot decrypt (not encrypted to this agent, or tampered with)');
    }
    // A key published moments ago may not have reached this mirror yet: wait briefly for it.
    const headerKid = decodeProtectedHeader(token).kid;
    if (typeof headerKid === 'string' && !this.keySet.get(headerKid))
      await this.keySet.waitFor(headerKid, 2000);
    const { claims, kid } = await verifyAoaToken(token, {
      issuer: this.options.issuer,
      keys: this.keySet,
      clock: this.clock,
    });
    if (claims.act.sub !== `app:${this.options.app}`) fail('for another app');
    if (claims.env !== this.options.env) fail('for another environment');
    const missing = this.options.audience?.find((aud) => !claims.aud.includes(aud));
    if (missing !== undefined) fail(`not for audience ${missing}`);
    if (claims.cnf?.jkt !== this.dpopJkt) fail('not bound to this agent’s DPoP key');
    if (claims.aoa_grant !== body.grant_id || claims.jti !== body.jti)
      fail('envelope does not match the token');
    const held = this.current?.claims;
    if (
      held &&
      (claims.exp < held.exp || (claims.exp === held.exp && claims.aoa_iat_ms <= held.aoa_iat_ms))
    ) {
      fail('not newer than the credential held');
    }
    if (!this.revocations.ready()) fail('revocation view not synchronised');
    const revoked = this.revocations.check({ ...claims, kid });
    if (revoked) fail(`revoked (${revoked.key.split('.')[0]})`);
    return { token, jti: claims.jti, exp: claims.exp, grantId: body.grant_id, claims };
  }

  private revokedKey(credential: AgentCredential): string | undefined {
    const [header] = credential.token.split('.');
    const kid = JSON.parse(Buffer.from(header ?? '', 'base64url').toString()).kid as string;
    return this.revocations.check({ ...credential.claims, kid })?.key;
  }
}

/**
 * Starts an agent for one enrolled agent id: mirrors `aoa_keys` and `aoa_revocations`, reads its own
 * `aoa.creds.<env>.<app>.<agent>` (an ordered consumer from the last message, so a late start gets
 * the current credential at once), and accepts a delivery only when it decrypts with its key and
 * verifies: signature, `iss`, `act.sub` = `app:<app>`, `env`, `aud` (when `audience` is given),
 * `cnf.jkt` = its DPoP key, a later `exp` than the one held, not revoked. Emits `rotated` for each
 * accepted credential, `rejected`, `revoked`, and `expired` when the held one lapses unreplaced.
 *
 * @example
 * const agent = await createAgent({ nats, env: 'prod', app: 'dashboards', agentId: 'web-1', keys, issuer });
 * agent.on('rotated', (c) => log.info({ jti: c.jti }, 'new credential'));
 * fetch(url, { headers: { authorization: `DPoP ${agent.token()}`, dpop: await agent.dpopProof('GET', url) } });
 */
export async function createAgent(options: AgentOptions): Promise<Agent> {
  const clock = options.clock ?? systemClock;
  const log = (options.logger ?? createLogger({ service: 'agent', level: 'warn' })).child({
    component: 'agent',
    agent: options.agentId,
  });
  const subject = new Subjects(options.subjectPrefix ?? 'aoa').creds(
    options.env,
    options.app,
    options.agentId,
  );
  const encryptionKey = privateKey(options.keys.encryption, 'encryption');
  const dpopKey = privateKey(options.keys.dpop, 'dpop');
  const dpopPublic = publicPart(options.keys.dpop);
  const kvm = new Kvm(options.nats);
  const [keysKv, revocationsKv] = await Promise.all([kvm.open(BUCKETS.keys), kvm.open(BUCKETS.revocations)]);
  const agent = new Agent(
    options,
    encryptionKey,
    dpopKey,
    dpopPublic,
    jwkThumbprint(dpopPublic),
    subject,
    new KeySetMirror(keysKv, log),
    new RevocationMirror(revocationsKv, log, {
      nc: options.nats,
      subject: new Subjects(options.subjectPrefix ?? 'aoa').revokedAll(),
    }),
    clock,
    log,
  );
  await agent.start();
  return agent;
}

/** Generates an agent's key pairs (EC P-256 for both purposes, two different keys). */
export async function generateAgentKeys(): Promise<{
  private: AgentKeys;
  public: AgentKeys;
  dpopJkt: string;
}> {
  const pair = (): { privateJwk: JWK; publicJwk: JWK } => {
    const { privateKey: key } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privateJwk = key.export({ format: 'jwk' }) as JWK;
    return { privateJwk, publicJwk: publicPart(privateJwk) };
  };
  const encryption = pair();
  const dpop = pair();
  return {
    private: { encryption: encryption.privateJwk, dpop: dpop.privateJwk },
    public: { encryption: encryption.publicJwk, dpop: dpop.publicJwk },
    dpopJkt: jwkThumbprint(dpop.publicJwk),
  };
}

/**
 * The DPoP proof an agent sends with its pod's service-account token to enrol (`Rotator.Enroll`
 * `attestation`): by the agent's DPoP key, bound to the token by `ath`, so the token enrols this key
 * and no other.
 *
 * @example
 * const dpop = await enrolmentProof(keys.private, serviceAccountToken);
 */
export async function enrolmentProof(keys: AgentKeys, attestation: string): Promise<string> {
  const key = {
    privateKey: privateKey(keys.dpop, 'dpop'),
    publicJwk: publicPart(keys.dpop),
    alg: 'ES256',
  } as const;
  return signDpopProof(key, 'POST', ENROLL_DPOP_HTU, attestation);
}

function privateKey(jwk: JWK, purpose: string): KeyObject {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') {
    throw new TypeError(`keys.${purpose}: must be a private EC P-256 JWK`);
  }
  return createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
}

function publicPart(jwk: JWK): JWK {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } as JWK;
}
