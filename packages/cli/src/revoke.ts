import { revoker as pb } from '@aoa/proto';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { type CertifiedCaller, callAs, type ServiceCaller } from './caller.js';

/** Exactly one of the contract's revocation targets. */
export type RevokeTarget =
  | { kind: 'jti'; jti: string }
  | { kind: 'grant'; grantId: string }
  | { kind: 'app'; environment: string; child: string }
  | { kind: 'subject'; subject: string }
  | { kind: 'kid'; kid: string };

/** The CLI flags that name a target, as parsed. */
export interface RevokeFlags {
  jti?: string | undefined;
  grant?: string | undefined;
  app?: string | undefined;
  env?: string | undefined;
  subject?: string | undefined;
  kid?: string | undefined;
}

/** Turns the flags into one target, or a usage message naming what is wrong. */
export function revokeTargetOf(flags: RevokeFlags): RevokeTarget | { usage: string } {
  const given = (['jti', 'grant', 'app', 'subject', 'kid'] as const).filter((k) => flags[k] !== undefined);
  if (given.length !== 1) {
    return { usage: 'give exactly one of --jti, --grant, --app (with --env), --subject, --kid' };
  }
  for (const k of given) if (flags[k] === '') return { usage: `--${k} must not be empty` };
  if (flags.env !== undefined && given[0] !== 'app') return { usage: '--env goes with --app only' };
  if (flags.jti !== undefined) return { kind: 'jti', jti: flags.jti };
  if (flags.grant !== undefined) return { kind: 'grant', grantId: flags.grant };
  if (flags.subject !== undefined) return { kind: 'subject', subject: flags.subject };
  if (flags.kid !== undefined) return { kind: 'kid', kid: flags.kid };
  if (!flags.env) return { usage: '--app needs --env' };
  return { kind: 'app', environment: flags.env, child: flags.app as string };
}

function requestOf(target: RevokeTarget, reason: string): pb.RevokeRequest {
  switch (target.kind) {
    case 'jti':
      return pb.RevokeRequest.fromPartial({ jti: target.jti, reason });
    case 'grant':
      return pb.RevokeRequest.fromPartial({ grantId: target.grantId, reason });
    case 'app':
      return pb.RevokeRequest.fromPartial({
        app: { environment: target.environment, child: target.child },
        reason,
      });
    case 'subject':
      return pb.RevokeRequest.fromPartial({ subject: target.subject, reason });
    case 'kid':
      return pb.RevokeRequest.fromPartial({ kid: target.kid, reason });
  }
}

const revokerClient = (address: string, channel: ChannelCredentials) =>
  new pb.RevokerClient(address, channel);

/** Calls `aoa.v1.Revoker/Revoke`; idempotent (a repeat answers the revocation already in force). */
export function revokeOnce(
  caller: ServiceCaller | CertifiedCaller,
  target: RevokeTarget,
  reason: string,
): Promise<pb.RevokeResponse> {
  return callAs(caller, revokerClient, (client, metadata, options, done) =>
    client.revoke(requestOf(target, reason), metadata, options, done),
  );
}

export interface ListFilter {
  kind?: string | undefined;
  environment?: string | undefined;
  app?: string | undefined;
  jti?: string | undefined;
}

/** Calls `aoa.v1.Revoker/ListRevocations`, following pages (each page signs a fresh assertion). */
export async function listRevocationsAll(
  caller: ServiceCaller | CertifiedCaller,
  filter: ListFilter,
): Promise<pb.Revocation[]> {
  const out: pb.Revocation[] = [];
  let pageToken = '';
  for (let page = 0; page < 1000; page++) {
    const request = pb.ListRevocationsRequest.fromPartial({ ...filter, pageSize: 1000, pageToken });
    const response = await callAs<pb.RevokerClient, pb.ListRevocationsResponse>(
      caller,
      revokerClient,
      (client, metadata, options, done) => client.listRevocations(request, metadata, options, done),
    );
    out.push(...response.revocations);
    if (!response.nextPageToken) break;
    pageToken = response.nextPageToken;
  }
  return out;
}

/** One line per revocation: key, kind, time, who, reason. */
export function formatRevocations(revocations: pb.Revocation[]): string {
  if (revocations.length === 0) return 'no revocations in force\n';
  const rows = revocations.map((r) => [
    r.key,
    r.kind || '-',
    new Date(Number(r.atMs)).toISOString(),
    r.by || '-',
    r.reason || '-',
  ]);
  const header = ['KEY', 'KIND', 'AT', 'BY', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}
