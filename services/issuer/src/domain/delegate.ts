import {
  assertMayPresent,
  isWorkloadAssertion,
  proveCertifiedClient,
  verifyClientAssertion,
} from '@aoa/auth';
import {
  type AoaClaims,
  AppError,
  type AuditPublisher,
  AuditUnavailable,
  actorList,
  type Clock,
  errorInfoOf,
  isName,
  type ReplayGuard,
  type RevocationMirror,
  type SigningKey,
  toAppError,
  verifyDpopProof,
} from '@aoa/core';
import type { ClientConfig, Policy } from '@aoa/policy';
import { decideAndSign } from './decide-and-sign.js';
import { federatedDelegate } from './federated.js';
import type { Origin } from './mint.js';
import {
  type DelegateInput,
  type RawDelegateRequest,
  SCOPE_TOKEN,
  validateDelegateRequest,
} from './request.js';
import type { SubjectTokenVerifier, VerifiedSubject } from './subject-token.js';

/** How the caller proves who it is (contract section 3): a client assertion, or a DPoP proof. */
export interface CallerProof {
  clientAssertion: string | undefined;
  dpop: { proof: string; htm: string; htu: string } | undefined;
  /**
   * A client the adapter already authenticated with `authenticateClient` (the HTTP token endpoint
   * does so first, to answer `401 invalid_client` and to rate-limit per client). Only adapters set it.
   */
  authenticatedClient?: ClientConfig | undefined;
  /** The client a federated caller means, when several federated clients accept its workload token. */
  clientId?: string | undefined;
  /**
   * The URI SANs of the TLS client certificate the listener verified (RFC 8705 `tls_client_auth`):
   * they authenticate a client registered with one of them when the caller sends no other proof.
   */
  certificateUris?: readonly string[] | undefined;
}

/**
 * The client a verified TLS client certificate authenticates, when the call carries no other proof
 * (a client assertion or DPoP proof, sent explicitly, wins over the connection's certificate). A
 * `client-id` sent beside it must name that client, as `client_id` must at the token endpoint.
 */
export function certifiedClient(policy: Policy, proof: CallerProof): ClientConfig | undefined {
  if (proof.clientAssertion || proof.dpop || proof.authenticatedClient) return undefined;
  if (!proof.certificateUris || proof.certificateUris.length === 0) return undefined;
  return proveCertifiedClient(policy, proof.certificateUris, proof.clientId);
}

export interface IssuerContext {
  issuer: string;
  policy(): Policy;
  signingKey(): SigningKey;
  subjects: SubjectTokenVerifier;
  revocations: RevocationMirror;
  replay: ReplayGuard;
  audit: AuditPublisher;
  clock: Clock;
  windowSeconds: number;
  /** Why NATS cannot be used right now (disconnected, not answering), or undefined while it can. */
  busProblem(): string | undefined;
}

export interface DelegateResult {
  accessToken: string;
  tokenType: 'DPoP' | 'Bearer';
  expiresAt: number;
  scopes: string[];
  jti: string;
  issuedTokenType: string;
  rule: string;
  depth: number;
  kid: string;
  claims: AoaClaims;
}

/** What the denial audit event can say about a refused request, filled in as the request is understood. */
export interface Facts {
  sub?: string;
  clientId?: string;
  parentJti?: string;
  rule?: string;
}

/**
 * The one Delegate path behind gRPC and the HTTP token endpoint: prove the caller, verify the subject
 * token, check revocation, ask policy, mint, and answer only after the audit event is acknowledged.
 * Every refusal is audited too, before the caller hears of it.
 */
export async function delegate(
  ctx: IssuerContext,
  raw: RawDelegateRequest,
  proof: CallerProof,
): Promise<DelegateResult> {
  const facts: Facts = {};
  try {
    // Without the bus no audit event can be stored, so no credential: say so now, not at a deadline.
    const down = ctx.busProblem();
    if (down) throw new AuditUnavailable(`${down}: no credential is issued while its audit cannot be stored`);
    const input = validateDelegateRequest(raw);
    const result = await issue(ctx, input, proof, facts);
    await ctx.audit.publish('delegation.issued', result.jti, issuedEvent(input, result));
    return result;
  } catch (error) {
    // Every outcome is audited, an unreachable IdP or an internal failure too; only a refusal of the
    // audit stream itself has nowhere to go.
    const refusal = toAppError(error);
    if (!(refusal instanceof AuditUnavailable)) {
      await ctx.audit.publish('delegation.denied', facts.sub ?? 'unknown', deniedEvent(raw, refusal, facts));
    }
    throw error;
  }
}

