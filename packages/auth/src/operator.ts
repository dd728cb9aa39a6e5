import {
  AppError,
  type CertifiedCall,
  clientCertificateUris,
  type KeySetMirror,
  OPERATOR_AUDIENCE,
  OPERATOR_SCOPE,
  OWNER_SCOPE,
  operatorRights,
  type RevocationMirror,
  singleMetadata,
} from '@aoa/core';
import type { ClientConfig } from '@aoa/policy';
import type { Metadata } from '@grpc/grpc-js';
import { type CallerContext, proveCertifiedClient, proveClient } from './client-assertion.js';
import { type DpopPresentation, type ProvedHolder, proveHolder } from './dpop-holder.js';

/**
 * The person an operator token names: its root subject, its `jti`, the key that proved it, and its
 * rights: an administrator (`aoa:admin`), or the owner of the clients its `aoa:owner:<client>` scopes name.
 */
export interface Operator {
  kind: 'operator';
  /** The token's `sub`: `idp:<namespace>:<idp sub>`, the person signed in. */
  sub: string;
  jti: string;
  jkt: string;
  admin: boolean;
  /** Client ids this person owns (sorted); an administrator's may be empty. */
  owns: string[];
}

/**
 * Who made a call: a registered client (by its client assertion or client certificate) or an operator
 * (by its token).
 */
export type ServiceCaller = { kind: 'client'; client: ClientConfig } | Operator;

/** An administrator: an admin client, or an operator. */
export type Administrator = { kind: 'client'; clientId: string } | Operator;

/** The caller proof a call sent, as read from metadata ({@link callerProof}). */
export interface CallerProof {
  clientAssertion: string | undefined;
  /** A DPoP proof, sent with `authorization: DPoP <token>`. */
  dpop: DpopPresentation | undefined;
  authorization: string | undefined;
  /**
   * The URI SANs of the TLS client certificate the listener verified (RFC 8705; none unless it runs
   * with client CAs): they prove a client registered with one of them when the call sends no other proof.
   */
  certificateUris: readonly string[];
}

/** What proving a client or an operator needs: the registered clients, the keys, the revocations. */
export interface OperatorContext extends CallerContext {
  keys: KeySetMirror;
  /** A mirror of `aoa_revocations`; one not yet synchronised refuses operators (unavailable). */
  revocations: Pick<RevocationMirror, 'ready' | 'check'>;
}

/**
 * Reads a call's caller proof: from gRPC metadata `client-assertion`, or `dpop` with `authorization`
 * (the proof must name `POST` and `htu`, the service's gRPC base URL + the method path); when neither
 * is sent, the URI SANs of the connection's verified client certificate.
 *
 * @example
 * const proof = callerProof(call, `${grpcUrl}/aoa.v1.Auditor/VerifyChain`);
 */
export function callerProof(call: { metadata: Metadata } & CertifiedCall, htu: string): CallerProof {
  const clientAssertion = singleMetadata(call.metadata, 'client-assertion');
  const dpop = singleMetadata(call.metadata, 'dpop');
  return {
    clientAssertion,
    dpop: dpop ? { proof: dpop, htm: 'POST', htu } : undefined,
    authorization: singleMetadata(call.metadata, 'authorization'),
    // Read only when it can count (a proof in metadata wins): grpc-js rebuilds it on every call.
    certificateUris: clientAssertion || dpop ? [] : clientCertificateUris(call),
  };
}

/**
 * What makes a proved holder an operator: its token names {@link OPERATOR_AUDIENCE} and
 * {@link OPERATOR_SCOPE} or an owner scope `aoa:owner:<client>` (else `permission_denied`), and neither
 * it nor any ancestor is revoked (`permission_denied`, reason `TOKEN_REVOKED`; a mirror not yet
 * synchronised: `unavailable`).
 */
