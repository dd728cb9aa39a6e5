import { AppError } from '@aoa/core';
import { type ClientConfig, type ConditionInput, findIdpByIssuer, type Policy } from '@aoa/policy';
import { decodeJwt } from 'jose';
import type { VerifiedIdpToken } from './idp-token.js';

/**
 * Whether a client assertion is a workload token of a trusted IdP (a federated client's proof)
 * rather than a `private_key_jwt` signed by a registered client. Reads `iss` unverified, to route.
 *
 * @example
 * if (isWorkloadAssertion(policy, assertion)) return federatedDelegate(...);
 */
export function isWorkloadAssertion(policy: Policy, assertion: string): boolean {
  let iss: unknown;
  try {
    iss = decodeJwt(assertion).iss;
  } catch {
    return false;
  }
  return typeof iss === 'string' && findIdpByIssuer(policy, iss) !== undefined;
}

/**
 * The federated client a verified workload token authenticates: among the clients federated with the
 * token's IdP (only `clientId` when the caller names one), the one whose `when` holds on the token's
 * claims. The token must carry a `jti` (claimed once by the caller) and be no older than the client's
 * `max_age`, so a captured token is short-lived and single use.
 *
 * @example
 * const { client, jti } = federatedClient(policy, workload, { clientId: undefined, nowMs, request });
 * await replay.claim('ca', client.id, jti);
 * @throws AppError `unauthenticated` when no client, or more than one, accepts the token
 */
export function federatedClient(
  policy: Policy,
  workload: VerifiedIdpToken,
  args: { clientId: string | undefined; nowMs: number; request: ConditionInput['request'] },
): { client: ClientConfig; jti: string } {
  const refuse = (message: string, reason?: 'NO_FEDERATED_CLIENT' | 'WORKLOAD_TOKEN_TOO_OLD'): never => {
    throw new AppError('unauthenticated', `workload token: ${message}`, reason ? { reason } : {});
  };
  const { jti, iat } = workload.claims;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) refuse('jti required (single use)');
  if (typeof iat !== 'number') refuse('iat required');
  const input: ConditionInput = { claims: workload.claims, request: args.request };
  const accepting = policy.clients.filter(
    (client) =>
      client.federated?.idp === workload.idp.namespace &&
      (args.clientId === undefined || client.id === args.clientId) &&
      client.federated.when.evaluate(input).holds,
  );
  const [client, other] = accepting;
  if (!client) {
    return refuse(
      `no federated client of identity provider ${workload.idp.namespace} accepts it`,
      'NO_FEDERATED_CLIENT',
    );
  }
  if (other)
    refuse(
      `clients ${client.id} and ${other.id} both accept it: name one (client-id)`,
      'NO_FEDERATED_CLIENT',
    );
  const maxAge = client.federated?.maxAgeSeconds ?? 0;
  if (args.nowMs / 1000 - (iat as number) > maxAge + workload.idp.clockSkewSeconds) {
    refuse(`issued more than client ${client.id}'s max_age (${maxAge}s) ago`, 'WORKLOAD_TOKEN_TOO_OLD');
  }
  return { client, jti: jti as string };
}
