import { revoker as pb } from '@aoa/proto';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { JWK } from 'jose';
import { RpcError, signClientAssertion } from './delegate.js';

/** Where the revoker is and who calls it: a registered client proving itself with an RFC 7523 assertion. */
export interface RevokerCaller {
  /** `host:port` of the revoker's gRPC endpoint. */
  grpc: string;
  /** The issuer identifier: client assertions name it as `aud`. */
  issuer: string;
  clientId: string;
  clientJwk: JWK;
}

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

async function withClient<T>(
  caller: RevokerCaller,
  call: (client: pb.RevokerClient, metadata: Metadata) => Promise<T>,
): Promise<T> {
  const client = new pb.RevokerClient(caller.grpc, credentials.createInsecure());
  try {
    return await call(client, await assertionMetadata(caller));
  } finally {
    client.close();
  }
}

async function assertionMetadata(caller: RevokerCaller): Promise<Metadata> {
  const metadata = new Metadata();
  metadata.set(
    'client-assertion',
    await signClientAssertion(caller.clientId, caller.clientJwk, caller.issuer),
  );
  return metadata;
}

/** Calls `aoa.v1.Revoker/Revoke`; idempotent (a repeat answers the revocation already in force). */
export function revokeOnce(
  caller: RevokerCaller,
  target: RevokeTarget,
  reason: string,
): Promise<pb.RevokeResponse> {
  return withClient(
    caller,
    (client, metadata) =>
      new Promise((resolve, reject) =>
        client.revoke(
          requestOf(target, reason),
          metadata,
          { deadline: Date.now() + 10_000 },
          (error, value) => (error ? reject(new RpcError(error.code, error.details)) : resolve(value)),
        ),
      ),
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
  caller: RevokerCaller,
  filter: ListFilter,
): Promise<pb.Revocation[]> {
  const out: pb.Revocation[] = [];
  let pageToken = '';
  for (let page = 0; page < 1000; page++) {
    const response = await withClient(
      caller,
      (client, metadata) =>
        new Promise<pb.ListRevocationsResponse>((resolve, reject) =>
          client.listRevocations(
            pb.ListRevocationsRequest.fromPartial({ ...filter, pageSize: 1000, pageToken }),
            metadata,
            { deadline: Date.now() + 10_000 },
            (error, value) => (error ? reject(new RpcError(error.code, error.details)) : resolve(value)),
          ),
        ),
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
