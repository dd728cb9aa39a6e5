import { createLogger } from '@aoa/core';
import { rotator as pb } from '@aoa/proto';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { buildRotator, type RunningRotator } from '../../services/rotator/src/app.js';
import { loadRotatorConfig } from '../../services/rotator/src/config.js';
import type { TestSystem } from './system.js';

/** Starts a rotator in-process beside a test system's issuer, logging into the system's capture. */
export async function startRotator(
  sys: TestSystem,
  env: Record<string, string> = {},
): Promise<{ rotator: RunningRotator; client: pb.RotatorClient; stop(): Promise<void> }> {
  const rotator = await buildRotator(
    loadRotatorConfig({
      NATS_URL: sys.nats.url,
      AOA_POLICY_FILE: sys.policyPath,
      AOA_ISSUER_URL: sys.issuer.issuer,
      AOA_ROTATOR_GRPC_LISTEN: '127.0.0.1:0',
      AOA_ROTATOR_HTTP_LISTEN: '127.0.0.1:0',
      AOA_ROTATOR_SCAN_INTERVAL: '100ms',
      AOA_ROTATOR_LEASE: '2s',
      ...env,
    }),
    { logger: createLogger({ service: 'rotator', level: 'debug', destination: sys.logs.stream }) },
  ).start();
  const client = new pb.RotatorClient(`127.0.0.1:${rotator.grpcPort}`, credentials.createInsecure());
  return {
    rotator,
    client,
    stop: async () => {
      client.close();
      await rotator.stop();
    },
  };
}

type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  callback: (error: ServiceError | null, response: Res) => void,
) => unknown;

/** Calls one Rotator method with metadata; resolves the response or rejects with the gRPC error. */
export function callRotator<Req, Res>(
  client: pb.RotatorClient,
  method: Unary<Req, Res>,
  request: Req,
  metadata: Record<string, string> = {},
): Promise<Res> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve, reject) => {
    method.call(client, request, md, (error, response) => (error ? reject(error) : resolve(response)));
  });
}