export function assertOperator(
  holder: ProvedHolder,
  revocations: Pick<RevocationMirror, 'ready' | 'check'>,
): Operator {
  const { claims, kid } = holder.token;
  if (!claims.aud.includes(OPERATOR_AUDIENCE)) {
    throw new AppError('permission_denied', `operator token: aud must include ${OPERATOR_AUDIENCE}`);
  }
  const rights = operatorRights(claims);
  if (!rights) {
    throw new AppError(
      'permission_denied',
      `operator token: scope must include ${OPERATOR_SCOPE} or ${OWNER_SCOPE}:<client>`,
    );
  }
  if (!revocations.ready()) throw new AppError('unavailable', 'revocation view not yet synchronised');
  const hit = revocations.check({ ...claims, kid });
  if (hit) {
    throw new AppError('permission_denied', `operator token revoked (${hit.key.split('.')[0]} revocation)`, {
      reason: 'TOKEN_REVOKED',
    });
  }
  return { kind: 'operator', sub: claims.sub, jti: claims.jti, jkt: holder.jkt, ...rights };
}

/**
 * Proves who made a call: a registered client by its client assertion ({@link proveClient}) or, when
 * the call sends no proof, by its verified TLS client certificate ({@link proveCertifiedClient}), or an
 * operator by `authorization: DPoP <operator token>` and a DPoP proof by the key it is bound to
 * ({@link proveHolder}, then {@link assertOperator}). Both proofs is `invalid_argument`; neither is
 * `unauthenticated`. A bearer token is never enough.
 *
 * @example
 * const caller = await proveServiceCaller(callerProof(call, htu), ctx);
 */
export async function proveServiceCaller(proof: CallerProof, ctx: OperatorContext): Promise<ServiceCaller> {
  if (proof.clientAssertion && proof.dpop) {
    throw new AppError('invalid_argument', 'send one caller proof: client-assertion or dpop, not both');
  }
  if (proof.clientAssertion) return { kind: 'client', client: await proveClient(proof.clientAssertion, ctx) };
  if (proof.dpop) {
    // Before the mirrors are current no operator token can be judged: say so, whatever was sent.
    if (!ctx.revocations.ready()) throw new AppError('unavailable', 'revocation view not yet synchronised');
    return assertOperator(await proveHolder(proof.authorization, proof.dpop, ctx), ctx.revocations);
  }
  if (proof.certificateUris.length > 0) {
    return { kind: 'client', client: proveCertifiedClient(ctx.policy(), proof.certificateUris) };
  }
  throw new AppError(
    'unauthenticated',
    'caller proof required (send client-assertion, or dpop with an operator token in authorization, or a TLS client certificate)',
  );
}

export const isAdministrator = (caller: ServiceCaller): boolean =>
  caller.kind === 'operator' ? caller.admin : caller.client.admin;

/** Whether the caller acts for a parent client: that client itself, or an operator who owns it. */
export const actsFor = (caller: ServiceCaller, clientId: string): boolean =>
  caller.kind === 'operator' ? caller.owns.includes(clientId) : caller.client.id === clientId;

/** Lets an administrator through (an admin client or an administrator's operator token); refuses any other (an owner's too) as `permission_denied`. */
export function requireAdministrator(caller: ServiceCaller, what = 'administrators only'): Administrator {
  if (!isAdministrator(caller)) throw new AppError('permission_denied', what);
  return caller.kind === 'client' ? { kind: 'client', clientId: caller.client.id } : caller;
}

/**
 * Proves an administrator: the client assertion of an admin client, or an operator token with a DPoP
 * proof by its key ({@link proveServiceCaller}); any other caller is `permission_denied`.
 *
 * @example
 * const admin = await proveAdministrator(callerProof(call, htu), ctx);
 * log.info({ by: callerBy(admin) }, 'chain verified');
 */
export async function proveAdministrator(
  proof: CallerProof,
  ctx: OperatorContext,
  what?: string,
): Promise<Administrator> {
  return requireAdministrator(await proveServiceCaller(proof, ctx), what);
}

/** How a caller is named in `by` fields and logs: `client:<id>` or `operator:<sub>`. */
export function callerBy(caller: ServiceCaller | Administrator): string {
  if (caller.kind === 'operator') return `operator:${caller.sub}`;
  return `client:${'client' in caller ? caller.client.id : caller.clientId}`;
}
