import { callerProof } from '@aoa/auth';
import {
  AppError,
  type CertifiedCall,
  type Logger,
  type RevocationRecord,
  toAppError,
  toGrpcError,
} from '@aoa/core';
import type { revoker as pb } from '@aoa/proto';
import type { Metadata, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { callerName } from '../domain/authority.js';
import { type CallerProof, proveCaller } from '../domain/caller.js';
import { listRevocations } from '../domain/list.js';
import { type RevokerContext, revoke } from '../domain/revoke.js';
import type { RevokerMetrics } from '../metrics.js';

export interface RevokerServiceDeps {
  ctx: RevokerContext;
  /**
   * The revocations in force, sorted by key, from the revoker's own mirror of the bucket once it holds
   * every write made before the call (a Revoke just answered, here or on another replica).
   */
  list(): Promise<Array<{ key: string; record: RevocationRecord }>>;
  grpcBaseUrl: string;
  metrics: RevokerMetrics;
  log: Logger;
}

/** gRPC `aoa.v1.Revoker`: reads the caller's proof from metadata, calls the domain, maps errors once. */
export function revokerHandlers(deps: RevokerServiceDeps): pb.RevokerServer {
  const { ctx, metrics, log } = deps;
  return {
    revoke: async (
      call: ServerUnaryCall<pb.RevokeRequest, pb.RevokeResponse>,
      callback: sendUnaryData<pb.RevokeResponse>,
    ) => {
      const kind = targetKind(call.request);
      try {
        const proof = revokerProof(call, `${deps.grpcBaseUrl}/aoa.v1.Revoker/Revoke`);
        const result = await revoke(ctx, call.request, proof);
        metrics.revocations.inc({ kind, code: 'ok' });
        log.info(
          {
            key: result.key,
            revocationId: result.revocationId,
            repeated: result.repeated,
            by: callerName(result.caller),
          },
          'revocation in force',
        );
        callback(null, { revocationId: result.revocationId, atMs: result.atMs, key: result.key });
      } catch (error) {
        metrics.revocations.inc({ kind, code: toAppError(error).code });
        callback(toGrpcError(error, log));
      }
    },
    listRevocations: async (
      call: ServerUnaryCall<pb.ListRevocationsRequest, pb.ListRevocationsResponse>,
      callback: sendUnaryData<pb.ListRevocationsResponse>,
    ) => {
      try {
        const proof = revokerProof(call, `${deps.grpcBaseUrl}/aoa.v1.Revoker/ListRevocations`);
        const { caller } = await proveCaller(ctx, proof);
        const page = listRevocations(caller, await deps.list(), call.request);
        callback(null, {
          revocations: page.items.map(({ key, record }) => ({
            key,
            revocationId: record.id,
            atMs: record.at_ms,
            reason: record.reason,
            kind: record.kind ?? key.slice(0, key.indexOf('.')),
            by: record.by ?? '',
          })),
          nextPageToken: page.nextPageToken,
        });
      } catch (error) {
        callback(toGrpcError(error, log));
      }
    },
  };
}

function targetKind(request: pb.RevokeRequest): string {
  if (request.jti) return 'jti';
  if (request.grantId) return 'grant';
  if (request.app) return 'app';
  if (request.subject) return 'sub';
  if (request.kid) return 'kid';
  return 'none';
}

/** The caller proof (`@aoa/auth` `callerProof`) and the tokens presented in `aoa-token` metadata. */
function revokerProof(call: { metadata: Metadata } & CertifiedCall, htu: string): CallerProof {
  const tokens = call.metadata.get('aoa-token').flatMap((v) => {
    if (typeof v !== 'string') throw new AppError('invalid_argument', 'aoa-token: must be ASCII text');
    return v
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
  });
  return { ...callerProof(call, htu), tokens };
}
