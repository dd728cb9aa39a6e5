import { authenticateClient } from '@aoa/auth';
import { AppError, type Clock, type ReplayGuard, singleMetadata } from '@aoa/core';
import type { ClientConfig, Policy } from '@aoa/policy';
import type { Metadata } from '@grpc/grpc-js';

/** What proving an Auditor caller needs: the registered clients, the issuer identifier, single use. */
export interface CallerContext {
  policy(): Policy;
  /** The issuer identifier: client assertions name it as `aud`. */
  issuer: string;
  windowSeconds: number;
  clock: Clock;
  replay: Pick<ReplayGuard, 'claim'>;
}

/**
 * Audit data is sensitive: every Auditor call proves an administrator client with a single-use RFC 7523
 * client assertion in `client-assertion` metadata, checked exactly as the issuer and rotator check it.
 * No assertion or a bad one is `unauthenticated`; a registered client that is not an administrator is
 * `permission_denied`.
 */
export async function proveAdmin(ctx: CallerContext, metadata: Metadata): Promise<ClientConfig> {
  const assertion = singleMetadata(metadata, 'client-assertion');
  if (!assertion) throw new AppError('unauthenticated', 'caller proof required (send client-assertion)');
  const client = await authenticateClient(assertion, {
    policy: ctx.policy(),
    issuer: ctx.issuer,
    windowSeconds: ctx.windowSeconds,
    clock: ctx.clock,
    replay: ctx.replay,
  });
  if (!client.admin) throw new AppError('permission_denied', 'the audit log is for administrators only');
  return client;
}
