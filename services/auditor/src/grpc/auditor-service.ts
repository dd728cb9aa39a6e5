import {
  callerBy,
  callerProof,
  type OperatorContext,
  proveServiceCaller,
  requireAdministrator,
} from '@aoa/auth';
import { AppError, assertName, type CertifiedCall, type Logger, toGrpcError } from '@aoa/core';
import type { events, auditor as pb } from '@aoa/proto';
import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { ChainRow } from '../domain/chain.js';
import type { SignedCheckpoint } from '../domain/checkpoint.js';
import type { TrustedKeys } from '../domain/checkpoint-keys.js';
import type { LineageNode } from '../domain/lineage.js';
import type { ScopeReport } from '../domain/usage.js';
import { lineageOf } from '../read/lineage.js';
import { queryEvents } from '../read/query.js';
import { verifyStoredChain } from '../read/verify-chain.js';
import type { AuditStore } from '../store/audit-store.js';
import type { UsageStore } from '../store/usage-store.js';

export interface AuditorServiceDeps {
  store: AuditStore;
  usage: UsageStore;
  /** Every checkpoint of the checkpoint stream. */
  checkpoints(): Promise<SignedCheckpoint[]>;
  /** The pinned checkpoint keys; undefined when checkpoints are trusted on first use. */
  trustedKeys: TrustedKeys | undefined;
  caller: OperatorContext;
  /** The gRPC base URL callers reach this auditor by, the prefix of every DPoP `htu`. */
  grpcUrl: string;
  log: Logger;
}

/** What proving a caller reads of a call: its metadata, and the client certificate of its connection. */
type ProvingCall = { metadata: Metadata } & CertifiedCall;

const ADMINS_ONLY = 'the audit log is for administrators only (and owners, for their own clients)';

/**
 * gRPC `aoa.v1.Auditor`: proves the caller on every call (audit data is sensitive: a single-use client
 * assertion of an admin client, or an operator token with a single-use DPoP proof by its key),
 * validates, calls the store, maps errors once. An administrator reads everything; an owner's operator
 * token (`aoa:owner:<client>`) reads only its clients' events and lineages (`Query`, `Lineage`).
 */
export function auditorHandlers(deps: AuditorServiceDeps): pb.AuditorServer {
  const { store, log } = deps;
  /** The caller, and the parent clients it may read (undefined: all). */
  const reader = async (call: ProvingCall, method: string) => {
    const caller = await proveServiceCaller(
      callerProof(call, `${deps.grpcUrl}/aoa.v1.Auditor/${method}`),
      deps.caller,
    );
    // Who read the audit log: an operator is a person, named with the token that proved it.
    if (caller.kind === 'operator')
      log.info(
        { by: callerBy(caller), jti: caller.jti, admin: caller.admin, owns: caller.owns, method },
        'operator call',
      );
    if (caller.kind === 'operator' && !caller.admin) return { caller, clients: caller.owns };
    return { caller: requireAdministrator(caller, ADMINS_ONLY), clients: undefined };
  };
  const admin = async (call: ProvingCall, method: string): Promise<void> => {
    const { clients } = await reader(call, method);
    if (clients) throw new AppError('permission_denied', `${method} is for administrators only`);
  };
  return {
    query: async (call: ServerWritableStream<pb.QueryRequest, events.AuditEvent>) => {
      try {
        const { clients } = await reader(call, 'Query');
        const rows = await queryEvents(store, { ...call.request, clients });
        for (const row of rows) {
          if (call.cancelled) return;
          if (!call.write(toAuditEvent(row))) await new Promise((resolve) => call.once('drain', resolve));
        }
        call.end();
      } catch (error) {
        call.emit('error', toGrpcError(error, log));
      }
    },
    verifyChain: async (
      call: ServerUnaryCall<pb.VerifyChainRequest, pb.VerifyChainResponse>,
      callback: sendUnaryData<pb.VerifyChainResponse>,
    ) => {
      try {
        await admin(call, 'VerifyChain');
        const result = await verifyStoredChain(store, await deps.checkpoints(), deps.trustedKeys);
        if (!result.ok) log.warn({ problems: result.problems.length }, 'audit chain verification failed');
        callback(null, {
          ...result,
          lastCheckpoint: result.lastCheckpoint && {
            ...result.lastCheckpoint,
            time: new Date(result.lastCheckpoint.time),
          },
        });
      } catch (error) {
        callback(toGrpcError(error, log));
      }
    },
    lineage: async (
      call: ServerUnaryCall<pb.LineageRequest, pb.LineageResponse>,
      callback: sendUnaryData<pb.LineageResponse>,
    ) => {
      try {
        const { clients } = await reader(call, 'Lineage');
        const notOwned = () =>
          new AppError('permission_denied', 'no lineage of a client you own has this jti');
        // An owner learns nothing of tokens not theirs, not even whether they exist.
        const { ancestors, node } = await lineageOf(store, call.request.jti).catch((error: unknown) => {
          throw clients && error instanceof AppError && error.code === 'not_found' ? notOwned() : error;
        });
        const root = ancestors[0] ?? node;
        if (clients && !clients.some((client) => root.clientId === `client:${client}`)) throw notOwned();
        callback(null, { ancestors: ancestors.map(toPbNode), node: toPbNode(node) });
      } catch (error) {
        callback(toGrpcError(error, log));
      }
    },
    unusedScopes: async (
      call: ServerUnaryCall<pb.UnusedScopesRequest, pb.UnusedScopesResponse>,
      callback: sendUnaryData<pb.UnusedScopesResponse>,
    ) => {
      try {
        await admin(call, 'UnusedScopes');
        const { env, app } = call.request;
        if (env !== '') assertName('env', env);
        if (app !== '') assertName('app', app);
        const { apps, grants } = await deps.usage.report({ env, app });
        callback(null, { apps: apps.map(toPbUsage), grants: grants.map(toPbUsage) });
      } catch (error) {
        callback(toGrpcError(error, log));
      }
    },
  };
}

function toPbUsage(report: ScopeReport): pb.ScopeUsage {
  return {
    env: report.env,
    app: report.app,
    grantId: report.grantId,
    granted: report.granted,
    exercised: report.exercised,
    unused: report.unused,
  };
}

function toAuditEvent(row: ChainRow): events.AuditEvent {
  return {
    id: row.id ?? '',
    type: row.type,
    time: new Date(row.time),
    source: row.source,
    subject: row.subject,
    data: row.data,
  };
}

function toPbNode(node: LineageNode): pb.LineageNode {
  return {
    jti: node.jti,
    parentJti: node.parentJti,
    sub: node.sub,
    child: node.child,
    env: node.env,
    scopes: node.scopes,
    time: node.time,
    children: node.children.map(toPbNode),
  };
}
