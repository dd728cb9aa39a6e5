import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { errorInfoFrom, jwkThumbprint, LARGE_ANSWER_CHANNEL } from '@aoa/core';
import { issuer as pb, type rpc } from '@aoa/proto';
import { type ServiceError, status } from '@grpc/grpc-js';
import { exportJWK, type JWK } from 'jose';
import { type CertifiedCaller, callAs, type ServiceCaller } from './caller.js';
import type { DevFacts } from './dev.js';

/** The parent controller calling the issuer: with a client key (assertions) or a client certificate. */
export type DelegateCaller = ServiceCaller | CertifiedCaller;

export type DelegateOptions = DelegateCaller & DelegateFields;

interface DelegateFields {
  subjectToken: string;
  child: string;
  env: string;
  scopes: string[];
  audience: string[];
  ttlSeconds: number;
  /** Bind to this key thumbprint; undefined generates a holder key; null asks for a bearer token. */
  holderJkt: string | null | undefined;
}

export interface DelegateOutcome {
  response: pb.DelegateResponse;
  /** The holder key generated for the child, when none was given (development convenience). */
  holderPrivateJwk: JWK | undefined;
}

/**
 * Thrown for a gRPC refusal; `code` is the gRPC status, `details` its public message, `info` the
 * `google.rpc.ErrorInfo` aoa attaches (reason, and the rule or constraint broken), shown in the message.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly code: number,
    readonly details: string,
    readonly info?: rpc.ErrorInfo,
  ) {
    super(`${status[code] ?? code}: ${details}${describeInfo(code, info)}`);
  }

  static of(error: ServiceError): RpcError {
    return new RpcError(error.code, error.details, errorInfoFrom(error.metadata));
  }
}

/** ` [reason R, rule X, constraint C]`; nothing when the reason only repeats the status. */
function describeInfo(code: number, info: rpc.ErrorInfo | undefined): string {
  if (!info) return '';
  const parts = [
    ...(info.reason && info.reason !== status[code] ? [`reason ${info.reason}`] : []),
    ...(info.metadata.rule ? [`rule ${info.metadata.rule}`] : []),
    ...(info.metadata.constraint ? [`constraint ${info.metadata.constraint}`] : []),
  ];
  return parts.length > 0 ? ` [${parts.join(', ')}]` : '';
}

/** A fresh Ed25519 holder key for a child (development convenience), and its RFC 7638 thumbprint. */
async function freshHolderKey(): Promise<{ jkt: string; privateJwk: JWK }> {
  const privateJwk = await exportJWK(generateKeyPairSync('ed25519').privateKey);
  const { d: _d, ...publicJwk } = privateJwk;
  return { jkt: jwkThumbprint(publicJwk), privateJwk };
}

/** Calls `aoa.v1.Issuer/Delegate` as a registered parent controller. */
export async function delegateOnce(options: DelegateOptions): Promise<DelegateOutcome> {
  let holderJkt = options.holderJkt ?? '';
  let holderPrivateJwk: JWK | undefined;
  if (options.holderJkt === undefined) {
    const fresh = await freshHolderKey();
    holderJkt = fresh.jkt;
    holderPrivateJwk = fresh.privateJwk;
  }
  const request = pb.DelegateRequest.fromPartial({
    subjectToken: options.subjectToken,
    child: options.child,
    environment: options.env,
    scopes: options.scopes,
    audience: options.audience,
    ttlSeconds: options.ttlSeconds,
    holderJkt,
  });
  const response = await callAs<pb.IssuerClient, pb.DelegateResponse>(
    options,
    (address, channel) => new pb.IssuerClient(address, channel),
    (client, metadata, callOptions, done) => client.delegate(request, metadata, callOptions, done),
  );
  return { response, holderPrivateJwk };
}

/** One child's outcome of {@link delegateBatchOnce}. */
export type BatchChildOutcome = { child: string } & (
  | { issued: pb.DelegateResponse; holderPrivateJwk: JWK | undefined }
  | { refused: pb.DelegateRefusal }
);

/**
 * Calls `aoa.v1.Issuer/DelegateBatch` for several children at once (same environment, scopes, audience
 * and lifetime), each bound to a fresh key of its own unless `bearer`.
 */
export async function delegateBatchOnce(
  options: DelegateCaller &
    Omit<DelegateFields, 'child' | 'holderJkt'> & { children: string[]; bearer: boolean },
): Promise<BatchChildOutcome[]> {
  const holders = await Promise.all(
    options.children.map(() => (options.bearer ? undefined : freshHolderKey())),
  );
  const request = pb.DelegateBatchRequest.fromPartial({
    subjectToken: options.subjectToken,
    items: options.children.map((child, i) => ({
      child,
      environment: options.env,
      scopes: options.scopes,
      audience: options.audience,
      ttlSeconds: options.ttlSeconds,
      holderJkt: holders[i]?.jkt ?? '',
    })),
  });
  const response = await callAs<pb.IssuerClient, pb.DelegateBatchResponse>(
    options,
    (address, channel) => new pb.IssuerClient(address, channel, LARGE_ANSWER_CHANNEL),
    (client, metadata, callOptions, done) => client.delegateBatch(request, metadata, callOptions, done),
  );
  return response.results.map((result, i) => {
    const child = options.children[i] as string;
    return result.issued
      ? { child, issued: result.issued, holderPrivateJwk: holders[i]?.privateJwk }
      : { child, refused: result.refused ?? pb.DelegateRefusal.fromPartial({ code: 'UNKNOWN' }) };
  });
}

/** Gets the demo orchestrator's IdP token from the `aoa dev` IdP (client_credentials). */
export async function devIdpToken(
  facts: DevFacts,
  who: 'orchestrator' | 'admin' = 'orchestrator',
): Promise<string> {
  const identity = facts[who];
  const response = await fetch(facts.idp.tokenEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${identity.idpClientId}:${identity.idpClientSecret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: facts.idp.audience }),
  });
  const body = (await response.json()) as { access_token?: string; error?: string };
  if (!response.ok || !body.access_token)
    throw new Error(`dev IdP refused: ${body.error ?? response.status}`);
  return body.access_token;
}

export async function readDevFacts(path: string): Promise<DevFacts> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as DevFacts;
  } catch {
    throw new Error(`cannot read ${path}: is \`aoa dev\` (npm start) running?`);
  }
}