async function issue(
  ctx: IssuerContext,
  input: DelegateInput,
  proof: CallerProof,
  facts: Facts,
): Promise<DelegateResult> {
  const policy = ctx.policy();
  const { clientAssertion, dpop } = proof;
  if (clientAssertion && dpop && isWorkloadAssertion(policy, clientAssertion)) {
    return federatedDelegate(
      ctx,
      input,
      { assertion: clientAssertion, dpop, clientId: proof.clientId },
      facts,
      policy,
    );
  }
  const { subject, origin, singleUse } = await authorize(ctx, input, proof, facts, policy);
  return afterClaim(singleUse, facts, () => decideAndSign(ctx, input, subject, origin, facts, policy));
}

/** A proved caller and a verified subject; the caller proof's single-use claim may still be in flight. */
export interface Authorized {
  subject: VerifiedSubject;
  origin: Origin;
  /** Settles when the proof's `jti` is claimed; rejects on a replay. Await it through {@link afterClaim}. */
  singleUse: Promise<void>;
}

/**
 * Runs `work` (policy and signing) while the caller proof's single-use claim, a NATS round trip, is
 * still in flight, then waits for the claim. A replay refusal wins over any outcome of `work` and names
 * no rule, so a replayed proof learns nothing more, and nothing signed for it leaves.
 */
export async function afterClaim<T>(singleUse: Promise<void>, facts: Facts, work: () => T): Promise<T> {
  let outcome: { value: T } | { error: unknown };
  try {
    outcome = { value: work() };
  } catch (error) {
    outcome = { error };
  }
  try {
    await singleUse;
  } catch (error) {
    facts.rule = undefined;
    throw error;
  }
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}

/**
 * Who is asking and for whom, before any policy decision: a registered client presenting an IdP
 * token (root), or the holder of an aoa token proving its key (sub-delegation). Shared by Delegate and
 * DelegateBatch, whose children are then each decided for the same subject and origin.
 */
export async function authorize(
  ctx: IssuerContext,
  token: Pick<DelegateInput, 'subjectToken' | 'subjectTokenType'>,
  proof: CallerProof,
  facts: Facts,
  policy: Policy,
): Promise<Authorized> {
  const certified = certifiedClient(policy, proof);
  const clientProved = Boolean(proof.clientAssertion || proof.authenticatedClient || certified);
  if (clientProved && proof.dpop) {
    throw new AppError('invalid_argument', 'present either a client assertion or a DPoP proof, not both');
  }
  if (!clientProved && !proof.dpop) {
    throw new AppError(
      'unauthenticated',
      'caller proof required: a bearer token alone mints nothing (send client-assertion or dpop)',
    );
  }
  let client = proof.authenticatedClient ?? certified;
  let singleUse = Promise.resolve();
  if (!client && proof.clientAssertion) {
    const verified = verifyClientAssertion(proof.clientAssertion, assertionContext(ctx, policy));
    client = verified.client;
    // Claiming the jti is a NATS round trip: overlap it with the rest of the request, and let its
    // refusal (a replay) win over any other, so a replayed assertion never learns anything more.
    singleUse = ctx.replay.claim('ca', client.id, verified.jti);
    singleUse.catch(() => undefined);
  }
  if (client) facts.clientId = `client:${client.id}`;
  try {
    const subject = await ctx.subjects.verify(token.subjectToken, token.subjectTokenType, policy);
    const origin = client
      ? rootOrigin(policy, client, subject, facts)
      : await childOrigin(ctx, token.subjectToken, subject, proof, facts);
    return { subject, origin, singleUse };
  } catch (error) {
    await singleUse;
    throw error;
  }
}

