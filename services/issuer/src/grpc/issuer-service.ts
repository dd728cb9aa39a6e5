import { proveClient, requireAdmin } from '@aoa/auth';
import {
  type AoaClaims,
  type CertifiedCall,
  clientCertificateUris,
  errorInfoOf,
  GRPC_STATUS,
  type Logger,
  singleMetadata,
  toAppError,
  toGrpcError,
} from '@aoa/core';
import { issuer as pb } from '@aoa/proto';
import { type Metadata, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import { type CallerProof, delegate, type IssuerContext } from '../domain/delegate.js';
import { type BatchIssued, type BatchOutcome, delegateBatch } from '../domain/delegate-batch.js';
import { introspect } from '../domain/introspect.js';
import type { KeyRotation } from '../keys/rotation.js';
import type { IssuerMetrics } from '../metrics.js';

/** gRPC `aoa.v1.Issuer`: reads the caller's proof from metadata, calls the domain, maps errors once. */
export function issuerHandlers(
  ctx: IssuerContext,
  grpcBaseUrl: string,
  metrics: IssuerMetrics,
  log: Logger,
  rotation: KeyRotation,
): pb.IssuerServer {
  return {
    delegate: async (
      call: ServerUnaryCall<pb.DelegateRequest, pb.DelegateResponse>,
      callback: sendUnaryData<pb.DelegateResponse>,
    ) => {
      const stop = metrics.delegateSeconds.startTimer();
      try {
        const proof = callerProof(call, `${grpcBaseUrl}/aoa.v1.Issuer/Delegate`);
        const result = await delegate(ctx, call.request, proof);
        metrics.delegations.inc({ outcome: 'issued', code: 'ok' });
        log.info({ jti: result.jti, rule: result.rule, depth: result.depth }, 'delegation issued');
        callback(null, delegateResponse(result));
      } catch (error) {
        metrics.delegations.inc({ outcome: 'denied', code: toAppError(error).code });
        callback(toGrpcError(error, log));
      } finally {
        stop();
      }
    },
    delegateBatch: async (
      call: ServerUnaryCall<pb.DelegateBatchRequest, pb.DelegateBatchResponse>,
      callback: sendUnaryData<pb.DelegateBatchResponse>,
    ) => {
      const stop = metrics.delegateSeconds.startTimer();
      try {
        const proof = callerProof(call, `${grpcBaseUrl}/aoa.v1.Issuer/DelegateBatch`);
        const outcomes = await delegateBatch(ctx, call.request, proof);
        const issued = outcomes.filter((o) => 'issued' in o).length;
        metrics.delegations.inc({ outcome: 'issued', code: 'ok' }, issued);
        for (const o of outcomes) {
          if ('refused' in o) metrics.delegations.inc({ outcome: 'denied', code: o.refused.code });
        }
        log.info({ children: outcomes.length, issued }, 'batch delegation');
        callback(null, { results: outcomes.map(batchResult) });
      } catch (error) {
        metrics.delegations.inc({ outcome: 'denied', code: toAppError(error).code });
        callback(toGrpcError(error, log));
      } finally {
        stop();
      }
    },
    introspect: async (
      call: ServerUnaryCall<pb.IntrospectRequest, pb.IntrospectResponse>,
      callback: sendUnaryData<pb.IntrospectResponse>,
    ) => {
      try {
        const proof = callerProof(call, `${grpcBaseUrl}/aoa.v1.Issuer/Introspect`);
        const result = await introspect(ctx, call.request.token, proof);
        metrics.introspections.inc({ active: String(result.active) });
        callback(
          null,
          result.active
            ? introspectionResponse(result.claims)
            : pb.IntrospectResponse.fromPartial({ active: false }),
        );
      } catch (error) {
        callback(toGrpcError(error, log));
      }
    },
    rotateKeys: async (
      call: ServerUnaryCall<pb.RotateKeysRequest, pb.RotateKeysResponse>,
      callback: sendUnaryData<pb.RotateKeysResponse>,
    ) => {
      try {
        const client = requireAdmin(
          await proveClient(singleMetadata(call.metadata, 'client-assertion'), ctx),
        );
        const reason = call.request.reason.slice(0, 500);
        const result = await rotation.emergency({ now: call.request.now, reason, by: `client:${client.id}` });
        callback(null, pb.RotateKeysResponse.fromPartial(result));
      } catch (error) {
        callback(toGrpcError(error, log));
      }
    },
  };
}

function delegateResponse(result: BatchIssued): pb.DelegateResponse {
  return {
    accessToken: result.accessToken,
    tokenType: result.tokenType,
    expiresAt: result.expiresAt,
    scopes: result.scopes,
    jti: result.jti,
    issuedTokenType: result.issuedTokenType,
    rule: result.rule,
    depth: result.depth,
  };
}

/** A child's outcome as the wire carries it; a refusal with what toGrpcError would put in its ErrorInfo. */
function batchResult(outcome: BatchOutcome): pb.DelegateBatchResult {
  if ('issued' in outcome) return { issued: delegateResponse(outcome.issued) };
  const { refused } = outcome;
  const info = errorInfoOf(refused);
  return {
    refused: {
      code: status[GRPC_STATUS[refused.code]] ?? 'UNKNOWN',
      message: refused.message,
      reason: info.reason,
      rule: info.metadata.rule ?? '',
      constraint: info.metadata.constraint ?? '',
    },
  };
}

function callerProof(call: { metadata: Metadata } & CertifiedCall, htu: string): CallerProof {
  const clientAssertion = singleMetadata(call.metadata, 'client-assertion');
  const dpop = singleMetadata(call.metadata, 'dpop');
  const clientId = singleMetadata(call.metadata, 'client-id');
  return {
    clientAssertion,
    dpop: dpop ? { proof: dpop, htm: 'POST', htu } : undefined,
    clientId,
    // Read only when it can count (a proof in metadata wins): grpc-js re-reads the certificate per call.
    certificateUris: clientAssertion || dpop ? undefined : clientCertificateUris(call),
  };
}

function introspectionResponse(claims: AoaClaims): pb.IntrospectResponse {
  return pb.IntrospectResponse.fromPartial({
    active: true,
    iss: claims.iss,
    sub: claims.sub,
    clientId: claims.client_id,
    scope: claims.scope,
    aud: claims.aud,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    env: claims.env,
    actor: claims.act.sub,
    tokenType: claims.cnf ? 'DPoP' : 'Bearer',
    cnfJkt: claims.cnf?.jkt ?? '',
    grant: claims.aoa_grant ?? '',
    lineage: claims.aoa_lineage.map((l) => ({
      jti: l.jti,
      app: l.app,
      env: l.env,
      iatMs: l.iat_ms,
      kid: l.kid,
      grant: l.grant ?? '',
    })),
  });
}
