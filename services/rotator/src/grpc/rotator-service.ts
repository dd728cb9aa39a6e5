import { callerBy, callerProof, proveServiceCaller, type ServiceCaller } from '@aoa/auth';
import {
  AppError,
  type CertifiedCall,
  type GrantRecord,
  type Logger,
  singleMetadata,
  toAppError,
  toGrpcError,
} from '@aoa/core';
import type { rotator as pb } from '@aoa/proto';
import type { Metadata, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { attestedEnrol } from '../domain/attested-enrol.js';
import { createGrant } from '../domain/create-grant.js';
import {
  createJoinToken,
  deleteGrant,
  enroll,
  listGrants,
  type RotatorContext,
  restoreGrant,
  rotateNow,
} from '../domain/operations.js';
import type { RotatorMetrics } from '../metrics.js';

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

/**
 * gRPC `aoa.v1.Rotator`: reads the caller's proof (a client assertion, an operator token with a DPoP
 * proof whose `htu` is `grpcUrl` + the method path, or a client certificate when the listener has
 * client CAs), calls the domain, maps errors once.
 */
export function rotatorHandlers(
  ctx: RotatorContext,
  grpcUrl: string,
  metrics: RotatorMetrics,
  log: Logger,
): pb.RotatorServer {
  const unary =
    <Req, Res>(
      method: string,
      run: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
    ): Handler<Req, Res> =>
    (call, callback) => {
      run(call.request, call).then(
        (response) => {
          metrics.calls.inc({ method, code: 'ok' });
          callback(null, response);
        },
        (error: unknown) => {
          metrics.calls.inc({ method, code: toAppError(error).code });
          callback(toGrpcError(error, log.child({ method })));
        },
      );
    };
  const caller = async (
    call: { metadata: Metadata } & CertifiedCall,
    method: string,
  ): Promise<ServiceCaller> => {
    const proved = await proveServiceCaller(callerProof(call, `${grpcUrl}/aoa.v1.Rotator/${method}`), ctx);
    if (proved.kind === 'operator')
      log.info(
        { by: callerBy(proved), jti: proved.jti, admin: proved.admin, owns: proved.owns, method },
        'operator call',
      );
    return proved;
  };
  return {
    createGrant: unary('CreateGrant', async (req: pb.CreateGrantRequest, call) => {
      const grant = await createGrant(ctx, await caller(call, 'CreateGrant'), {
        sub: req.sub,
        child: req.child,
        environment: req.environment,
        scopes: req.scopes,
        audience: req.audience,
        tokenTtlSeconds: req.tokenTtlSeconds,
        expiresAt: req.expiresAt,
        parentClient: req.parentClient,
        subjectToken: singleMetadata(call.metadata, 'subject-token'),
      });
      log.info({ grant: grant.id, app: grant.app, env: grant.env }, 'grant created');
      return { grant: toPb(grant, []) };
    }),
    listGrants: unary('ListGrants', async (req: pb.ListGrantsRequest, call) => {
      const grants = await listGrants(ctx, await caller(call, 'ListGrants'), req);
      return { grants: grants.map((g) => toPb(g, g.agents)) };
    }),
    deleteGrant: unary('DeleteGrant', async (req: pb.DeleteGrantRequest, call) => {
      await deleteGrant(ctx, await caller(call, 'DeleteGrant'), req.grantId);
      log.info({ grant: req.grantId }, 'grant deleted');
      return {};
    }),
    restoreGrant: unary('RestoreGrant', async (req: pb.RestoreGrantRequest, call) => {
      const grant = await restoreGrant(ctx, await caller(call, 'RestoreGrant'), req.grantId);
      log.info({ grant: grant.id }, 'grant restored');
      return { grant: toPb(grant, []) };
    }),
    rotateNow: unary('RotateNow', async (req: pb.RotateNowRequest, call) => {
      await rotateNow(ctx, await caller(call, 'RotateNow'), req.grantId);
      return {};
    }),
    createJoinToken: unary('CreateJoinToken', async (req: pb.CreateJoinTokenRequest, call) => {
      const { token, expiresAt } = await createJoinToken(
        ctx,
        await caller(call, 'CreateJoinToken'),
        req.grantId,
        req.ttlSeconds,
      );
      return { joinToken: token, expiresAt };
    }),
    enroll: unary('Enroll', async (req: pb.EnrollRequest) => {
      if (req.attestation !== '' && req.joinToken !== '') {
        throw new AppError('invalid_argument', 'give join_token or attestation, not both');
      }
      const keys = { agentId: req.agentId, encryptionJwk: req.encryptionJwk, dpopJwk: req.dpopJwk };
      const { grant, agent } =
        req.attestation !== ''
          ? await attestedEnrol(ctx, {
              ...keys,
              attestation: req.attestation,
              dpop: req.dpop,
              grant: req.grant,
            })
          : await enroll(ctx, { ...keys, joinToken: req.joinToken });
      log.info({ grant: grant.id, agent: agent.agent, jkt: agent.dpop_jkt }, 'agent enrolled');
      return {
        grantId: grant.id,
        child: grant.app,
        environment: grant.env,
        agentId: agent.agent,
        dpopJkt: agent.dpop_jkt,
        subject: ctx.subjects.creds(grant.env, grant.app, agent.agent),
      };
    }),
  };
}

function toPb(grant: GrantRecord, agents: string[]): pb.Grant {
  return {
    id: grant.id,
    sub: grant.sub,
    child: grant.app,
    environment: grant.env,
    scopes: grant.scopes,
    audience: grant.audience,
    tokenTtlSeconds: grant.token_ttl_seconds,
    expiresAt: grant.expires_at,
    state: grant.state,
    parentClient: grant.parent_client,
    agents,
  };
}
