import { createLogger } from '@aoa/core';
import { revoker as pb } from '@aoa/proto';
import { credentials, Metadata } from '@grpc/grpc-js';
import { buildRevoker, type RunningRevoker } from '../../services/revoker/src/app.js';
import { loadRevokerConfig } from '../../services/revoker/src/config.js';
import type { TestSystem } from './system.js';

/** Starts a revoker in-process beside a test system's issuer, logging into the system's capture. */
export async function startRevoker(
  sys: TestSystem,
  env: Record<string, string> = {},
): Promise<{ revoker: RunningRevoker; client: pb.RevokerClient; stop(): Promise<void> }> {
  const revoker = await buildRevoker(
    loadRevokerConfig({
      NATS_URL: sys.nats.url,
      AOA_POLICY_FILE: sys.policyPath,
      AOA_ISSUER_URL: sys.issuer.issuer,
      AOA_REVOKER_GRPC_LISTEN: '127.0.0.1:0',
      AOA_REVOKER_HTTP_LISTEN: '127.0.0.1:0',
      AOA_AUDIT_OUTBOX_RETRY: '100ms',
      ...env,
    }),
    { logger: createLogger({ service: 'revoker', level: 'debug', destination: sys.logs.stream }) },
  ).start();
  const client = new pb.RevokerClient(`127.0.0.1:${revoker.grpcPort}`, credentials.createInsecure());
  return {
    revoker,
    client,
    stop: async () => {
      client.close();
      await revoker.stop();
    },
  };
}

/** Calls Revoke; metadata values given as arrays are sent as repeated entries. */
export function callRevoke(
  client: pb.RevokerClient,
  request: Partial<pb.RevokeRequest>,
  metadata: Record<string, string | string[]>,
): Promise<pb.RevokeResponse> {
  return new Promise((resolve, reject) => {
    client.revoke(pb.RevokeRequest.fromPartial(request), toMetadata(metadata), (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

export function callListRevocations(
  client: pb.RevokerClient,
  request: Partial<pb.ListRevocationsRequest>,
  metadata: Record<string, string | string[]>,
): Promise<pb.ListRevocationsResponse> {
  return new Promise((resolve, reject) => {
    client.listRevocations(
      pb.ListRevocationsRequest.fromPartial(request),
      toMetadata(metadata),
      (error, response) => (error ? reject(error) : resolve(response)),
    );
  });
}

function toMetadata(metadata: Record<string, string | string[]>): Metadata {
  const md = new Metadata();
  for (const [key, value] of Object.entries(metadata)) {
    for (const v of Array.isArray(value) ? value : [value]) md.add(key, v);
  }
  return md;
}