function rootOrigin(policy: Policy, client: ClientConfig, subject: VerifiedSubject, facts: Facts): Origin {
  if (subject.kind !== 'idp') {
    throw new AppError(
      'unauthenticated',
      'an aoa subject token is presented by its holder with a DPoP proof, not by a client',
    );
  }
  facts.sub = `idp:${subject.idp.namespace}:${subject.sub}`;
  assertMayPresent(policy, client, subject);
  return { kind: 'root', idp: subject.idp.namespace, sub: subject.sub, clientId: client.id };
}

/**
 * Sub-delegation: the presented aoa token must be key-bound, the DPoP proof made by that key over
 * this very token (`ath`), and neither the token nor any ancestor revoked.
 */
async function childOrigin(
  ctx: IssuerContext,
  subjectToken: string,
  subject: VerifiedSubject,
  proof: CallerProof,
  facts: Facts,
): Promise<Origin> {
  if (subject.kind !== 'aoa') {
    throw new AppError(
      'unauthenticated',
      'an IdP subject token must be presented by a registered client with a client assertion',
    );
  }
  const parent = subject.claims;
  facts.sub = parent.sub;
  facts.clientId = parent.act.sub;
  facts.parentJti = parent.jti;
  if (!parent.cnf)
    throw new AppError('unauthenticated', 'an unbound (bearer) aoa token cannot be a subject token');
  const dpop = proof.dpop;
  if (!dpop) throw new AppError('unauthenticated', 'DPoP proof required');
  const jkt = await verifyDpopProof({
    proof: dpop.proof,
    htm: dpop.htm,
    htu: dpop.htu,
    accessToken: subjectToken,
    windowSeconds: ctx.windowSeconds,
    clock: ctx.clock,
    replay: ctx.replay,
  });
  if (jkt !== parent.cnf.jkt)
    throw new AppError('unauthenticated', 'DPoP proof key is not the key the subject token is bound to');
  assertNotRevoked(ctx.revocations, parent, subject.kid);
  return { kind: 'child', parent, parentKid: subject.kid };
}

/** Refuses a token when it, or any ancestor, is revoked; an unsynced mirror refuses everything. */
export function assertNotRevoked(revocations: RevocationMirror, claims: AoaClaims, kid: string): void {
  if (!revocations.ready()) throw new AppError('unavailable', 'revocation view not yet synchronised');
  const hit = revocations.check({ ...claims, kid });
  if (hit)
    throw new AppError('permission_denied', `subject token revoked (${hit.key.split('.')[0]} revocation)`, {
      reason: 'TOKEN_REVOKED',
    });
}

function assertionContext(ctx: IssuerContext, policy: Policy) {
  return {
    policy,
    issuer: ctx.issuer,
    windowSeconds: ctx.windowSeconds,
    clock: ctx.clock,
    replay: ctx.replay,
  };
}

export function issuedEvent(input: DelegateInput, result: DelegateResult): Record<string, unknown> {
  const { claims } = result;
  return {
    jti: claims.jti,
    sub: claims.sub,
    actors: actorList(claims.act),
    client_id: claims.client_id,
    child: input.child,
    env: claims.env,
    scopes_requested: input.scopes,
    scopes_granted: result.scopes,
    audience: claims.aud,
    exp: claims.exp,
    depth: result.depth,
    rule: result.rule,
    kid: result.kid,
    cnf_jkt: claims.cnf?.jkt ?? '',
    lineage: claims.aoa_lineage.map((l) => l.jti),
    parent_jti: claims.aoa_lineage.at(-1)?.jti ?? '',
  };
}

/** Only fields that passed their own validation are echoed, so no input can smuggle a token into audit. */
export function deniedEvent(raw: RawDelegateRequest, error: AppError, facts: Facts): Record<string, unknown> {
  const safe = (value: string) => (isName(value) ? value : '(invalid)');
  return {
    code: error.code,
    reason: error.message,
    error_reason: errorInfoOf(error).reason,
    constraint: error.constraint ?? '',
    sub: facts.sub ?? '',
    client_id: facts.clientId ?? '',
    child: safe(raw.child),
    env: safe(raw.environment),
    scopes_requested: raw.scopes.slice(0, 32).map((s) => (SCOPE_TOKEN.test(s) ? s : '(invalid)')),
    audience: raw.audience.slice(0, 16).map((a) => a.slice(0, 512)),
    rule: facts.rule ?? '',
    parent_jti: facts.parentJti ?? '',
  };
}
