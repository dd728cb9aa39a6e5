import { issuer as pb } from '@aoa/proto';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { callAs, type ServiceCaller } from './caller.js';

const issuerClient = (address: string, channel: ChannelCredentials) => new pb.IssuerClient(address, channel);

/**
 * Calls `aoa.v1.Issuer/RotateKeys` as an administrator: the standby key signs at once, every standing
 * grant is re-minted and delivered under it, and the old kid is revoked (first, with `now`).
 */
export function rotateKeysOnce(
  caller: ServiceCaller,
  options: { now: boolean; reason: string },
): Promise<pb.RotateKeysResponse> {
  return callAs<pb.IssuerClient, pb.RotateKeysResponse>(
    caller,
    issuerClient,
    (client, metadata, call, done) =>
      client.rotateKeys(pb.RotateKeysRequest.fromPartial(options), metadata, call, done),
  );
}

/** What `aoa keys rotate` prints. */
export function formatRotation(r: pb.RotateKeysResponse, now: boolean): string {
  const lines = [
    `signing key rotated${now ? ' (--now: the old key was revoked first)' : ''}`,
    `  retired   ${r.retiredKid} (revoked: ${r.revocationId})`,
    `  active    ${r.activeKid}`,
    `  standby   ${r.standbyKid}`,
    `  grants    ${r.reminted} of ${r.grants} re-minted and delivered under the new key`,
    ...r.failedGrants.map((g) => `  not re-minted in time: ${g}`),
    ...(r.remintError ? [`  re-mint failed: ${r.remintError} (the old key is revoked all the same)`] : []),
  ];
  return `${lines.join('\n')}\n`;
}
